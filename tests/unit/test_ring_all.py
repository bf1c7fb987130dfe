"""Ring-all hops: several people rung at once, the first to press 1 takes the call.

Over the scripted PBX in virtual time: who is bridged, that every other leg is
hung up at once (ringing or at the prompt), and what the trail says of each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

import pytest

from astreinte_ari.callflow.audit_events import StateChanged
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.routing.plan import AnnouncementMode, BusyAgents, FinalAction, Hop
from astreinte_ari.routing.targets import group_target
from tests.unit.callflow_fakes import FakePbx, hop, plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time

ALICE = hop("alice", "+33612345678")
BOB = hop("bob", "+33698765432")
SUP = hop("sup", "+33620000001")
PRESS_1 = "astreinte-press-1"


def ring_all(*members: Hop, label: str = "team") -> Hop:
    people = tuple(dataclasses.replace(m, label=label) for m in members)
    return Hop(
        label,
        "+".join(m.person_id for m in people),
        ", ".join(m.person_name for m in people),
        group_target(tuple(m.target for m in people)),
        20,
        members=people,
    )


TEAM = ring_all(ALICE, BOB)


async def answers_at_prompt(line: Line, leg: str) -> None:
    await line.rings(leg)
    await line.answers(leg)
    await line.playing(PRESS_1, leg)


def ends(line: Line, call_id: str) -> list[tuple[str, HopOutcome, str | None]]:
    people = {h.hop_id: h.person_id for h in line.hops(call_id)}
    return [(people[e.hop_id], e.outcome, e.cause_text) for e in line.hop_ends(call_id)]


def bridged_with(line: Line, leg: str) -> bool:
    return any(leg in channels for _, channels in line.pbx.did("add_to_bridge"))


Script = Callable[[Line, str, str], Awaitable[None]]


async def alice_first_bob_at_prompt(line: Line, alice: str, bob: str) -> None:
    await answers_at_prompt(line, alice)
    await answers_at_prompt(line, bob)
    await line.presses(alice, "1")


async def both_press_1_together(line: Line, alice: str, bob: str) -> None:
    await answers_at_prompt(line, alice)
    await answers_at_prompt(line, bob)
    await line.presses(bob, "1")
    await line.presses(alice, "1")


async def bob_accepts_alice_still_ringing(line: Line, alice: str, bob: str) -> None:
    await line.rings(alice)
    await answers_at_prompt(line, bob)
    await line.presses(bob, "1")


async def alice_declines_then_bob_accepts(line: Line, alice: str, bob: str) -> None:
    await answers_at_prompt(line, alice)
    await line.presses(alice, "2")
    await line.wait(3)
    await answers_at_prompt(line, bob)
    await line.presses(bob, "1")


async def alice_busy_bob_no_answer_then_accepts(line: Line, alice: str, bob: str) -> None:
    await line.fails(alice, 17, "User busy")
    await line.rings(bob)
    await line.wait(8)
    await answers_at_prompt(line, bob)
    await line.presses(bob, "1")


@pytest.mark.parametrize(
    ("script", "winner", "others"),
    [
        (
            alice_first_bob_at_prompt,
            "alice",
            [("bob", HopOutcome.CANCELLED, "another agent accepted")],
        ),
        (both_press_1_together, "bob", [("alice", HopOutcome.CANCELLED, "another agent accepted")]),
        (
            bob_accepts_alice_still_ringing,
            "bob",
            [("alice", HopOutcome.CANCELLED, "another agent accepted")],
        ),
        (alice_declines_then_bob_accepts, "bob", [("alice", HopOutcome.DECLINED, "wrong key '2'")]),
        (alice_busy_bob_no_answer_then_accepts, "bob", [("alice", HopOutcome.BUSY, "User busy")]),
    ],
    ids=["first-key-wins", "same-moment", "other-still-ringing", "one-declines", "one-busy"],
)
@virtual_time
async def test_the_first_to_press_1_is_bridged_the_others_are_cancelled(
    script: Script, winner: str, others: list[tuple[str, HopOutcome, str | None]]
) -> None:
    line = Line(plan(TEAM, SUP))
    call = await line.arrive()
    alice, bob = await line.leg(1), await line.leg(2)
    assert [o["target"] for o in line.originated()] == [ALICE.target, BOB.target]
    await script(line, alice, bob)
    await line.until(lambda: CallState.BRIDGED in line.states(call), "bridged")
    won, lost = (alice, bob) if winner == "alice" else (bob, alice)
    assert bridged_with(line, won) and not bridged_with(line, lost)
    assert (lost,) in line.pbx.did("hangup") or lost in line.gone
    await line.wait(30)
    await line.hangs_up(CALLER)
    await line.done()
    assert len(line.originated()) == 2  # the supervisor never rung
    got = ends(line, call)
    assert [(p, o) for p, o, _ in got if p == winner] == [(winner, HopOutcome.ACCEPTED)]
    assert [e for e in got if e[0] != winner] == others
    ended = line.ended(call)
    assert ended.outcome is CallOutcome.ACCEPTED and ended.detail.startswith(
        f"talked 30.0s with {winner}"
    )
    assert {h.seq for h in line.hops(call)} == {1}  # one step of the cascade


@virtual_time
async def test_nobody_accepts_the_cascade_goes_on() -> None:
    line = Line(plan(TEAM, SUP))
    call = await line.arrive()
    alice, bob = await line.leg(1), await line.leg(2)
    await line.fails(alice, 17, "User busy")
    await line.fails(bob, 21, "Call rejected")
    sup = await line.leg(3)
    await line.fails(sup, 17, "User busy")
    await line.done()
    assert [(p, o) for p, o, _ in ends(line, call)] == [
        ("alice", HopOutcome.BUSY),
        ("bob", HopOutcome.REJECTED),
        ("sup", HopOutcome.BUSY),
    ]
    assert line.ended(call).detail == "all 2 hops failed"


@virtual_time
async def test_the_caller_leaves_while_both_ring() -> None:
    line = Line(plan(TEAM))
    call = await line.arrive()
    alice, bob = await line.leg(1), await line.leg(2)
    await line.rings(alice)
    await answers_at_prompt(line, bob)
    await line.hangs_up(CALLER)
    await line.done()
    assert sorted((p, o, t) for p, o, t in ends(line, call)) == [
        ("alice", HopOutcome.CANCELLED, "caller hung up"),
        ("bob", HopOutcome.CANCELLED, "caller hung up"),
    ]
    assert {(alice,), (bob,)} <= set(line.pbx.did("hangup"))
    ended = line.ended(call)
    assert ended.outcome is CallOutcome.ABANDONED
    assert ended.detail.startswith("abandoned at agent_prompt (hop 1: team (ring all: alice, bob))")


@virtual_time
async def test_a_member_on_another_call_is_skipped_the_others_rung() -> None:
    line = Line(plan(ALICE, SUP, did="+33180000001"), plan(TEAM, final=FinalAction.HANGUP))
    first = await line.arrive(CALLER, "+33180000001")
    leg = await line.leg(1)
    await answers_at_prompt(line, leg)
    await line.presses(leg, "1")
    await line.until(lambda: CallState.BRIDGED in line.states(first), "first bridged")
    second = await line.arrive("1764540000.2")
    bob = await line.leg(2)
    assert line.originated()[1]["target"] == BOB.target
    await line.fails(bob, 17, "User busy")
    await line.until(lambda: CallState.ENDED in line.states(second), "second ended")
    assert ends(line, second) == [
        ("alice", HopOutcome.SKIPPED, f"busy: on call {first[:8]} (not rung)"),
        ("bob", HopOutcome.BUSY, "User busy"),
    ]
    assert len(line.originated()) == 2
    await line.hangs_up(CALLER)
    await line.done()


def test_ring_all_busy_only_when_everyone_is() -> None:
    from astreinte_ari.routing.busy import free_members, hop_busy

    def busy(*people: str) -> Callable[[Hop], str | None]:
        return lambda h: "other-call" if h.person_id in people else None

    assert hop_busy(TEAM, busy("alice")) is None
    assert hop_busy(TEAM, busy("alice", "bob")) == "other-call"
    ring, skipped = free_members(TEAM, busy("alice"), BusyAgents.SKIP, rung_last=False)
    assert [m.person_id for m in ring] == ["bob"]
    assert [(m.person_id, h) for m, h in skipped] == [("alice", "other-call")]
    ring, skipped = free_members(TEAM, busy("alice", "bob"), BusyAgents.LAST, rung_last=True)
    assert [m.person_id for m in ring] == ["alice", "bob"] and skipped == []


# -- ring-all under early dial: the group rings during the announcement ---------------

ANNOUNCEMENT = "astreinte-after-hours"


def early_team(mode: AnnouncementMode) -> Line:
    return Line(
        plan(TEAM, SUP, early_dial=True, announcement_mode=mode),
        pbx=FakePbx(held_sounds=frozenset({ANNOUNCEMENT})),
    )


@pytest.mark.parametrize(
    ("mode", "bridged_at_s"),
    [(AnnouncementMode.FULL, 6.0), (AnnouncementMode.UNTIL_ACCEPTED, 2.0)],
    ids=["heard-in-full", "cut-when-accepted"],
)
@virtual_time
async def test_early_dial_rings_the_whole_group_during_the_announcement(
    mode: AnnouncementMode, bridged_at_s: float
) -> None:
    line = early_team(mode)
    call = await line.arrive()
    alice, bob = await line.leg(1), await line.leg(2)
    announcement = await line.playing(ANNOUNCEMENT, CALLER)
    assert [line.at(h.at) for h in line.hops(call)] == [0.0, 0.0], "the group waited"
    await line.rings(alice)
    await line.wait(2)
    await answers_at_prompt(line, bob)
    await line.presses(bob, "1")
    if mode is AnnouncementMode.FULL:
        await line.until(lambda: CallState.AGENT_WAITING in line.states(call), "bob on hold")
        assert not bridged_with(line, bob)
        await line.wait(4)
        await line.finishes(announcement)
    await line.until(lambda: CallState.BRIDGED in line.states(call), "bridged")
    [bridge] = [e for e in line.trail.of(StateChanged) if e.to_state is CallState.BRIDGED]
    assert line.at(bridge.at) == bridged_at_s
    assert bridged_with(line, bob) and not bridged_with(line, alice)
    assert ((announcement,) in line.pbx.did("stop_playback")) is (bridged_at_s < 6.0)
    dialing = [e.reason for e in line.trail.of(StateChanged) if e.to_state is CallState.DIALING]
    assert dialing and all("(early dial: during the announcement)" in r for r in dialing)
    await line.wait(10)
    await line.hangs_up(CALLER)
    await line.done()
    assert sorted((p, o) for p, o, _ in ends(line, call)) == [
        ("alice", HopOutcome.CANCELLED),
        ("bob", HopOutcome.ACCEPTED),
    ]
    assert line.ended(call).outcome is CallOutcome.ACCEPTED
    assert len(line.originated()) == 2  # the supervisor never rung


@virtual_time
async def test_caller_leaving_during_the_announcement_cancels_every_ringing_leg() -> None:
    line = early_team(AnnouncementMode.FULL)
    call = await line.arrive()
    alice, bob = await line.leg(1), await line.leg(2)
    await line.playing(ANNOUNCEMENT, CALLER)
    await line.rings(alice)
    await line.rings(bob)
    await line.wait(3)
    await line.hangs_up(CALLER)
    await line.done()
    assert sorted(ends(line, call)) == [
        ("alice", HopOutcome.CANCELLED, "caller hung up during the announcement"),
        ("bob", HopOutcome.CANCELLED, "caller hung up during the announcement"),
    ]
    assert {(alice,), (bob,)} <= set(line.pbx.did("hangup"))
    ended = line.ended(call)
    assert ended.outcome is CallOutcome.ABANDONED
    assert ended.detail.startswith("abandoned at dialing (hop 1: team (ring all: alice, bob))")
    assert "during the announcement" in ended.detail
