"""Self-service changes (schedule/changes.py): approved changes become overrides, laid
over the configuration (a later change wins; a swap exchanges both slots)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.router import build_plan
from astreinte_ari.schedule import changes
from astreinte_ari.schedule.changes import apply_changes, approved_overrides
from astreinte_ari.schedule.rota import who_is_on_call
from tests.unit.rota_changes_helpers import (
    LATER,
    config_fixture,  # noqa: F401 (a fixture)
    cover,
    local,
    swap,
)


def test_approved_changes_become_overrides_later_wins(config: AppConfig) -> None:
    team = config.teams["t"]
    first = changes.approve(team, cover(team), "m", as_manager=True, now=LATER)
    second = replace(
        changes.approve(team, cover(team, actor="c"), "m", as_manager=True, now=LATER),
        id="r2", decided_at=LATER + timedelta(minutes=5),
    )  # fmt: skip
    pending = replace(cover(team), id="r3")
    made = approved_overrides([second, pending, first])
    assert [o.person for o in made] == ["a", "c"]  # approval order; pending left out
    assert made[0].requested_by == "a"
    assert made[0].reason == "web change r1, approved by m: I'll take it"
    saturday = local("2026-03-07 12:00")
    assert who_is_on_call(team, "week", saturday) == "b"
    live = apply_changes(config, {"t": made})
    assert live.teams["t"].overrides[-2:] == made
    assert who_is_on_call(live.teams["t"], "week", saturday) == "c"
    plan = build_plan(live, "+33180000000", saturday)
    assert plan is not None and plan.hops[0].person_id == "c"


def test_swap_overrides_exchange_both_slots(config: AppConfig) -> None:
    team = config.teams["t"]
    done = changes.approve(team, swap(team), "m", as_manager=True, now=LATER)
    live = apply_changes(config, {"t": done.overrides()}).teams["t"]
    assert who_is_on_call(live, "week", local("2026-03-04 12:00")) == "c"
    assert who_is_on_call(live, "week", local("2026-03-10 12:00")) == "b"
    assert who_is_on_call(live, "week", local("2026-03-10 19:00")) == "c"


def test_overlay_keeps_config_when_nothing_applies(config: AppConfig) -> None:
    assert apply_changes(config, {}) is config
    team = config.teams["t"]
    done = changes.approve(team, cover(team), "m", as_manager=True, now=LATER)
    gone = done.overrides()[0].model_copy(update={"person": "zed"})
    assert apply_changes(config, {"t": (gone,), "other": done.overrides()}) is config
