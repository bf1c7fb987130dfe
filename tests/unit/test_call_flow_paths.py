"""The paths through the inbound call flow: accepted, forwarded, voicemail, no one.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py)."""

from __future__ import annotations

import pytest

from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.routing.plan import Period
from tests.unit.call_flow_stories import (
    ALICE,
    BOB,
    NO_ONE,
    PRESS_1,
    VM,
    Story,
    accepted_then_agent_hangs_up,
    accepts,
    bridged,
    leaves_a_message,
    leaves_message,
    story,
    tell,
    voicemail_kept,
)
from tests.unit.callflow_fakes import hop, plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time


async def forward_answered_then_caller_hangs_up(line: Line) -> str:
    call = await line.arrive()
    leg = await line.leg()
    await line.answers(leg)
    await bridged(line, call)
    await line.wait(30)
    await line.hangs_up(CALLER)
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
