"""The admission queue: at most N cascades at once; the others wait on hold.

Stories over a scripted PBX in virtual time (machinery: call_flow_stories.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.routing.plan import BusyAgents
from tests.unit.call_flow_stories import (
    ALICE,
    PLEASE_WAIT,
    SECOND,
    VM,
    Story,
    accepts,
    bridged,
    ended,
    leaves_message,
    queued_behind_a_ringing_call,
    story,
    tell,
)
from tests.unit.callflow_fakes import DID, plan
from tests.unit.callflow_line import CALLER, DID2, Line
from tests.unit.virtual_time import virtual_time


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
