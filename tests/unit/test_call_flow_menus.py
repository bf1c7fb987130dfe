"""Menus in the call flow: the caller's key chooses a line's cascade.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py);
the MENU step's details are in test_call_menu.py."""

from __future__ import annotations

import pytest

from astreinte_ari.callflow.audit_events import StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.recovery import ResumePoint
from astreinte_ari.callflow.telephony import Resynced
from astreinte_ari.routing.plan import MenuChoicePlan, MenuPlan
from tests.unit.call_flow_stories import (
    ALICE,
    BOB,
    CAROL,
    PLEASE_WAIT,
    SECOND,
    Story,
    accepts,
    bridged,
    found,
    lookup,
    nobody_rung,
    story,
    tell,
)
from tests.unit.callflow_fakes import plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time

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


async def resumed_with_a_menu_presses_2(line: Line) -> str:
    call = found(line)
    await line.feed(Resynced(channels=(line.callers[call],), bridges=()))
    await line.playing(MENU_PROMPT, CALLER)  # the restart came before the choice
    await line.presses(CALLER, "2")
    await accepts(line, await line.leg())
    await bridged(line, call)
    await line.wait(5)
    await line.hangs_up(CALLER)
    return call


def asked_again_after_restart(line: Line, call_id: str) -> None:
    reasons = [e.reason for e in line.trail.of(StateChanged) if e.call_id == call_id]
    assert any(r.startswith("asked again after a restart (no choice on record)") for r in reasons)
    assert "menu: key 2 → Informatique (+33180000011)" in reasons
    assert [h.person_id for h in line.hops(call_id)] == ["bob"]


MENUS = [
    story(
        "resumed after a restart before the choice: asked again, key 2",
        plan(CAROL, menu=MENU),
        script=resumed_with_a_menu_presses_2,
        start=CallState.DIALING,
        path="dialing > menu > dialing > dialing > agent_prompt > bridged > ended",
        outcome=CallOutcome.ACCEPTED,
        detail="talked 5.0s with bob, ended by caller",
        hops=(HopOutcome.ACCEPTED,),
        service={
            "resume_lookup": lookup(
                ResumePoint(call_id_for_channel(CALLER), last_seq=3, hops_tried=0, open_hop_ids=())
            )
        },
        check=asked_again_after_restart,
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
