"""The MENU step of a call, in virtual time: the caller's first key (during the prompt
or after it) chooses a line's cascade; no key or a wrong one: the default. The trail
says which and why; nobody is rung before the choice."""

from __future__ import annotations

import dataclasses

from astreinte_ari.callflow.audit_events import StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.callflow.recovery import ResumePoint, resume_point_from_events
from astreinte_ari.callflow.telephony import Resynced
from astreinte_ari.routing.plan import (
    CallerRoutePlan,
    CallPlan,
    FinalAction,
    MenuChoicePlan,
    MenuPlan,
)
from astreinte_ari.routing.selftest import selftest_plan
from tests.unit.call_flow_stories import accepts, bridged, found, lookup
from tests.unit.callflow_fakes import T0, FakePbx, hop, plan
from tests.unit.callflow_line import CALLER, Line
from tests.unit.virtual_time import virtual_time

PROMPT = "astreinte-menu-maintenance"
CAROL = hop("carol", "+33611000000")  # the menu line's own cascade: never rung
ALICE = hop("alice", "+33612345678")
BOB = hop("bob", "+33698765432")
HEATING = plan(ALICE, did="+33180000010", line_name="Chauffage", announcement=None)
IT = plan(BOB, did="+33180000011", line_name="Informatique", announcement=None)
MENU = MenuPlan(
    prompt=PROMPT,
    timeout_s=6,
    default_key="1",
    choices=(MenuChoicePlan("1", "Chauffage", HEATING), MenuChoicePlan("2", "Informatique", IT)),
)
MENU_LINE = plan(CAROL, menu=MENU, early_dial=True)


def reasons(line: Line, call_id: str) -> list[tuple[CallState, str]]:
    return [(e.to_state, e.reason) for e in line.trail.of(StateChanged) if e.call_id == call_id]


def rung(line: Line) -> list[str]:
    return [leg["target"].address for leg in line.originated()]


def menu_line(held: bool = False, the_plan: CallPlan = MENU_LINE) -> Line:
    pbx = FakePbx(held_sounds=frozenset({PROMPT}) if held else frozenset())
    return Line(the_plan, pbx=pbx)


async def talk_and_end(line: Line, call_id: str) -> None:
    await accepts(line, await line.leg(1))
    await bridged(line, call_id)
    await line.hangs_up(CALLER)
    await line.done()


@virtual_time
async def test_key_during_the_prompt_cuts_it_and_rings_the_chosen_line() -> None:
    line = menu_line(held=True)
    call_id = await line.arrive()
    prompt = await line.playing(PROMPT, CALLER)
    await line.wait(2)
    assert rung(line) == []  # early dial waits for the choice: nobody to ring before it
    await line.presses(CALLER, "2")
    await line.leg(1)
    assert (prompt,) in [args[:1] for args in line.pbx.did("stop_playback")]
    assert rung(line) == ["+33698765432"]
    await talk_and_end(line, call_id)
    states = reasons(line, call_id)
    assert states[:3] == [
        (CallState.ANNOUNCING, "period after_hours"),
        (CallState.MENU, f"menu {PROMPT}: 1 Chauffage, 2 Informatique; default 1"),
        (CallState.DIALING, "menu: key 2 → Informatique (+33180000011)"),
    ]
    assert line.ended(call_id).outcome is CallOutcome.ACCEPTED
    closed = line.closed[0]
    assert (closed.plan.did, closed.plan.line_name) == (MENU_LINE.did, "Maintenance")
    assert closed.accepted_person_id == "bob"


@virtual_time
async def test_key_after_the_prompt_within_the_timeout() -> None:
    line = menu_line()
    call_id = await line.arrive()
    await line.playing(PROMPT, CALLER)
    await line.wait(5)
    assert rung(line) == []
    await line.presses(CALLER, "2")
    await line.leg(1)
    assert rung(line) == ["+33698765432"]
    await talk_and_end(line, call_id)
    assert (CallState.DIALING, "menu: key 2 → Informatique (+33180000011)") in reasons(
        line, call_id
    )


