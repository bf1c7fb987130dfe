"""Self-service changes (schedule/changes.py): the labour checks - double booking,
notice period, rest rules (new findings only) - with approved changes in the base."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from pathlib import Path

import pytest

from astreinte_ari.schedule import changes
from astreinte_ari.schedule.changes import ChangeRefused, check_labour, labour_findings
from tests.unit.rota_changes_helpers import LATER, NOW, STRICT, ask, cover, load, local


def test_double_booking_refuses_with_the_rule(tmp_path: Path) -> None:
    team = load(tmp_path, STRICT).teams["t"]
    # a holds nights that week: taking the week rota on a Tuesday night books a twice.
    request = ask(
        team, actor="a", kind="cover",
        start=local("2026-03-03 20:00"), end=local("2026-03-03 22:00"),
    )  # fmt: skip
    found = labour_findings(team, (), request, NOW)
    assert [f.rule for f in found] == ["double_booking"] and found[0].person == "a"
    with pytest.raises(ChangeRefused) as exc:
        check_labour(team, (), request, NOW)
    assert exc.value.rule == "double_booking" and "on call in both" in exc.value.message
    # A warning-level rule does not refuse.
    lenient = load(tmp_path).teams["t"]
    assert labour_findings(lenient, (), request, NOW) == []


def test_two_way_swap_into_a_double_booking(tmp_path: Path) -> None:
    team = load(tmp_path, STRICT).teams["t"]
    request = ask(
        team, actor="b", kind="swap", counterpart="c",
        start=local("2026-03-04 08:00"), end=local("2026-03-05 08:00"),
        swap_start=local("2026-03-10 08:00"), swap_end=local("2026-03-11 08:00"),
    )  # fmt: skip
    with pytest.raises(ChangeRefused) as exc:
        check_labour(team, (), request, NOW)
    assert exc.value.rule == "double_booking"  # b holds nights that week


def test_notice_period(tmp_path: Path) -> None:
    team = load(tmp_path, STRICT).teams["t"]
    request = cover(team)
    check_labour(team, (), request, NOW)  # five weeks ahead
    close = local("2026-03-01 12:00").astimezone(UTC)
    with pytest.raises(ChangeRefused) as exc:
        check_labour(team, (), request, close)
    assert exc.value.rule == "notice" and "less than 15 days ahead" in exc.value.message


def test_rest_rules_refuse_new_findings_only(tmp_path: Path) -> None:
    # Work hours that break the daily rest for everyone: a finding already there
    # is nobody's change; n, who holds nothing, gets it only by taking a slot.
    extra = """    labour:
      daily_rest: {hours: 11, level: error}
      work_hours: {mon-sun: "06:00-22:00"}
"""
    team = load(tmp_path, extra).teams["t"]
    held = cover(team)  # a already holds nights that week: nothing new for a or b
    assert labour_findings(team, (), held, NOW) == []
    newcomer = cover(team, actor="n")
    found = labour_findings(team, (), newcomer, NOW)
    assert found and {f.rule for f in found} == {"daily_rest"} and found[0].person == "n"


def test_approved_changes_count_in_the_base(tmp_path: Path) -> None:
    team = load(tmp_path, STRICT).teams["t"]
    first = changes.approve(team, cover(team), "m", as_manager=True, now=LATER)
    # the same change again is nothing new once the first is in force
    assert labour_findings(team, first.overrides(), replace(first, id="r2"), NOW) == []
