"""The caller hangs up, whatever the call is doing: queued, announced, ringing, talking.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py)."""

from __future__ import annotations

import pytest

from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from tests.unit.call_flow_stories import (
    ALICE,
    ANNOUNCEMENT,
    GREETING,
    PRESS_1,
    SECOND,
    VM,
    Script,
    Story,
    accepts,
    bridged,
    ended,
    leaves_while_ringing,
    nobody_rung,
    queued_behind_a_ringing_call,
    story,
    tell,
    voicemail_kept,
)
from tests.unit.callflow_fakes import FakePbx, plan
from tests.unit.callflow_line import CALLER, Line, wav
from tests.unit.virtual_time import virtual_time


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
