"""Agents already on an on-call call: skipped, rung last, or rung anyway (busy_agents).

The decision (routing/busy.py) is table-tested on its own; then two calls on a
scripted PBX show the trail an auditor reads: the busy person's hop, not rung,
"busy: on call <id>", and the backup rung right after the announcement.
"""

from __future__ import annotations

import pytest

from astreinte_ari.callflow.audit_events import StateChanged
from astreinte_ari.callflow.engaged import EngagedTargets
from astreinte_ari.callflow.outcomes import CallState, HopOutcome
from astreinte_ari.routing.busy import cascade_turns
from astreinte_ari.routing.plan import BusyAgents, Hop
from tests.unit.callflow_fakes import hop, plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time

ALICE = hop("alice", "+33612345678")
BOB = hop("bob", "+33698765432")
SUP = hop("sup", "+33620000001")
DESK = hop("switchboard", "+33180000009", require_accept=False)
SECOND = "1764540000.2"
OTHER_CALL = "0c0ffee0-1111-2222-3333-444455556666"


def turns(hops: tuple[Hop, ...], busy: set[str], policy: BusyAgents, first: int = 1) -> list[str]:
    """Each turn as "seq:person:ring|skip[:busy]"."""

    def busy_with(h: Hop) -> str | None:
        return OTHER_CALL if h.person_id in busy else None

    out = []
    for t in cascade_turns(hops, busy_with, policy, first):
        mark = "ring" if t.ring else "skip"
        out.append(f"{t.seq}:{t.hop.person_id}:{mark}" + (":busy" if t.busy_with else ""))
    return out


@pytest.mark.parametrize(
    ("hops", "busy", "policy", "first", "expected"),
    [
        ((ALICE, BOB), set(), BusyAgents.SKIP, 1, ["1:alice:ring", "2:bob:ring"]),
        ((ALICE, BOB), {"alice"}, BusyAgents.SKIP, 1, ["1:alice:skip:busy", "2:bob:ring"]),
        ((ALICE, BOB), {"alice"}, BusyAgents.LAST, 1, ["2:bob:ring", "1:alice:ring:busy"]),
        ((ALICE, BOB), {"alice"}, BusyAgents.RING, 1, ["1:alice:ring", "2:bob:ring"]),
        (
            (ALICE, BOB, SUP),
            {"alice", "bob"},
            BusyAgents.LAST,
            1,
            ["3:sup:ring", "1:alice:ring:busy", "2:bob:ring:busy"],
        ),
        (
            (ALICE, BOB),
            {"alice", "bob"},
            BusyAgents.SKIP,
            1,
            ["1:alice:skip:busy", "2:bob:skip:busy"],
        ),
        # A switchboard forward takes several calls: never "busy".
        ((DESK,), {"switchboard"}, BusyAgents.SKIP, 1, ["1:switchboard:ring"]),
        # Resumed after a restart at hop 2: hop 1 is history.
        ((ALICE, BOB), {"bob"}, BusyAgents.SKIP, 2, ["2:bob:skip:busy"]),
    ],
    ids=[
        "nobody-busy",
        "skip",
        "last",
        "ring-anyway",
        "last-two-busy-in-plan-order",
        "skip-everyone",
        "switchboard-never-busy",
        "resumed-at-hop-2",
    ],
)
def test_cascade_turns(
    hops: tuple[Hop, ...], busy: set[str], policy: BusyAgents, first: int, expected: list[str]
) -> None:
    assert turns(hops, busy, policy, first) == expected


def test_busy_is_asked_when_the_hop_comes_up() -> None:
    """Someone who hangs up while the first hops ring is free by the time it is theirs."""
    busy = {"bob"}

    def busy_with(h: Hop) -> str | None:
        return OTHER_CALL if h.person_id in busy else None

    seen = []
    for t in cascade_turns((ALICE, BOB), busy_with, BusyAgents.SKIP):
        seen.append((t.hop.person_id, t.ring))
        busy.clear()  # bob's other call ends while alice rings
    assert seen == [("alice", True), ("bob", True)]


def test_engaged_targets_are_held_per_call_and_released() -> None:
    engaged = EngagedTargets()
    assert engaged.holder(ALICE.target, "call-2") is None
    with engaged.engage(ALICE.target, "call-1"):
        assert engaged.holder(ALICE.target, "call-2") == "call-1"
        assert engaged.holder(ALICE.target, "call-1") is None  # its own call: not busy
        assert engaged.holder(BOB.target, "call-2") is None
        with engaged.engage(ALICE.target, "call-3"):  # rung anyway (busy_agents: ring)
            pass
        assert engaged.holder(ALICE.target, "call-2") == "call-1"
    assert engaged.holder(ALICE.target, "call-2") is None
    assert len(engaged) == 0


async def _first_call_talks_to_alice(line: Line) -> str:
    first = await line.arrive(CALLER)
    leg = await line.leg(1)
    await line.rings(leg)
    await line.answers(leg)
    await line.playing("astreinte-press-1", leg)
    await line.presses(leg, "1")
    await line.until(lambda: CallState.BRIDGED in line.states(first), "bridged")
    return first


@virtual_time
async def test_second_caller_skips_the_busy_agent_and_rings_the_backup_at_once() -> None:
    line = Line(plan(ALICE, BOB))
    first = await _first_call_talks_to_alice(line)
    arrived = line.now()
    second = await line.arrive(SECOND)
    await line.leg(2)
    assert line.originated()[1]["target"] == BOB.target
    # Only the announcement (finished at once by the fake PBX) before bob rings.
    assert (line.now() - arrived).total_seconds() < 1
    skipped, rung = line.hops(second)
    assert (skipped.seq, skipped.person_id, rung.seq, rung.person_id) == (1, "alice", 2, "bob")
    end = line.hop_ends(second)[0]
    assert end.outcome is HopOutcome.SKIPPED
    assert end.cause_text == f"busy: on call {first[:8]} (not rung)"
    await line.hangs_up(SECOND)
    await line.hangs_up(CALLER)
    await line.done()
    assert [e.outcome for e in line.hop_ends(second)] == [HopOutcome.SKIPPED, HopOutcome.CANCELLED]


@virtual_time
async def test_busy_agent_rung_last_after_the_backup_failed() -> None:
    line = Line(plan(ALICE, BOB, busy_agents=BusyAgents.LAST))
    first = await _first_call_talks_to_alice(line)
    second = await line.arrive(SECOND)
    await line.fails(await line.leg(2), 17, "User busy")  # bob first
    last = await line.leg(3)
    assert line.originated()[2]["target"] == ALICE.target  # then alice, last
    await line.fails(last, 17, "User busy")
    await line.until(lambda: CallState.ENDED in line.states(second), "second call ended")
    assert [(h.seq, h.person_id) for h in line.hops(second)] == [(2, "bob"), (1, "alice")]
    why = [e.reason for e in line.trail.of(StateChanged) if e.call_id == second]
    assert f"hop 1: busy: on call {first[:8]} (rung last)" in why
    assert line.ended(second).detail == "all 2 hops failed"
    await line.hangs_up(CALLER)
    await line.done()
