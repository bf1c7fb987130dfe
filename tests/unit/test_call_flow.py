"""The inbound call flow, table by table, over a scripted PBX in virtual time.

Each row is a story: a plan, what the parties do (the script plays the PBX's
part: answers, keys, hangups), and what the audit trail must then say: the
states the call went through, its outcome, how each hop ended and when. The
scenario clock is the event loop's (tests/unit/virtual_time.py): a 20 s ring
timeout costs nothing, and "the hop ended at 23 s" is exact.

Every story also checks what holds for any call: its transitions are numbered
without gaps, each hop that started ended once, the call's ending is its last
record, and nobody is left on the line (every leg and caller hung up).

The last tests check that the stories together reach every CallState and take
every allowed transition: a new state or transition needs a story here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

import pytest

from astreinte_ari.callflow.audit_events import CallEnded, CallStarted, HopEnded, StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import (
    ALLOWED_TRANSITIONS,
    CallOutcome,
    CallState,
    HopOutcome,
)
from astreinte_ari.callflow.recovery import ResumePoint
from astreinte_ari.callflow.ringing import classify_failure
from astreinte_ari.callflow.runtime import CallRuntime, SoundLibrary
from astreinte_ari.callflow.telephony import (
    Bridge,
    Channel,
    ChannelLeft,
    DialRefused,
    PlaybackFinished,
    Resynced,
    TelephonyError,
)
from astreinte_ari.routing.plan import (
    AnnouncementMode,
    BusyAgents,
    CallPlan,
    FinalAction,
    MenuChoicePlan,
    MenuPlan,
    Period,
)
from tests.unit.callflow_fakes import DID, T0, FakePbx, Trail, hop, plan
from tests.unit.callflow_line import CALLER, DID2, Line, wav
from tests.unit.virtual_time import virtual_time

SECOND, THIRD = "1764540000.2", "1764540000.3"
ALICE = hop("alice", "+33612345678")
BOB = hop("bob", "+33698765432")
CAROL = hop("carol", "+33611000000")  # a menu line's own cascade: never rung
VM = FinalAction.VOICEMAIL
ANNOUNCEMENT = "astreinte-after-hours"
PRESS_1 = "astreinte-press-1"
GREETING = "astreinte-voicemail"
PLEASE_WAIT = "astreinte-please-wait"
NO_ONE = "astreinte-no-one"

Script = Callable[[Line], Awaitable[str]]  # plays the parties' part; returns the call id


@dataclass(frozen=True)
class HopEnd:
    """How the first hop ended, in the trail's words, and when (scenario seconds)."""

    cause: int | None
    text: str | None
    at_s: float
    dtmf: str | None = None


@dataclass(frozen=True)
class Story:
    plans: tuple[CallPlan, ...]
    script: Script
    path: str  # the states after `start`: "announcing > dialing > ended"
    outcome: CallOutcome
    detail: str  # how the CallEnded detail starts
    hops: tuple[HopOutcome, ...] = ()  # how each hop of the call ended
    hop1: HopEnd | None = None
    ended_s: float | None = None  # when the call ended (scenario seconds)
    start: CallState = CallState.RECEIVED
    pbx: Callable[[], FakePbx] = FakePbx
    service: dict[str, Any] = field(default_factory=dict)
    check: Callable[[Line, str], None] | None = None  # what else this story shows

    def states(self) -> list[CallState]:
        return [CallState(s.strip()) for s in self.path.split(">")]

    def transitions(self) -> list[tuple[CallState, CallState]]:
        states = self.states()
        return list(zip([self.start, *states[:-1]], states, strict=True))


def story(story_id: str, *plans: CallPlan, **fields: Any) -> Any:
    return pytest.param(Story(plans, **fields), id=story_id)


async def tell(story: Story) -> tuple[Line, str]:
    """Run the story to its end, check what the trail says and what holds for any call."""
    line = Line(*story.plans, pbx=story.pbx(), **story.service)
    call_id = await story.script(line)
    await line.done()
    assert line.transitions(call_id) == story.transitions()
    ended = line.ended(call_id)
    assert ended.outcome is story.outcome, ended.detail
    assert ended.detail.startswith(story.detail), ended.detail
    assert [e.outcome for e in line.hop_ends(call_id)] == list(story.hops)
    if story.hop1 is not None:
        first = line.hop_ends(call_id)[0]
        seen = HopEnd(first.cause_code, first.cause_text, line.at(first.at), first.dtmf)
        assert seen == story.hop1
    if story.ended_s is not None:
        assert line.at(ended.at) == story.ended_s
    assert_well_recorded(line, call_id, story.start)
    assert_nobody_left_on_the_line(line)
    if story.check is not None:
        story.check(line, call_id)
    return line, call_id


def assert_well_recorded(line: Line, call_id: str, start: CallState) -> None:
    trail = line.trail
    seqs = [e.seq for e in trail.of(StateChanged) if e.call_id == call_id]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "transitions numbered with gaps"
    started = [e for e in trail.of(CallStarted) if e.call_id == call_id]
    if start is CallState.RECEIVED:
        assert seqs[0] == 1
        assert len(started) == 1
    hop_ids = [h.hop_id for h in line.hops(call_id)]
    ended_hops = [e.hop_id for e in trail.of(HopEnded) if e.hop_id in hop_ids]
    assert sorted(ended_hops) == sorted(hop_ids), "a hop left open, or ended twice"
    mine = [
        e
        for e in trail.events
        if getattr(e, "call_id", None) == call_id or getattr(e, "hop_id", None) in hop_ids
    ]
    assert isinstance(mine[-1], CallEnded), "the call's ending is not its last record"


def assert_nobody_left_on_the_line(line: Line) -> None:
    """Every leg rung and every caller ended: by the service, or by the party."""
    pbx = line.pbx
    never_dialled = {dict(args)["channel_id"] for name, args in pbx.refused if name == "originate"}
    legs = {leg["channel_id"] for leg in line.originated()} - never_dialled
    callers = {chan.id for chan in line.callers.values()}
    hung_up = {args[0] for args in pbx.did("hangup")}
    assert (legs | callers) - hung_up - line.gone == set(), "left on the line"


# -- what parties do (steps scripts share) ---------------------------------------------


async def accepts(line: Line, leg: str, after_s: float = 2.0) -> None:
    """The agent's phone rings, they answer after `after_s` and press 1."""
    await line.rings(leg)
    await line.wait(after_s)
    await line.answers(leg)
    await line.playing(PRESS_1, leg)
    await line.presses(leg, "1")


