"""Calls found on the PBX after a restart: re-attached, or resumed at the next hop.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from astreinte_ari.callflow.audit_events import HopEnded, StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.recovery import ResumePoint
from astreinte_ari.callflow.telephony import Bridge, Channel, Resynced
from tests.unit.call_flow_stories import (
    ALICE,
    BOB,
    Story,
    accepts,
    bridged,
    found,
    lookup,
    story,
    tell,
)
from tests.unit.callflow_fakes import T0, plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time

AGENT_LEG = "astreinte-agent-0a1b2c3d"
ANSWERED_AT = T0 - timedelta(minutes=4)


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
