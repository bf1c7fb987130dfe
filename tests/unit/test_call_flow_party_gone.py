"""A party already gone is a race, not an error (404 from the PBX).

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py)."""

from __future__ import annotations

import pytest

from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.callflow.telephony import ChannelLeft, PlaybackFinished
from tests.unit.call_flow_stories import (
    ALICE,
    ANNOUNCEMENT,
    BOB,
    PRESS_1,
    VM,
    HopEnd,
    Story,
    accepted_then_agent_hangs_up,
    ended,
    nobody_rung,
    story,
    tell,
)
from tests.unit.callflow_fakes import FakePbx, plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time


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