@virtual_time
async def test_no_key_takes_the_default_after_the_timeout() -> None:
    line = menu_line()
    call_id = await line.arrive()
    await line.playing(PROMPT, CALLER)
    prompt_over = line.now()
    await line.leg(1)
    dialled = next(e for e in line.trail.of(StateChanged) if e.to_state is CallState.DIALING)
    assert line.at(dialled.at) - line.at(prompt_over) == 6
    assert rung(line) == ["+33612345678"]
    await talk_and_end(line, call_id)
    assert dialled.reason == "menu: no key within 6 s → default 1 Chauffage"


@virtual_time
async def test_a_key_not_offered_takes_the_default_at_once() -> None:
    line = menu_line()
    call_id = await line.arrive()
    await line.playing(PROMPT, CALLER)
    await line.wait(1)
    await line.presses(CALLER, "9")
    await line.leg(1)
    assert rung(line) == ["+33612345678"]
    await talk_and_end(line, call_id)
    assert (CallState.DIALING, "menu: key '9' not offered → default 1 Chauffage") in reasons(
        line, call_id
    )


@virtual_time
async def test_caller_hangs_up_in_the_menu() -> None:
    line = menu_line(held=True)
    call_id = await line.arrive()
    await line.playing(PROMPT, CALLER)
    await line.wait(3)
    await line.hangs_up(CALLER)
    await line.done()
    ended = line.ended(call_id)
    assert ended.outcome is CallOutcome.ABANDONED
    assert ended.detail.startswith("abandoned at menu: caller hung up"), ended.detail
    assert rung(line) == []
    assert line.closed[0].last_state is CallState.MENU


@virtual_time
async def test_nobody_answers_the_chosen_line_its_voicemail() -> None:
    it = dataclasses.replace(IT, final=FinalAction.VOICEMAIL)
    menu = dataclasses.replace(MENU, choices=(MENU.choices[0], MenuChoicePlan("2", "IT", it)))
    line = menu_line(the_plan=dataclasses.replace(MENU_LINE, menu=menu))
    call_id = await line.arrive()
    await line.playing(PROMPT, CALLER)
    await line.presses(CALLER, "2")
    leg = await line.leg(1)
    await line.rings(leg)
    name = await line.recording(CALLER)  # bob never answers: the IT line's voicemail
    await line.records(name, 4)
    await line.done()
    assert line.ended(call_id).outcome is CallOutcome.VOICEMAIL
    assert rung(line) == ["+33698765432"]


@virtual_time
async def test_a_listed_caller_skips_the_menu() -> None:
    vip = CallerRoutePlan("vip", ("+33199000001",), IT)  # Line's callers call from it
    line = menu_line(the_plan=dataclasses.replace(MENU_LINE, caller_routes=(vip,)))
    call_id = await line.arrive()
    await line.leg(1)
    assert line.plays(PROMPT) == []
    assert rung(line) == ["+33698765432"]
    await talk_and_end(line, call_id)
    first = reasons(line, call_id)[0]
    assert first[0] is CallState.ANNOUNCING
    assert "caller route vip → Informatique (+33180000011)" in first[1]


@virtual_time
async def test_a_test_call_takes_the_default_choice() -> None:
    endpoint = hop("x", "sip:test-endpoint").target
    line = menu_line(the_plan=selftest_plan(MENU_LINE, endpoint, 10))
    call_id = await line.arrive()
    await line.playing(PROMPT, CALLER)
    await line.leg(1)
    assert rung(line) == ["test-endpoint"]  # the default's hop, aimed at the endpoint
    assert (
        CallState.DIALING,
        "menu: test call → default 1 Chauffage",
    ) in reasons(line, call_id)
    await line.hangs_up(CALLER)
    await line.done()


DAVE = hop("dave", "+33633000000")
IT_TWO_HOPS = dataclasses.replace(IT, hops=(BOB, DAVE))
MENU_TWO = dataclasses.replace(
    MENU, choices=(MENU.choices[0], MenuChoicePlan("2", "Informatique", IT_TWO_HOPS))
)


