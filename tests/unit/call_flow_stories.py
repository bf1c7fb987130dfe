"""The call-flow stories' machinery, shared by the tests/unit/test_call_flow_*.py tables.

Each row of a table is a story: a plan, what the parties do (the script plays the
PBX's part: answers, keys, hangups), and what the audit trail must then say: the
states the call went through, its outcome, how each hop ended and when. The
scenario clock is the event loop's (tests/unit/virtual_time.py): a 20 s ring
timeout costs nothing, and "the hop ended at 23 s" is exact.

Every story also checks what holds for any call (`tell`): its transitions are
numbered without gaps, each hop that started ended once, the call's ending is its
last record, and nobody is left on the line (every leg and caller hung up).

test_call_flow_state_machine.py checks that the tables together reach every
CallState and take every allowed transition: a new state or transition needs a story."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from astreinte_ari.callflow.audit_events import CallEnded, CallStarted, HopEnded, StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.recovery import ResumePoint
from astreinte_ari.callflow.telephony import Channel
from astreinte_ari.routing.plan import CallPlan, FinalAction
from tests.unit.callflow_fakes import DID, T0, FakePbx, hop, plan
from tests.unit.callflow_line import CALLER, Line

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


async def accepted_then_agent_hangs_up(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await accepts(line, leg)
    await bridged(line, call)
    await line.wait(42)
    await line.hangs_up(leg)
    return call


async def leaves_a_message(line: Line) -> str:
    call = await line.arrive()
    await leaves_message(line, 12)
    return call


def voicemail_kept(line: Line, call_id: str) -> None:
    assert line.mailbox.saved[call_id] == line.pbx.stored_recording
    assert line.ended(call_id).voicemail_path == line.mailbox.path_for(call_id, T0)
    assert line.pbx.did("delete_recording"), "the PBX's copy is left to grow the spool"


async def leaves_while_ringing(line: Line) -> str:
    call = await line.arrive()
    await line.rings(await line.leg())
    await line.wait(8)
    await line.hangs_up(CALLER)
    return call


Agent = Callable[[Line, str], Awaitable[None]]


def presses(digit: str, channel: str | None = None) -> Agent:
    async def agent(line: Line, leg: str) -> None:
        await line.presses(channel or leg, digit)

    return agent


async def does_nothing(line: Line, leg: str) -> None:
    pass


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
