"""Early dial: hop 1 rings while the caller hears the announcement.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from astreinte_ari.callflow.audit_events import StateChanged
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.telephony import TelephonyError
from astreinte_ari.routing.plan import AnnouncementMode, CallPlan, Period
from tests.unit.call_flow_stories import (
    ALICE,
    ANNOUNCEMENT,
    BOB,
    PRESS_1,
    VM,
    HopEnd,
    Script,
    Story,
    accepted_then_agent_hangs_up,
    accepts,
    at_the_prompt,
    bridged,
    ended,
    leaves_message,
    presses,
    story,
    tell,
)
from tests.unit.callflow_fakes import FakePbx, hop, plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time

EARLY = {"early_dial": True}
CUT = {"early_dial": True, "announcement_mode": AnnouncementMode.UNTIL_ACCEPTED}
NOTICE = "astreinte-recorded"
ANNOUNCEMENT_HELD = lambda: FakePbx(held_sounds=frozenset({ANNOUNCEMENT, NOTICE}))  # noqa: E731


def announced(*, answer_s: float, key_s: float | None = None, end_s: float = 6.0) -> Script:
    """Alice's phone rings at once; she answers at `answer_s` and presses 1 at `key_s`
    (None: never); the announcement (held by the PBX) ends at `end_s`; the caller
    talks 10 s once bridged. Events are fed in the order of their times."""

    async def script(line: Line) -> str:
        call = await line.arrive()
        leg = await line.leg()
        announcement = await line.playing(ANNOUNCEMENT, CALLER)
        await line.rings(leg)
        steps: list[tuple[float, int, Callable[[], Awaitable[None]]]] = [
            (answer_s, 0, lambda: answer_and_hear_prompt(line, leg)),
            (end_s, 2, lambda: line.finishes(announcement)),
        ]
        if key_s is not None:
            steps.append((key_s, 1, lambda: line.presses(leg, "1")))
        for at_s, _, step in sorted(steps, key=lambda s: s[:2]):
            await line.wait(at_s - line.at(line.now()))
            await step()
        await bridged(line, call)
        await line.wait(10)
        await line.hangs_up(CALLER)
        return call

    return script


async def answer_and_hear_prompt(line: Line, leg: str) -> None:
    await line.answers(leg)
    await line.playing(PRESS_1, leg)


def bridged_at(
    seconds: float, *, agent_held: bool, cut: bool = False
) -> Callable[[Line, str], None]:
    """When the bridge came, whether the agent waited on hold, whether the
    announcement was cut short; and the agent's phone rang at once (early dial)."""

    def check(line: Line, call_id: str) -> None:
        [bridge] = [e for e in line.trail.of(StateChanged) if e.to_state is CallState.BRIDGED]
        assert line.at(bridge.at) == seconds
        assert line.at(line.hops(call_id)[0].at) == 0.0, "hop 1 waited for the announcement"
        leg = line.originated()[0]["channel_id"]
        assert ((leg, "astreinte-ringback") in line.pbx.did("start_hold")) is agent_held
        assert ((leg,) in line.pbx.did("stop_hold")) is agent_held
        [announcement] = line.plays(ANNOUNCEMENT, CALLER)
        assert ((announcement,) in line.pbx.did("stop_playback")) is cut

    return check


def caller_hears_ringback(line: Line, call_id: str) -> None:
    assert (CALLER, "astreinte-ringback") in line.pbx.did("start_hold")


def caller_hears_no_ringback(line: Line, call_id: str) -> None:
    assert not [a for a in line.pbx.did("start_hold") if a[0] == CALLER]


def early(story_id: str, *plans: CallPlan, **fields: Any) -> Any:
    return story(story_id, *plans, pbx=fields.pop("pbx", ANNOUNCEMENT_HELD), **fields)


