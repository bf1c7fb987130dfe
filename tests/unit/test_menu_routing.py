"""Menus and caller routes in the plan (pure): each choice carries its line's plan
made at the same instant; keys and callers pick one, untrusted input never more."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from astreinte_ari.adapters.fallback.plancache import plan_from_json, plan_to_json
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.menu import (
    after_choice,
    apply_caller_route,
    choose,
    normalised_caller,
    recorded_choice,
    resumed_choice,
)
from astreinte_ari.routing.plan import CallPlan, FinalAction, MenuPlan, Period
from astreinte_ari.routing.ratelimit import CallerRateLimiter
from astreinte_ari.routing.router import build_plan
from tests.unit.test_routing import CONFIG, local

MENU_LINE = """\
  "+33180000050":
    name: Accueil
    team: maint
    language: en
    early_dial: true
    menu:
      prompt: astreinte-menu-maintenance
      timeout: 4
      default: "1"
      choices:
        "1": {label: Maintenance, line: "+33180000000"}
        "2": {label: On-call, line: "+33180000099"}
    caller_routes:
      - {label: vip, callers: ["+33 6 99 88 77 66", "+33611111111"], line: "+33180000099"}
    after_hours: {hops: [{person: alice, timeout: 10}]}
"""
MENU_DID = "+33180000050"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> AppConfig:
    path = tmp_path_factory.mktemp("cfg") / "astreinte.yaml"
    path.write_text(CONFIG.replace("lines:\n", "lines:\n" + MENU_LINE, 1), encoding="utf-8")
    return load_config(path)


def _plan(config: AppConfig, at: str) -> CallPlan:
    plan = build_plan(config, MENU_DID, local(at))
    assert plan is not None
    return plan


def _menu(plan: CallPlan) -> MenuPlan:
    assert plan.menu is not None
    return plan.menu


@pytest.mark.parametrize("at", ["2026-05-04 10:00", "2026-05-04 22:00", "2026-05-01 10:00"])
def test_each_choice_is_its_line_plan_at_the_same_instant(config: AppConfig, at: str) -> None:
    menu = _menu(_plan(config, at))
    assert (menu.prompt, menu.timeout_s, menu.default_key) == ("astreinte-menu-maintenance", 4, "1")
    for choice in menu.choices:
        expected = build_plan(config, choice.plan.did, local(at))
        assert choice.plan == expected
        assert choice.plan.menu is None and choice.plan.caller_routes == ()
    # Business hours on the maintenance line: its forward; 1 May: its holiday route.
    first = menu.choice("1")
    assert first is not None
    period = {"2026-05-04 10:00": Period.BUSINESS, "2026-05-01 10:00": Period.HOLIDAY}
    assert first.plan.period == period.get(at, Period.NIGHT)


@pytest.mark.parametrize(
    ("key", "label", "why"),
    [
        ("2", "On-call", "menu: key 2 → On-call (+33180000099)"),
        ("1", "Maintenance", "menu: key 1 → Maintenance (+33180000000)"),
        (None, "Maintenance", "menu: no key within 4 s → default 1 Maintenance"),
        ("9", "Maintenance", "menu: key '9' not offered → default 1 Maintenance"),
        ("A", "Maintenance", "menu: key 'A' not offered → default 1 Maintenance"),
        ("2; DROP", "Maintenance", "menu: key '2; D' not offered → default 1 Maintenance"),
    ],
)
def test_choose(config: AppConfig, key: str | None, label: str, why: str) -> None:
    choice, reason = choose(_menu(_plan(config, "2026-05-04 22:00")), key)
    assert (choice.label, reason) == (label, why)


def test_after_choice_runs_the_chosen_cascade_under_the_dialled_line(config: AppConfig) -> None:
    plan = _plan(config, "2026-05-04 22:00")
    chosen = after_choice(plan, _menu(plan), "2")
    target = build_plan(config, "+33180000099", local("2026-05-04 22:00"))
    assert target is not None
    assert (chosen.did, chosen.line_name, chosen.team) == (MENU_DID, "Accueil", "maint")
    assert chosen.hops == target.hops and chosen.final is target.final
    assert [h.person_id for h in chosen.hops] == ["bob", "sup"]
    assert chosen.menu is None and chosen.routed == "menu: key 2 → On-call (+33180000099)"
    assert chosen.early_dial is False  # nobody rang before the choice; none now either
    assert chosen.announcement == plan.announcement  # heard already, the dialled line's


@pytest.mark.parametrize("key", ["2", "1", None, "9", "A", "2; DROP", "#"])
def test_the_trail_of_a_choice_gives_it_back_after_a_restart(config: AppConfig, key: str) -> None:
    plan = _plan(config, "2026-05-04 22:00")
    menu = _menu(plan)
    choice, reason = choose(menu, key)  # what the trail holds for the choice
    assert recorded_choice(menu, reason) == choice
    resumed = resumed_choice(plan, menu, reason)
    assert resumed.hops == choice.plan.hops and resumed.final is choice.plan.final
    as_chosen = f"key {choice.key} {choice.label}, as chosen"
    assert resumed.routed == f"menu: resumed after a restart → {as_chosen}"


@pytest.mark.parametrize(
    "reason",
    [None, "", "menu astreinte-menu-maintenance: 1 Maintenance", "menu: key 7 → Gone (+331)"],
)
def test_no_recorded_choice_resumes_on_the_default(config: AppConfig, reason: str | None) -> None:
    plan = _plan(config, "2026-05-04 22:00")
    menu = _menu(plan)
    assert recorded_choice(menu, reason) is None  # key 7: not a choice of today's menu
    resumed = resumed_choice(plan, menu, reason)
    assert resumed.hops == menu.default.plan.hops
    assert resumed.routed == "menu: resumed after a restart → default 1 Maintenance"


@pytest.mark.parametrize(
    ("caller", "routed"),
    [
        ("+33699887766", True),
        ("+33 6 99 88 77 66", True),
        ("0033699887766", True),
        ("+33611111111", True),
        ("0699887766", False),  # national form: not guessed
        ("+336998877661", False),
        ("", False),
        ("anonymous", False),
        ("+33699887766" + "9" * 100, False),
    ],
)
def test_caller_route(config: AppConfig, caller: str, routed: bool) -> None:
    plan = _plan(config, "2026-05-04 22:00")
    after = apply_caller_route(plan, caller)
    if routed:
        assert after.menu is None and after.caller_routes == ()
        assert after.routed == "caller route vip → Pure on-call (+33180000099)"
        assert [h.person_id for h in after.hops] == ["bob", "sup"]
        assert after.early_dial is True  # the dialled line's announcement rings meanwhile
    else:
        assert after == dataclasses.replace(plan, caller_routes=())
        assert after.menu is not None


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("+33 6.12-34(56)78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("612345678", None),
        ("+33612345678\n", "+33612345678"),
        ("x" * 1000, None),
    ],
)
def test_normalised_caller(raw: str, normal: str | None) -> None:
    assert normalised_caller(raw) == normal


def test_lines_without_menu_are_unchanged(config: AppConfig) -> None:
    plan = build_plan(config, "+33180000000", local("2026-05-04 22:00"))
    assert plan is not None and plan.menu is None and plan.caller_routes == ()
    assert plan.final is FinalAction.VOICEMAIL


def test_plan_cache_carries_menu_and_caller_routes(config: AppConfig) -> None:
    plan = _plan(config, "2026-05-04 22:00")
    assert plan.menu is not None and plan.caller_routes
    assert plan_from_json(json.loads(json.dumps(plan_to_json(plan)))) == plan


def test_rate_limit_reduces_the_menu_choices_alike(config: AppConfig) -> None:
    plan = _plan(config, "2026-05-04 22:00")
    limiter = CallerRateLimiter(
        1, timedelta(minutes=10), False, still_ring_every=timedelta(minutes=5)
    )
    now = local("2026-05-04 22:00")
    assert limiter.apply(plan, "+33611223344", now) == plan  # within the limit
    still = limiter.apply(plan, "+33611223344", now + timedelta(minutes=6))
    assert still.menu is not None
    assert all(len(c.plan.hops) == 1 for c in still.menu.choices)  # first hop only
    limited = limiter.apply(plan, "+33611223344", now + timedelta(minutes=7))
    assert limited.menu is None and limited.hops == () and "rate limit" in (limited.note or "")