async def bridged(line: Line, call_id: str) -> None:
    await line.until(lambda: CallState.BRIDGED in line.states(call_id), "bridged")


async def ended(line: Line, call_id: str) -> None:
    await line.until(lambda: CallState.ENDED in line.states(call_id), "call ended")


async def leaves_message(line: Line, seconds: float, channel_id: str = CALLER) -> None:
    name = await line.recording(channel_id)
    await line.wait(seconds)
    await line.records(name, seconds)


def nobody_rung(line: Line, call_id: str) -> None:
    assert line.originated() == []
    assert line.hops(call_id) == []


async def queued_behind_a_ringing_call(line: Line) -> tuple[str, str]:
    """A first call takes the only cascade slot; a second caller waits on hold."""
    first = await line.arrive(CALLER)
    await line.leg(1)
    second = await line.arrive(SECOND)
    await line.playing(PLEASE_WAIT, SECOND)
    await line.until(lambda: (SECOND, "astreinte-ringback") in line.pbx.did("start_hold"), "hold")
    assert len(line.originated()) == 1, "the queued call rang someone"
    return first, second


# -- 1. The paths through the flow ------------------------------------------------------


async def accepted_then_agent_hangs_up(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await accepts(line, leg)
    await bridged(line, call)
    await line.wait(42)
    await line.hangs_up(leg)
    return call


async def forward_answered_then_caller_hangs_up(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await line.answers(leg)
    await bridged(line, call)
    await line.wait(30)
    await line.hangs_up(CALLER)
    return call


async def leaves_a_message(line: Line) -> str:
    call = await line.arrive()
    await leaves_message(line, 12)
    return call


async def hears_no_one(line: Line) -> str:
    call = await line.arrive()
    await line.playing(NO_ONE, CALLER)
    return call


async def busy_then_no_answer_then_message(line: Line) -> str:
    call = await line.arrive()
    await line.fails(await line.leg(1), 17, "User busy")
    await line.rings(await line.leg(2))  # and nobody answers: the service gives up
    await leaves_message(line, 20)
    return call


async def wrong_key_then_next_hop_accepts(line: Line) -> str:
    call = await line.arrive()
    first = await line.leg(1)
    await line.answers(first)
    await line.playing(PRESS_1, first)
    await line.presses(first, "2")
    await accepts(line, await line.leg(2))
    await bridged(line, call)
    await line.wait(5)
    await line.hangs_up(CALLER)
    return call


async def wrong_key_then_empty_message(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await line.answers(leg)
    await line.playing(PRESS_1, leg)
    await line.presses(leg, "9")
    await leaves_message(line, 0.2)
    return call


async def rejected_then_congestion(line: Line) -> str:
    call = await line.arrive()
    await line.fails(await line.leg(1), 21, "Call Rejected")
    await line.fails(await line.leg(2), 34, "Circuit/channel congestion")
    await line.playing(NO_ONE, CALLER)
    return call


def voicemail_kept(line: Line, call_id: str) -> None:
    assert line.mailbox.saved[call_id] == line.pbx.stored_recording
    assert line.ended(call_id).voicemail_path == line.mailbox.path_for(call_id, T0)
    assert line.pbx.did("delete_recording"), "the PBX's copy is left to grow the spool"


def bridge_of_caller_and_agent(line: Line, call_id: str) -> None:
    [(bridge_id, parties)] = line.pbx.did("add_to_bridge")
    assert parties == (CALLER, line.originated()[-1]["channel_id"])
    assert (bridge_id,) in line.pbx.did("destroy_bridge")


PATHS = [
    story(
        "accepted after the announcement, the agent hangs up",
        plan(ALICE),
        script=accepted_then_agent_hangs_up,
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 42.0s with alice, ended by agent",
        hops=(HopOutcome.ACCEPTED,),
        ended_s=44.0,
        check=bridge_of_caller_and_agent,
    ),
    story(
        "business-hours forward: connected without a key",
        plan(
            hop("alice", "+33612345678", require_accept=False),
            announcement=None,
            period=Period.BUSINESS,
        ),
        script=forward_answered_then_caller_hangs_up,
        path="dialing > bridged > ended",
        outcome=CallOutcome.CONNECTED,
        detail="talked 30.0s with alice, ended by caller",
        hops=(HopOutcome.CONNECTED,),
        check=bridge_of_caller_and_agent,
    ),
    story(
        "nobody on duty: straight to voicemail",
        plan(announcement=None, final=VM),
        script=leaves_a_message,
        path="voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        check=voicemail_kept,
    ),
    story(
        "rate-limited caller: announcement, then voicemail",
        plan(final=VM, note="caller rate limit: more than 3 calls in 10 min"),
        script=leaves_a_message,
        path="announcing > voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
    ),
    story(
        "nobody on duty, no voicemail: announcement, then 'no one'",
        plan(),
        script=hears_no_one,
        path="announcing > ended",
        outcome=CallOutcome.NO_ONE,
        detail="nobody to ring",
    ),
    story(
        "nobody on duty, no voicemail, no announcement",
        plan(announcement=None),
        script=hears_no_one,
        path="ended",
        outcome=CallOutcome.NO_ONE,
        detail="nobody to ring",
    ),
    story(
        "cascade: busy, no answer, then voicemail",
        plan(ALICE, BOB, final=VM),
        script=busy_then_no_answer_then_message,
        path="announcing > dialing > dialing > voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        hops=(HopOutcome.BUSY, HopOutcome.NO_ANSWER),
    ),
    story(
        "cascade: a wrong key, the next hop accepts",
        plan(ALICE, BOB),
        script=wrong_key_then_next_hop_accepts,
        path="announcing > dialing > agent_prompt > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 5.0s with bob, ended by caller",
        hops=(HopOutcome.DECLINED, HopOutcome.ACCEPTED),
    ),
    story(
        "last hop declined, voicemail left empty",
        plan(ALICE, final=VM),
        script=wrong_key_then_empty_message,
        path="announcing > dialing > agent_prompt > voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL_EMPTY,
        detail="no message left",
        hops=(HopOutcome.DECLINED,),
    ),
    story(
        "every hop fails, no voicemail",
        plan(ALICE, BOB),
        script=rejected_then_congestion,
        path="announcing > dialing > dialing > ended",
        outcome=CallOutcome.NO_ONE,
        detail="all 2 hops failed",
        hops=(HopOutcome.REJECTED, HopOutcome.UNREACHABLE),
    ),
]


@pytest.mark.parametrize("story", PATHS)
@virtual_time
async def test_paths_through_the_call_flow(story: Story) -> None:
    await tell(story)


# -- 2. The caller hangs up, whatever the call is doing ------------------------------------


async def leaves_the_queue(line: Line) -> str:
    _, second = await queued_behind_a_ringing_call(line)
    await line.wait(3)
    await line.hangs_up(SECOND)
    await ended(line, second)
    await line.hangs_up(CALLER)
    return second


def leaves_at(state: str, *, after_s: float = 3.0, n: int = 1) -> Script:
    """The caller hangs up `after_s` seconds into `state` (its n-th time there)."""

    async def script(line: Line) -> str:
        call = await line.arrive()
        await line.until(lambda: line.states(call).count(CallState(state)) >= n, state)
        await line.wait(after_s)
        await line.hangs_up(CALLER)
        return call

    return script


async def leaves_while_ringing(line: Line) -> str:
    call = await line.arrive()
    await line.rings(await line.leg())
    await line.wait(8)
    await line.hangs_up(CALLER)
    return call


def leaves_at_the_prompt(after_s: float) -> Script:
    async def script(line: Line) -> str:
        call = await line.arrive()
        leg = await line.leg()
        await line.answers(leg)
        await line.playing(PRESS_1, leg)
        await line.wait(after_s)
        await line.hangs_up(CALLER)
        return call

    return script


async def leaves_while_talking(line: Line) -> str:
    call = await line.arrive()
    await accepts(line, await line.leg())
    await bridged(line, call)
    await line.wait(42)
    await line.hangs_up(CALLER, 16, "Normal Clearing")
    return call


def hangs_up_after_speaking(recording_finished: bool) -> Script:
    """Most messages end so: the caller hangs up; the PBX may or may not say it stopped."""

    async def script(line: Line) -> str:
        call = await line.arrive()
        name = await line.recording(CALLER)
        await line.wait(15)
        line.pbx.stored_recording = wav(15)
        await line.hangs_up(CALLER)
        if recording_finished:
            await line.records(name, 15)
        return call

    return script


def agent_leg_hung_up(line: Line, call_id: str) -> None:
    [leg] = [o["channel_id"] for o in line.originated()]
    assert (leg,) in [args[:1] for args in line.pbx.did("hangup")]
    assert [e.cause_text for e in line.hop_ends(call_id)] == ["caller hung up"]


def agent_hung_up_after_the_caller(line: Line, call_id: str) -> None:
    [accepted] = line.hop_ends(call_id)
    assert (accepted.cause_code, accepted.cause_text, accepted.dtmf) == (16, "Normal Clearing", "1")
    assert line.pbx.did("hangup")[-1][0] == line.originated()[0]["channel_id"]


CALLER_HANGS_UP = [
    story(
        "queued",
        plan(ALICE),
        script=leaves_the_queue,
        path="queued > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at queued: caller hung up, cause 16 Normal Clearing",
        ended_s=3.0,
        service={"max_parallel_cascades": 1},
    ),
    story(
        "announcing",
        plan(ALICE),
        script=leaves_at("announcing"),
        path="announcing > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at announcing: caller hung up, cause 16 Normal Clearing",
        ended_s=3.0,
        pbx=lambda: FakePbx(held_sounds=frozenset({ANNOUNCEMENT})),
        check=nobody_rung,
    ),
    story(
        "ringing a hop",
        plan(ALICE),
        script=leaves_while_ringing,
        path="announcing > dialing > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at dialing (hop 1: alice (alice)): caller hung up, cause 16",
        hops=(HopOutcome.CANCELLED,),
        ended_s=8.0,
        check=agent_leg_hung_up,
    ),
    story(
        "the agent hears the prompt",
        plan(ALICE),
        script=leaves_at_the_prompt(1),
        path="announcing > dialing > agent_prompt > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at agent_prompt (hop 1: alice (alice)): caller hung up, cause 16",
        hops=(HopOutcome.CANCELLED,),
        ended_s=1.0,
        pbx=lambda: FakePbx(held_sounds=frozenset({PRESS_1})),
        check=agent_leg_hung_up,
    ),
    story(
        "the agent is to press a key",
        plan(ALICE),
        script=leaves_at_the_prompt(4),
        path="announcing > dialing > agent_prompt > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at agent_prompt (hop 1: alice (alice)): caller hung up, cause 16",
        hops=(HopOutcome.CANCELLED,),
        ended_s=4.0,
        check=agent_leg_hung_up,
    ),
    story(
        "bridged: the conversation ends",
        plan(ALICE),
        script=leaves_while_talking,
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 42.0s with alice, ended by caller",
        hops=(HopOutcome.ACCEPTED,),
        ended_s=44.0,
        check=agent_hung_up_after_the_caller,
    ),
    story(
        "voicemail greeting",
        plan(ALICE, final=VM, announcement=None),
        script=leaves_at("voicemail_greeting"),
        path="dialing > voicemail_greeting > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at voicemail_greeting: caller hung up, cause 16 Normal Clearing",
        hops=(HopOutcome.UNREACHABLE,),
        pbx=lambda: FakePbx(held_sounds=frozenset({GREETING})),
    ),
    story(
        "recording: the message is kept",
        plan(final=VM, announcement=None),
        script=hangs_up_after_speaking(recording_finished=True),
        path="voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        ended_s=15.0,
        check=voicemail_kept,
    ),
    story(
        "recording: the PBX never says it stopped",
        plan(final=VM, announcement=None),
        script=hangs_up_after_speaking(recording_finished=False),
        path="voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        ended_s=20.0,  # the 5 s the PBX gets to close the file
        check=voicemail_kept,
    ),
]


@pytest.mark.parametrize("story", CALLER_HANGS_UP)
@virtual_time
async def test_the_caller_hangs_up(story: Story) -> None:
    await tell(story)


# -- 3. What the agent does at the prompt --------------------------------------------------

Agent = Callable[[Line, str], Awaitable[None]]


def presses(digit: str, channel: str | None = None) -> Agent:
    async def agent(line: Line, leg: str) -> None:
        await line.presses(channel or leg, digit)

    return agent


async def does_nothing(line: Line, leg: str) -> None:
    pass


async def hangs_up(line: Line, leg: str) -> None:
    await line.hangs_up(leg, 16, "Normal Clearing")


def at_the_prompt(agent: Agent) -> Script:
    """Alice answers 2 s after her phone rings, hears the prompt, then `agent`."""

    async def script(line: Line) -> str:
        call = await line.arrive()
        leg = await line.leg()
        await line.rings(leg)
        await line.wait(2)
        await line.answers(leg)
        await line.playing(PRESS_1, leg)
        await agent(line, leg)
        accepted = lambda: bool(line.pbx.did("add_to_bridge"))  # noqa: E731
        await line.until(lambda: bool(line.hop_ends(call)) or accepted(), "the hop decided")
        if accepted():
            await line.wait(10)
            await line.hangs_up(CALLER)
        return call

    return script


def prompt_stopped(line: Line, call_id: str) -> None:
    [prompt] = line.plays(PRESS_1)
    assert (prompt,) in line.pbx.did("stop_playback")


def agent_story(story_id: str, agent: Agent, outcome: HopOutcome, hop1: HopEnd, **kw: Any) -> Any:
    accepted = outcome is HopOutcome.ACCEPTED
    return story(
        story_id,
        plan(ALICE, announcement=None),
        script=at_the_prompt(agent),
        path="dialing > agent_prompt > " + ("bridged > ended" if accepted else "ended"),
        outcome=CallOutcome.ACCEPTED if accepted else CallOutcome.NO_ONE,
        detail="talked 10.0s with alice, ended by caller" if accepted else "all 1 hops failed",
        hops=(outcome,),
        hop1=hop1,
        **kw,
    )


AGENT_AT_THE_PROMPT = [
    agent_story(
        "presses 1 once the prompt is over",
        presses("1"),
        HopOutcome.ACCEPTED,
        HopEnd(16, "Normal Clearing", 12.0, "1"),  # closed when the talk ends
    ),
    agent_story(
        "presses 1 during the prompt: it is cut",
        presses("1"),
        HopOutcome.ACCEPTED,
        HopEnd(16, "Normal Clearing", 12.0, "1"),
        pbx=lambda: FakePbx(held_sounds=frozenset({PRESS_1})),
        check=prompt_stopped,
    ),
    agent_story(
        "presses a wrong key",
        presses("2"),
        HopOutcome.DECLINED,
        HopEnd(None, "wrong key '2'", 2.0, "2"),
    ),
    agent_story(
        "sends something that is no key",
        presses("1; DROP TABLE calls"),
        HopOutcome.DECLINED,
        HopEnd(None, "wrong key '?'", 2.0, "?"),
    ),
    agent_story(
        "presses no key: the accept window closes",
        does_nothing,
        HopOutcome.NOT_ACCEPTED,
        HopEnd(None, "no key pressed", 7.0),  # answered at 2 s, 5 s window
    ),
    agent_story(
        "presses no key during a prompt that never ends",
        does_nothing,
        HopOutcome.NOT_ACCEPTED,
        HopEnd(None, "no key pressed", 62.0),  # the prompt's 60 s cap
        pbx=lambda: FakePbx(held_sounds=frozenset({PRESS_1})),
    ),
    agent_story(
        "hangs up at the prompt",
        hangs_up,
        HopOutcome.DECLINED,
        HopEnd(16, "hung up at prompt (Normal Clearing)", 2.0),
    ),
    agent_story(
        "the caller's key 1 does not accept for the agent",
        presses("1", channel=CALLER),
        HopOutcome.NOT_ACCEPTED,
        HopEnd(None, "no key pressed", 7.0),
    ),
]


@pytest.mark.parametrize("story", AGENT_AT_THE_PROMPT)
@virtual_time
async def test_the_agent_at_the_prompt(story: Story) -> None:
    line, call = await tell(story)
    accepted = ["accepted"] if story.hops[0] is HopOutcome.ACCEPTED else []
    events = ["ringing", "answered", *accepted]
    assert line.progress(call) == [(1, e) for e in events]


# -- 4. Why a hop fails; the cascade goes on to the next hop and to voicemail ---------------


def leg_fails(cause: int | None, text: str = "", *, rings: bool, after_s: float = 5.0) -> Script:
    """Alice's leg ends unanswered (cause None: no event, the service times out);
    Bob is busy; the caller leaves a message."""

    async def script(line: Line) -> str:
        call = await line.arrive()
        leg = await line.leg(1)
        if rings:
            await line.rings(leg)
        await line.wait(after_s)
        if cause is not None:
            await line.fails(leg, cause, text)
        await line.fails(await line.leg(2), 17, "User busy")
        await leaves_message(line, 8)
        return call

    return script


def failing_hop(story_id: str, script: Script, outcome: HopOutcome, hop1: HopEnd, **kw: Any) -> Any:
    return story(
        story_id,
        plan(ALICE, BOB, final=VM),
        script=script,
        path="announcing > dialing > dialing > voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        hops=(outcome, HopOutcome.BUSY),
        hop1=hop1,
        **kw,
    )


def originate_error(error: Exception) -> Callable[[], FakePbx]:
    return lambda: FakePbx(errors={"originate": [error, None]})


async def refused_then_busy(line: Line) -> str:
    call = await line.arrive()
    await line.leg(1)
    await line.fails(await line.leg(2), 17, "User busy")
    await leaves_message(line, 8)
    return call


HOP_FAILURES = [
    failing_hop(
        "busy",
        leg_fails(17, "User busy", rings=True),
        HopOutcome.BUSY,
        HopEnd(17, "User busy", 5.0),
    ),
    failing_hop(
        "busy before ringing",
        leg_fails(17, "User busy", rings=False, after_s=0),
        HopOutcome.BUSY,
        HopEnd(17, "User busy", 0.0),
    ),
    failing_hop(
        "rejected (603 Decline)",
        leg_fails(21, "Call Rejected", rings=True),
        HopOutcome.REJECTED,
        HopEnd(21, "Call Rejected", 5.0),
    ),
    failing_hop(
        "unreachable: congestion",
        leg_fails(34, "Circuit/channel congestion", rings=False, after_s=0),
        HopOutcome.UNREACHABLE,
        HopEnd(34, "Circuit/channel congestion", 0.0),
    ),
    failing_hop(
        "unreachable: subscriber absent",
        leg_fails(20, "Subscriber absent", rings=False, after_s=1),
        HopOutcome.UNREACHABLE,
        HopEnd(20, "unreachable: subscriber absent", 1.0),
    ),
    failing_hop(
        "no answer: it rang, then the SIP transaction timed out",
        leg_fails(18, "No user responding", rings=True, after_s=16),
        HopOutcome.NO_ANSWER,
        HopEnd(18, "no answer (no user responding)", 16.0),
    ),
    failing_hop(
        "unreachable: SIP timeout",
        leg_fails(18, "No user responding", rings=False, after_s=16),
        HopOutcome.UNREACHABLE,
        HopEnd(18, "unreachable: no user responding", 16.0),
    ),
    failing_hop(
        "unreachable: no response until Asterisk's timeout",
        leg_fails(0, "Unknown", rings=False, after_s=20),
        HopOutcome.UNREACHABLE,
        HopEnd(0, "unreachable: no response", 20.0),
    ),
    failing_hop(
        "no answer: rang until Asterisk's timeout",
        leg_fails(0, "Unknown", rings=True, after_s=20),
        HopOutcome.NO_ANSWER,
        HopEnd(0, "no answer (rang until the timeout)", 20.0),
    ),
    failing_hop(
        "no answer: the phone gave up ringing",
        leg_fails(19, "User alerting, no answer", rings=True, after_s=15),
        HopOutcome.NO_ANSWER,
        HopEnd(19, "no answer", 15.0),
    ),
    failing_hop(
        "no answer: normal clearing while ringing",
        leg_fails(16, "Normal Clearing", rings=True, after_s=9),
        HopOutcome.NO_ANSWER,
        HopEnd(16, "Normal Clearing", 9.0),
    ),
    failing_hop(
        "no answer: the service's ring timeout",
        leg_fails(None, rings=True, after_s=0),
        HopOutcome.NO_ANSWER,
        HopEnd(None, "no answer within 20 s (service timeout)", 23.0),
    ),
    failing_hop(
        "unreachable: the service's ring timeout, never rang",
        leg_fails(None, rings=False, after_s=0),
        HopOutcome.UNREACHABLE,
        HopEnd(None, "unreachable: no response within 20 s (service timeout)", 23.0),
    ),
    failing_hop(
        "refused by the dial guard: never dialled",
        refused_then_busy,
        HopOutcome.REFUSED,
        HopEnd(None, "+33612345678 is not allowed by the trunk", 0.0),
        pbx=originate_error(DialRefused("+33612345678 is not allowed by the trunk")),
    ),
    failing_hop(
        "telephony error: the originate failed",
        refused_then_busy,
        HopOutcome.FAILED,
        HopEnd(None, "ARI 500 POST /channels: Internal Server Error", 0.0),
        pbx=originate_error(TelephonyError("ARI 500 POST /channels: Internal Server Error")),
    ),
]


@pytest.mark.parametrize("story", HOP_FAILURES)
@virtual_time
async def test_a_hop_fails_and_the_cascade_goes_on(story: Story) -> None:
    line, call = await tell(story)
    first, second = line.hops(call)
    assert (first.person_id, second.person_id) == ("alice", "bob")
    assert story.hop1 is not None
    rang = (1, "ringing") in line.progress(call)
    if story.hop1.cause is not None:  # the trail agrees with the classification
        assert classify_failure(story.hop1.cause, rang) is story.hops[0]


@pytest.mark.parametrize(
    ("cause", "ringing", "outcome"),
    [
        (17, False, HopOutcome.BUSY),
        (17, True, HopOutcome.BUSY),
        (21, True, HopOutcome.REJECTED),
        (0, True, HopOutcome.NO_ANSWER),
        (0, False, HopOutcome.UNREACHABLE),
        (16, True, HopOutcome.NO_ANSWER),
        (16, False, HopOutcome.UNREACHABLE),
        (18, True, HopOutcome.NO_ANSWER),
        (18, False, HopOutcome.UNREACHABLE),
        (19, True, HopOutcome.NO_ANSWER),
        (20, True, HopOutcome.UNREACHABLE),
        (34, False, HopOutcome.UNREACHABLE),
        (127, True, HopOutcome.UNREACHABLE),
    ],
    ids=lambda v: str(v).lower() if not isinstance(v, bool) else ("rang" if v else "silent"),
)
def test_classify_failure(cause: int, ringing: bool, outcome: HopOutcome) -> None:
    assert classify_failure(cause, ringing) is outcome


# -- 5. A party already gone is a race, not an error (404 from the PBX) ---------------------


async def announcement_ends_then_stasis_end(line: Line) -> str:
    """Asterisk ends the prompt the caller hung up on before StasisEnd, with no
    hangup request first: the prompt 'finished' must not ring anyone."""
    call = await line.arrive()
    playback = await line.playing(ANNOUNCEMENT)
    await line.wait(3)
    line.gone.add(CALLER)
    await line.feed(PlaybackFinished(playback), ChannelLeft(CALLER, line.now()))
    return call


async def announcement_ends_the_pbx_knows(line: Line) -> str:
    """Same, but StasisEnd is still on its way: the PBX says the channel is gone."""
    call = await line.arrive()
    playback = await line.playing(ANNOUNCEMENT)
    await line.wait(3)
    await line.finishes(playback)
    await ended(line, call)
    await line.hangs_up(CALLER)  # late events of a call that ended: ignored
    return call


async def caller_already_gone(line: Line) -> str:
    call = await line.arrive()
    await ended(line, call)
    line.gone.add(CALLER)
    return call


async def agent_leaves_right_after_1(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg(1)
    await line.answers(leg)
    await line.playing(PRESS_1, leg)
    await line.presses(leg, "1")
    await line.hangs_up(leg)  # before the bridge could take the leg
    await line.fails(await line.leg(2), 17, "User busy")
    return call


def ends_with_caller_left(line: Line, call_id: str) -> None:
    detail = line.ended(call_id).detail
    assert detail.endswith(": caller left")
    # No hop was on the trail yet: the detail must not name one.
    assert not (detail.startswith("abandoned at announcing") and "(hop" in detail), detail
    nobody_rung(line, call_id)


GONE_IS_NORMAL = [
    story(
        "the announcement ends because the caller left, then StasisEnd",
        plan(ALICE),
        script=announcement_ends_then_stasis_end,
        path="announcing > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at announcing",
        ended_s=3.0,
        pbx=lambda: FakePbx(held_sounds=frozenset({ANNOUNCEMENT})),
        check=ends_with_caller_left,
    ),
    story(
        "the announcement ends because the caller left, StasisEnd not there yet",
        plan(ALICE),
        script=announcement_ends_the_pbx_knows,
        path="announcing > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at announcing",
        ended_s=3.0,
        pbx=lambda: FakePbx(held_sounds=frozenset({ANNOUNCEMENT}), present=False),
        check=ends_with_caller_left,
    ),
    story(
        "the announcement cannot play: the caller is gone (404)",
        plan(ALICE),
        script=caller_already_gone,
        path="announcing > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at announcing",
        pbx=lambda: FakePbx(gone_for=frozenset({"play"}), present=False),
        check=ends_with_caller_left,
    ),
    story(
        "the recording cannot start: the caller left at the beep (404)",
        plan(final=VM, announcement=None),
        script=caller_already_gone,
        path="voicemail_greeting > recording > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at voicemail beep",
        pbx=lambda: FakePbx(gone_for=frozenset({"record"})),
    ),
    story(
        "the agent left right after pressing 1: no bridge (404), the cascade goes on",
        plan(ALICE, BOB, announcement=None),
        script=agent_leaves_right_after_1,
        path="dialing > agent_prompt > dialing > ended",
        outcome=CallOutcome.NO_ONE,
        detail="all 2 hops failed",
        hops=(HopOutcome.DECLINED, HopOutcome.BUSY),
        hop1=HopEnd(16, "hung up right after accepting (Normal Clearing)", 0.0, "1"),
        pbx=lambda: FakePbx(gone_for=frozenset({"add_to_bridge"})),
    ),
    story(
        "every clean-up finds its object gone (404): the ending stands",
        plan(ALICE),
        script=accepted_then_agent_hangs_up,
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 42.0s with alice, ended by agent",
        hops=(HopOutcome.ACCEPTED,),
        pbx=lambda: FakePbx(
            gone_for=frozenset({"hangup", "stop_playback", "stop_hold", "destroy_bridge"})
        ),
    ),
]


@pytest.mark.parametrize("story", GONE_IS_NORMAL)
@virtual_time
async def test_a_party_already_gone_is_normal(story: Story) -> None:
    await tell(story)


# -- 6. A PBX error on clean-up changes nothing that happened --------------------------------
# Not a 404 (gone: False, above) but a refusal: ARI answering 500 while hanging up
# a leg or deleting the PBX's copy of a message. What the call did stands; the
# cascade goes on.


def pbx_refuses(*actions: str, once: bool = False) -> Callable[[], FakePbx]:
    def pbx() -> FakePbx:
        error = TelephonyError("ARI 500 Internal Server Error")
        return FakePbx(errors={a: [None, error] if once else error for a in actions})

    return pbx


def at_the_prompt_then_voicemail(agent: Agent) -> Script:
    """Alice answers and does `agent` without accepting; Bob is busy; a message."""

    async def script(line: Line) -> str:
        call = await line.arrive()
        leg = await line.leg(1)
        await line.answers(leg)
        await line.playing(PRESS_1, leg)
        await agent(line, leg)
        await line.fails(await line.leg(2), 17, "User busy")
        await leaves_message(line, 8)
        return call

    return script


def message_kept_though_the_pbx_refused(line: Line, call_id: str) -> None:
    voicemail_kept(line, call_id)
    assert line.pbx.refused, "the PBX refused nothing: the row tests nothing"


CLEANUP_ERRORS = [
    story(
        "hanging up the leg of a caller who left",
        plan(ALICE),
        script=leaves_while_ringing,
        path="announcing > dialing > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at dialing (hop 1: alice (alice)): caller hung up, cause 16",
        hops=(HopOutcome.CANCELLED,),
        pbx=pbx_refuses("hangup"),
    ),
    story(
        "hanging up an agent who pressed a wrong key",
        plan(ALICE, BOB, announcement=None, final=VM),
        script=at_the_prompt_then_voicemail(presses("2")),
        path="dialing > agent_prompt > dialing > voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        hops=(HopOutcome.DECLINED, HopOutcome.BUSY),
        pbx=pbx_refuses("hangup"),
    ),
    story(
        "hanging up an agent who pressed no key",
        plan(ALICE, BOB, announcement=None, final=VM),
        script=at_the_prompt_then_voicemail(does_nothing),
        path="dialing > agent_prompt > dialing > voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        hops=(HopOutcome.NOT_ACCEPTED, HopOutcome.BUSY),
        pbx=pbx_refuses("hangup"),
    ),
    failing_hop(
        "hanging up a leg the service stopped ringing",
        leg_fails(None, rings=True, after_s=0),
        HopOutcome.NO_ANSWER,
        HopEnd(None, "no answer within 20 s (service timeout)", 23.0),
        pbx=pbx_refuses("hangup"),
    ),
    story(
        "tearing down a conversation",
        plan(ALICE),
        script=accepted_then_agent_hangs_up,
        path="announcing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 42.0s with alice, ended by agent",
        hops=(HopOutcome.ACCEPTED,),
        pbx=pbx_refuses("stop_hold", "destroy_bridge", "hangup"),
    ),
    story(
        "deleting the PBX's copy of a message kept",
        plan(announcement=None, final=VM),
        script=leaves_a_message,
        path="voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        pbx=pbx_refuses("delete_recording"),
        check=message_kept_though_the_pbx_refused,
    ),
    story(
        "saying goodbye after a message kept",
        plan(announcement=None, final=VM),
        script=leaves_a_message,
        path="voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        pbx=pbx_refuses("play", once=True),  # the greeting plays, the goodbye cannot
        check=message_kept_though_the_pbx_refused,
    ),
    story(
        "hanging up the caller after a message kept",
        plan(announcement=None, final=VM),
        script=leaves_a_message,
        path="voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        pbx=pbx_refuses("hangup"),
        check=message_kept_though_the_pbx_refused,
    ),
]


@pytest.mark.parametrize("story", CLEANUP_ERRORS)
@virtual_time
async def test_a_pbx_error_on_clean_up_changes_nothing(story: Story) -> None:
    await tell(story)


# -- 7. The admission queue: at most N cascades at once ------------------------------------


async def admitted_when_first_is_bridged(line: Line) -> str:
    first, second = await queued_behind_a_ringing_call(line)
    await accepts(line, await line.leg(1))
    await bridged(line, first)
    await line.rings(await line.leg(2))  # the second call's cascade starts now
    await line.hangs_up(SECOND)
    await line.wait(60)
    await line.hangs_up(CALLER)
    return second


async def admitted_when_first_gives_up(line: Line) -> str:
    _, second = await queued_behind_a_ringing_call(line)
    await line.wait(4)
    await line.fails(await line.leg(1), 17, "User busy")
    await accepts(line, await line.leg(2))
    await bridged(line, second)
    await line.wait(10)
    await line.hangs_up(SECOND)
    return second


async def admitted_when_first_goes_to_voicemail(line: Line) -> str:
    first = await line.arrive(CALLER, DID)
    await line.leg(1)
    second = await line.arrive(SECOND, DID2)
    await line.playing(PLEASE_WAIT, SECOND)
    await line.fails(await line.leg(1), 17, "User busy")
    await leaves_message(line, 5, SECOND)  # while the first caller records theirs
    await leaves_message(line, 5, CALLER)
    await ended(line, first)
    return second


def admitted_after(action: str) -> Callable[[Line, str], None]:
    """The second caller's hold ends, and its cascade starts, only once the first
    call does `action` (lets its slot go)."""

    def check(line: Line, call_id: str) -> None:
        actions = line.pbx.actions
        freed = [name for name, _ in actions].index(action)
        unheld = actions.index(("stop_hold", (SECOND,)))
        rung = [i for i, (name, args) in enumerate(actions) if name == "originate"][1]
        assert freed < unheld < rung

    return check


ADMISSION_QUEUE = [
    story(
        "admitted once the first call is bridged",
        plan(ALICE, busy_agents=BusyAgents.RING),  # both calls ring alice
        script=admitted_when_first_is_bridged,
        path="queued > announcing > dialing > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at dialing (hop 1: alice (alice))",
        hops=(HopOutcome.CANCELLED,),
        service={"max_parallel_cascades": 1},
        check=admitted_after("add_to_bridge"),
    ),
    story(
        "admitted once the first call gives up (no announcement)",
        plan(ALICE, announcement=None),
        script=admitted_when_first_gives_up,
        path="queued > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 10.0s with alice, ended by caller",
        hops=(HopOutcome.ACCEPTED,),
        service={"max_parallel_cascades": 1},
    ),
    story(
        "admitted once the first call goes to voicemail",
        plan(ALICE, final=VM, announcement=None),
        plan(announcement=None, final=VM, did=DID2),
        script=admitted_when_first_goes_to_voicemail,
        path="queued > voicemail_greeting > recording > ended",
        outcome=CallOutcome.VOICEMAIL,
        detail="message recorded",
        service={"max_parallel_cascades": 1},
    ),
]


@pytest.mark.parametrize("story", ADMISSION_QUEUE)
@virtual_time
async def test_the_admission_queue(story: Story) -> None:
    await tell(story)


@pytest.mark.parametrize("limit", [1, 2, 3], ids=lambda n: f"{n} at once")
@virtual_time
async def test_one_call_more_than_the_limit_waits_and_leaks_no_slot(limit: int) -> None:
    line = Line(plan(ALICE, busy_agents=BusyAgents.RING), max_parallel_cascades=limit)
    callers = [f"1764540000.{n}" for n in range(1, limit + 2)]
    calls = [await line.arrive(channel) for channel in callers]
    legs = [await line.leg(n) for n in range(1, limit + 1)]
    last = calls[-1]
    await line.until(lambda: CallState.QUEUED in line.states(last), "queued")
    await line.wait(15)  # the hops ring (they would give up at 23 s)
    assert len(line.originated()) == limit, "more cascades at once than the limit"
    assert line.states(last) == [CallState.QUEUED]
    await line.hangs_up(callers[-1])  # leaves the queue: holds no slot
    for leg in legs:
        await line.fails(leg, 17, "User busy")
    await line.done()
    later = await line.arrive("1764540000.9")  # every slot is free again
    await line.until(lambda: bool(line.states(later)), "admitted")
    assert line.states(later)[0] is CallState.ANNOUNCING
    await line.hangs_up("1764540000.9")
    await line.done()


# -- 8. Calls found on the PBX after a restart ---------------------------------------------

AGENT_LEG = "astreinte-agent-0a1b2c3d"
ANSWERED_AT = T0 - timedelta(minutes=4)


def lookup(point: ResumePoint) -> Callable[[str], Awaitable[ResumePoint | None]]:
    async def resume_lookup(channel_id: str) -> ResumePoint | None:
        return point

    return resume_lookup


def found(line: Line) -> str:
    """The caller in our application, as the PBX snapshot shows it after the restart."""
    call_id = call_id_for_channel(CALLER)
    line.callers[call_id] = Channel(
        CALLER, "PJSIP/trunk-1", "Up", "+33199000001", "Client",
        exten=DID, stasis_app="astreinte", stasis_args=(DID,), created_at=T0,
    )  # fmt: skip
    return call_id


async def reattached_then_agent_hangs_up(line: Line) -> str:
    call = found(line)
    caller = line.callers[call]
    agent = Channel(AGENT_LEG, "PJSIP/alice-1", "Up", "", "", stasis_app="astreinte")
    bridge = Bridge("astreinte-bridge-0a1b2c3d", (CALLER, AGENT_LEG))
    await line.feed(Resynced(channels=(caller, agent), bridges=(bridge,)))
    await line.until(lambda: bool(line.states(call)), "re-attached")
    await line.wait(60)
    await line.hangs_up(AGENT_LEG)
    return call


async def resumed_at_the_next_hop(line: Line) -> str:
    call = found(line)
    await line.feed(Resynced(channels=(line.callers[call],), bridges=()))
    await accepts(line, await line.leg())
    await bridged(line, call)
    await line.wait(20)
    await line.hangs_up(CALLER)
    return call


def accepted_hop_closed(line: Line, call_id: str) -> None:
    [closed] = [e for e in line.trail.of(HopEnded) if e.hop_id == "hop-accepted"]
    assert (closed.outcome, closed.cause_code) == (HopOutcome.ACCEPTED, 16)
    assert line.trail.of(StateChanged)[0].seq == 6  # after the 5 on record
    assert (CALLER,) in line.pbx.did("hangup")  # the agent left: the caller is hung up


def interrupted_hop_closed(line: Line, call_id: str) -> None:
    [closed] = [e for e in line.trail.of(HopEnded) if e.hop_id == "hop-interrupted"]
    assert (closed.outcome, closed.cause_text) == (
        HopOutcome.FAILED,
        "interrupted by a service restart",
    )
    assert [h.person_id for h in line.hops(call_id)] == ["bob"]  # hop 2, not alice again


RESUMED = [
    story(
        "a bridged conversation is re-attached",
        plan(ALICE),
        script=reattached_then_agent_hangs_up,
        start=CallState.BRIDGED,
        path="bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 300.0s (re-attached after restart), ended by agent",
        service={
            "resume_lookup": lookup(
                ResumePoint(
                    call_id_for_channel(CALLER),
                    last_seq=5,
                    hops_tried=1,
                    open_hop_ids=(),
                    accepted_hop_id="hop-accepted",
                    accepted_person_id="alice",
                    answered_at=ANSWERED_AT,
                )
            )
        },
        check=accepted_hop_closed,
    ),
    story(
        "a waiting caller is resumed at the next hop",
        plan(ALICE, BOB),
        script=resumed_at_the_next_hop,
        start=CallState.DIALING,
        path="dialing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 20.0s with bob, ended by caller",
        hops=(HopOutcome.ACCEPTED,),
        service={
            "resume_lookup": lookup(
                ResumePoint(
                    call_id_for_channel(CALLER),
                    last_seq=3,
                    hops_tried=1,
                    open_hop_ids=("hop-interrupted",),
                )
            )
        },
        check=interrupted_hop_closed,
    ),
]


@pytest.mark.parametrize("story", RESUMED)
@virtual_time
async def test_a_call_found_after_a_restart(story: Story) -> None:
    await tell(story)


# -- 9. Early dial: hop 1 rings while the caller hears the announcement ----------------------

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


# -- 10. Menus: the caller's key chooses a line's cascade (details: test_call_menu.py) -------

MENU_PROMPT = "astreinte-menu-maintenance"
MENU = MenuPlan(
    MENU_PROMPT,
    6,
    "1",
    (
        MenuChoicePlan("1", "Chauffage", plan(ALICE, did="+33180000010", announcement=None)),
        MenuChoicePlan("2", "Informatique", plan(BOB, did="+33180000011", announcement=None)),
    ),
)


async def presses_2_then_bob_accepts(line: Line) -> str:
    call = await line.arrive()
    await line.playing(MENU_PROMPT, CALLER)
    await line.presses(CALLER, "2")
    leg = await line.leg()
    await accepts(line, leg)
    await bridged(line, call)
    await line.wait(10)
    await line.hangs_up(CALLER)
    return call


async def hangs_up_in_the_menu(line: Line) -> str:
    call = await line.arrive()
    await line.playing(MENU_PROMPT, CALLER)
    await line.wait(2)
    await line.hangs_up(CALLER)
    return call


async def queued_then_hangs_up_in_the_menu(line: Line) -> str:
    await line.arrive(CALLER)
    first = await line.leg(1)  # the first caller pressed nothing: the default rings
    second = await line.arrive(SECOND)
    await line.playing(PLEASE_WAIT, SECOND)
    await line.fails(first, 17, "User busy")  # nobody for the first: its slot is free
    await line.playing(MENU_PROMPT, SECOND)
    await line.hangs_up(SECOND)
    return second


async def resumed_with_a_menu(line: Line) -> str:
    call = found(line)
    await line.feed(Resynced(channels=(line.callers[call],), bridges=()))
    await accepts(line, await line.leg())
    await bridged(line, call)
    await line.wait(5)
    await line.hangs_up(CALLER)
    return call


def default_after_restart(line: Line, call_id: str) -> None:
    reasons = [e.reason for e in line.trail.of(StateChanged) if e.call_id == call_id]
    assert "menu: resumed after a restart → default 1 Chauffage" in reasons
    assert line.plays(MENU_PROMPT) == []  # not asked again
    assert [h.person_id for h in line.hops(call_id)] == ["alice"]


MENUS = [
    story(
        "resumed after a restart: the default choice (the key is not known)",
        plan(CAROL, menu=MENU),
        script=resumed_with_a_menu,
        start=CallState.DIALING,
        path="dialing > dialing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 5.0s with alice, ended by caller",
        hops=(HopOutcome.ACCEPTED,),
        service={
            "resume_lookup": lookup(
                ResumePoint(call_id_for_channel(CALLER), last_seq=3, hops_tried=0, open_hop_ids=())
            )
        },
        check=default_after_restart,
    ),
    story(
        "menu after the announcement: key 2 rings the second line's cascade",
        plan(CAROL, menu=MENU),
        script=presses_2_then_bob_accepts,
        path="announcing > menu > dialing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 10.0s with bob, ended by caller",
        hops=(HopOutcome.ACCEPTED,),
    ),
    story(
        "menu without announcement: the caller hangs up in it",
        plan(CAROL, menu=MENU, announcement=None),
        script=hangs_up_in_the_menu,
        path="menu > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at menu: caller hung up",
        check=nobody_rung,
    ),
    story(
        "queued for a cascade slot, then the menu",
        plan(CAROL, menu=MENU, announcement=None),
        script=queued_then_hangs_up_in_the_menu,
        path="queued > menu > ended",
        outcome=CallOutcome.ABANDONED,
        detail="abandoned at menu: caller hung up",
        service={"max_parallel_cascades": 1},
    ),
]


@pytest.mark.parametrize("story", MENUS)
@virtual_time
async def test_menus(story: Story) -> None:
    await tell(story)


# -- 11. The stories together cover the state machine ---------------------------------------

ALL_STORIES: list[Story] = [
    param.values[0]
    for param in (
        *PATHS,
        *CALLER_HANGS_UP,
        *AGENT_AT_THE_PROMPT,
        *HOP_FAILURES,
        *GONE_IS_NORMAL,
        *CLEANUP_ERRORS,
        *ADMISSION_QUEUE,
        *RESUMED,
        *EARLY_DIAL,
        *MENUS,
    )
]


def test_the_stories_reach_every_state() -> None:
    reached = {s for st in ALL_STORIES for s in (st.start, *st.states())}
    assert reached == set(CallState), "a state no story reaches"


def test_the_stories_take_every_allowed_transition() -> None:
    allowed = {(a, b) for a, nexts in ALLOWED_TRANSITIONS.items() for b in nexts}
    taken = {t for st in ALL_STORIES for t in st.transitions()}
    assert taken - allowed == set(), "a story expects a transition the machine refuses"
    assert allowed - taken == set(), "an allowed transition no story takes"


def test_every_other_transition_is_refused() -> None:
    rt = CallRuntime(
        call_id="c",
        caller_channel_id=CALLER,
        plan=plan(),
        port=FakePbx(),  # type: ignore[arg-type]
        audit=Trail(),
        sounds=SoundLibrary(PurePosixPath("/snd")),
        clock=lambda: T0,
        bind=lambda object_id: None,
    )
    refused = [(a, b) for a in CallState for b in CallState if b not in ALLOWED_TRANSITIONS[a]]
    assert refused
    for from_state, to_state in refused:
        rt.restore(0, from_state)
        with pytest.raises(RuntimeError, match="illegal transition"):
            rt.transition(to_state, "test")
