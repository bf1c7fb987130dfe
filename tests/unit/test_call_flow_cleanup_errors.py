"""A PBX error on clean-up changes nothing that happened to the call.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.callflow.telephony import TelephonyError
from tests.unit.call_flow_stories import (
    ALICE,
    BOB,
    PRESS_1,
    VM,
    Agent,
    HopEnd,
    Script,
    Story,
    accepted_then_agent_hangs_up,
    does_nothing,
    failing_hop,
    leaves_a_message,
    leaves_message,
    leaves_while_ringing,
    leg_fails,
    presses,
    story,
    tell,
    voicemail_kept,
)
from tests.unit.callflow_fakes import FakePbx, plan
from tests.unit.callflow_line import Line
from tests.unit.virtual_time import virtual_time

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