async def leaves_while_alice_rings(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await line.rings(leg)
    await line.wait(3)
    await line.hangs_up(CALLER)
    await ended(line, call)
    assert (leg,) in line.pbx.did("hangup"), "the ringing agent leg was not cancelled"
    return call


async def leaves_while_alice_at_the_prompt(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await line.rings(leg)
    await line.wait(1)
    await answer_and_hear_prompt(line, leg)
    await line.wait(1)
    await line.hangs_up(CALLER)
    return call


def accepts_then(then: Callable[[Line, str, str], Awaitable[None]]) -> Script:
    """Alice accepts at 2 s while the (full) announcement plays, then `then`."""

    async def script(line: Line) -> str:
        call = await line.arrive()
        leg = await line.leg()
        await line.rings(leg)
        await line.wait(2)
        await answer_and_hear_prompt(line, leg)
        await line.presses(leg, "1")
        await line.until(lambda: CallState.AGENT_WAITING in line.states(call), "on hold")
        await line.wait(1)
        await then(line, call, leg)
        return call

    return script


async def caller_leaves(line: Line, call: str, leg: str) -> None:
    await line.hangs_up(CALLER)


async def alice_leaves_then_bob_accepts(line: Line, call: str, leg: str) -> None:
    await line.hangs_up(leg)
    await line.finishes(line.plays(ANNOUNCEMENT, CALLER)[0])
    await accepts(line, await line.leg(2))
    await bridged(line, call)
    await line.wait(5)
    await line.hangs_up(CALLER)


async def alice_leaves_then_message(line: Line, call: str, leg: str) -> None:
    await line.hangs_up(leg)
    await line.wait(2)
    await line.finishes(line.plays(ANNOUNCEMENT, CALLER)[0])
    await leaves_message(line, 4)


async def busy_then_bob_busy_then_message(line: Line) -> str:
    call = await line.arrive()
    await line.fails(await line.leg(1), 17, "User busy")
    await line.fails(await line.leg(2), 17, "User busy")
    await line.wait(6)
    assert not line.pbx.did("record"), "voicemail before the announcement ended"
    await line.finishes(line.plays(ANNOUNCEMENT, CALLER)[0])
    await leaves_message(line, 4)
    return call


async def forward_answers_during_the_announcement(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await line.wait(1)
    await line.answers(leg)
    await line.wait(2)
    await line.finishes(line.plays(ANNOUNCEMENT, CALLER)[0])
    await bridged(line, call)
    await line.wait(10)
    await line.hangs_up(CALLER)
    return call


async def accepts_during_the_notice(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    notice = await line.playing(NOTICE, CALLER)
    await line.wait(1)
    await answer_and_hear_prompt(line, leg)
    await line.presses(leg, "1")
    await line.wait(2)
    await line.finishes(notice)
    await bridged(line, call)
    assert line.plays(ANNOUNCEMENT) == [], "the announcement after the notice was not skipped"
    await line.wait(10)
    await line.hangs_up(CALLER)
    return call


async def announcement_never_ends(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await answer_and_hear_prompt(line, leg)
    await line.presses(leg, "1")
    await bridged(line, call)
    await line.wait(10)
    await line.hangs_up(CALLER)
    return call


def left_during_the_announcement(line: Line, call_id: str) -> None:
    [closed] = [c for c in line.closed if c.call_id == call_id]
    assert closed.last_state is CallState.ANNOUNCING  # not "missed while we rang"


TALKED_10 = "talked 10.0s with alice, ended by caller"
ACCEPTED = (HopOutcome.ACCEPTED,)
HOLD_PATH = "announcing > dialing > agent_prompt > agent_waiting > bridged > ended"

EARLY_DIAL = [
    early(
        "accepts after the announcement: bridged at once, no wait added",
        plan(ALICE, **EARLY),
        script=announced(answer_s=7, key_s=8),
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail=TALKED_10,
        hops=ACCEPTED,
        check=bridged_at(8.0, agent_held=False),
    ),
    early(
        "full: accepts during the announcement, on hold until it ends",
        plan(ALICE, **EARLY),
        script=announced(answer_s=2, key_s=3),
        path=HOLD_PATH,
        outcome=CallOutcome.ACCEPTED,
        detail=TALKED_10,
        hops=ACCEPTED,
        check=bridged_at(6.0, agent_held=True),
    ),
    early(
        "until_accepted: accepts during the announcement, cut, bridged at once",
        plan(ALICE, **CUT),
        script=announced(answer_s=2, key_s=3),
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        # Hung up 10 s after the PBX's late PlaybackFinished (6 s) of the announcement
        # it cut: noise, which changes nothing.
        detail="talked 13.0s with alice",
        hops=ACCEPTED,
        check=bridged_at(3.0, agent_held=False, cut=True),
    ),
    early(
        "full: the key and the announcement's end at the same instant (key first)",
        plan(ALICE, **EARLY),
        script=announced(answer_s=2, key_s=6),
        path=HOLD_PATH,
        outcome=CallOutcome.ACCEPTED,
        detail=TALKED_10,
        hops=ACCEPTED,
        check=bridged_at(6.0, agent_held=True),
    ),
    early(
        "until_accepted: the key and the announcement's end at the same instant",
        plan(ALICE, **CUT),
        script=announced(answer_s=2, key_s=6),
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail=TALKED_10,
        hops=ACCEPTED,
        check=bridged_at(6.0, agent_held=False, cut=True),
    ),
    early(
        "the announcement ends while alice is at the prompt: ringback, then bridge",
        plan(ALICE, **EARLY),
        script=announced(answer_s=5, key_s=7),
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail=TALKED_10,
        hops=ACCEPTED,
        check=bridged_at(7.0, agent_held=False),
    ),
    early(
        "until_accepted never cuts the recorded-call notice: alice waits for it",
        plan(ALICE, recorded_notice=NOTICE, **CUT),
        script=accepts_during_the_notice,
        path=HOLD_PATH,
        outcome=CallOutcome.ACCEPTED,
        detail=TALKED_10,
        hops=ACCEPTED,
        check=caller_hears_no_ringback,
    ),
    early(
        "the caller hangs up during the announcement while alice rings",
        plan(ALICE, **EARLY),
        script=leaves_while_alice_rings,
        path="announcing > dialing > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at dialing (hop 1: alice (alice)) during the announcement: "
        "caller hung up, cause 16",
        hops=(HopOutcome.CANCELLED,),
        hop1=HopEnd(None, "caller hung up during the announcement", 3.0),
        check=left_during_the_announcement,
    ),
    early(
        "the caller hangs up while alice hears the prompt (announcement playing)",
        plan(ALICE, **EARLY),
        script=leaves_while_alice_at_the_prompt,
        path="announcing > dialing > agent_prompt > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at agent_prompt (hop 1: alice (alice)) during the announcement",
        hops=(HopOutcome.CANCELLED,),
        hop1=HopEnd(None, "caller hung up during the announcement", 2.0),
    ),
    early(
        "the caller hangs up while alice waits on hold",
        plan(ALICE, **EARLY),
        script=accepts_then(caller_leaves),
        path="announcing > dialing > agent_prompt > agent_waiting > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at agent_waiting (hop 1: alice (alice)) during the announcement",
        hops=(HopOutcome.CANCELLED,),
        hop1=HopEnd(None, "caller hung up during the announcement, the agent on hold", 3.0, "1"),
        check=left_during_the_announcement,
    ),
    early(
        "alice hangs up on hold: bob rings, accepts after the announcement",
        plan(ALICE, BOB, **EARLY),
        script=accepts_then(alice_leaves_then_bob_accepts),
        path="announcing > dialing > agent_prompt > agent_waiting > dialing > agent_prompt"
        " > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 5.0s with bob, ended by caller",
        hops=(HopOutcome.DECLINED, HopOutcome.ACCEPTED),
        hop1=HopEnd(
            16, "hung up while waiting for the announcement to end (Normal Clearing)", 3.0, "1"
        ),
    ),
    early(
        "alice, the last hop, hangs up on hold: voicemail once the announcement ends",
        plan(ALICE, final=VM, **EARLY),
        script=accepts_then(alice_leaves_then_message),
        path="announcing > dialing > agent_prompt > agent_waiting > voicemail_greeting"
        " > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        hops=(HopOutcome.DECLINED,),
        ended_s=9.0,
    ),
    early(
        "every hop busy during the announcement: voicemail only after it",
        plan(ALICE, BOB, final=VM, **EARLY),
        script=busy_then_bob_busy_then_message,
        path="announcing > dialing > dialing > voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        hops=(HopOutcome.BUSY, HopOutcome.BUSY),
        ended_s=10.0,
        check=caller_hears_no_ringback,
    ),
    early(
        "business forward answered during the announcement: waits for its end",
        plan(hop("alice", "+33612345678", require_accept=False), period=Period.BUSINESS, **EARLY),
        script=forward_answers_during_the_announcement,
        path="announcing > dialing > agent_waiting > bridged > ended",
        outcome=CallOutcome.CONNECTED,
        detail=TALKED_10,
        hops=(HopOutcome.CONNECTED,),
        ended_s=13.0,
    ),
    early(
        "the announcement never ends: alice on hold is bridged after 120 s",
        plan(ALICE, **EARLY),
        script=announcement_never_ends,
        path=HOLD_PATH,
        outcome=CallOutcome.ACCEPTED,
        detail=TALKED_10,
        hops=ACCEPTED,
        ended_s=130.0,
    ),
    story(
        "the PBX refuses the announcement: alice rings all the same, with ringback",
        plan(ALICE, **EARLY),
        script=accepted_then_agent_hangs_up,
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 42.0s with alice, ended by agent",
        hops=ACCEPTED,
        pbx=lambda: FakePbx(errors={"play": [TelephonyError("sound not found"), None]}),
        check=caller_hears_ringback,
    ),
    story(
        "early dial without an announcement: the usual flow",
        plan(ALICE, announcement=None, **EARLY),
        script=at_the_prompt(presses("1")),
        path="dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail=TALKED_10,
        hops=ACCEPTED,
    ),
]


@pytest.mark.parametrize("story", EARLY_DIAL)
@virtual_time
async def test_early_dial(story: Story) -> None:
    await tell(story)