def resumed_line(menu_reason: str | None) -> tuple[Line, str]:
    """The menu line's caller found after a restart while hop 1 of its cascade rang."""
    point = ResumePoint(
        call_id_for_channel(CALLER), 4, 1, ("hop-interrupted",), menu_reason=menu_reason
    )
    line = Line(plan(CAROL, menu=MENU_TWO), pbx=FakePbx(), resume_lookup=lookup(point))
    return line, found(line)


@virtual_time
async def test_a_call_resumed_after_a_restart_keeps_the_callers_choice() -> None:
    line, call_id = resumed_line("menu: key 2 → Informatique (+33180000011)")
    await line.feed(Resynced(channels=(line.callers[call_id],), bridges=()))
    await line.leg(1)
    assert rung(line) == ["+33633000000"]  # hop 2 of key 2's line: not Chauffage's alice
    assert line.plays(PROMPT) == []  # not asked again
    assert (
        CallState.DIALING,
        "menu: resumed after a restart → key 2 Informatique, as chosen",
    ) in reasons(line, call_id)
    await line.hangs_up(CALLER)
    await line.done()


@virtual_time
async def test_a_call_resumed_before_the_choice_is_asked_again() -> None:
    """The restart came during the prompt (nobody rung, no choice on record): a key
    pressed meanwhile was lost, so the caller hears the prompt again and chooses."""
    point = ResumePoint(call_id_for_channel(CALLER), 3, 0, (), menu_reason=None)
    line = Line(plan(CAROL, menu=MENU_TWO), pbx=FakePbx(), resume_lookup=lookup(point))
    call_id = found(line)
    await line.feed(Resynced(channels=(line.callers[call_id],), bridges=()))
    await line.playing(PROMPT, CALLER)
    assert rung(line) == []
    await line.presses(CALLER, "2")
    await line.leg(1)
    assert rung(line) == ["+33698765432"]  # key 2's line, from its first hop
    offered = f"menu {PROMPT}: 1 Chauffage, 2 Informatique; default 1"
    assert reasons(line, call_id)[:3] == [
        (CallState.DIALING, "resumed after a service restart at hop 1"),
        (CallState.MENU, f"asked again after a restart (no choice on record): {offered}"),
        (CallState.DIALING, "menu: key 2 → Informatique (+33180000011)"),
    ]
    await line.hangs_up(CALLER)
    await line.done()


@virtual_time
async def test_a_call_resumed_while_ringing_without_its_choice_on_record_takes_the_default() -> (
    None
):
    """Hop 1 rang, so the caller had chosen, but the choice is not on record (a
    configuration change renamed it): the default, not a question in mid-ringing."""
    line, call_id = resumed_line(None)
    await line.feed(Resynced(channels=(line.callers[call_id],), bridges=()))
    default = (CallState.DIALING, "menu: resumed after a restart → default 1 Chauffage")
    await line.until(lambda: default in reasons(line, call_id), "resumed on the default")
    await line.hangs_up(CALLER)
    await line.done()
    assert rung(line) == []  # Chauffage has one hop, tried already: none left


def test_the_journal_gives_the_choice_back_when_the_database_is_down() -> None:
    call_id = call_id_for_channel(CALLER)
    chosen = "menu: key 2 → Informatique (+33180000011)"
    events = [
        StateChanged(call_id, 3, CallState.ANNOUNCING, CallState.MENU, "menu …", T0),
        StateChanged(call_id, 4, CallState.MENU, CallState.DIALING, chosen, T0),
        StateChanged(call_id, 5, CallState.DIALING, CallState.DIALING, "resumed", T0),
    ]
    point = resume_point_from_events(call_id, events, ResumePoint(call_id, 2, 0, ()))
    assert point is not None and (point.menu_reason, point.last_seq) == (chosen, 5)
    recorded = ResumePoint(call_id, 2, 0, (), menu_reason="menu: key 1 → Chauffage (+331)")
    point = resume_point_from_events(call_id, events, recorded)
    assert point is not None and point.menu_reason == recorded.menu_reason  # the first choice
