"""Rota entries refused with their line, labour-law findings, coverage gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from astreinte_ari.config.loader import ConfigError
from astreinte_ari.config.model import AppConfig, TeamConfig
from astreinte_ari.routing.coverage import coverage_findings, programme_report
from astreinte_ari.schedule.labour import Intervention, programme_findings
from astreinte_ari.schedule.validate import load_checked_config

PARIS = ZoneInfo("Europe/Paris")
BASE = """timezone: Europe/Paris
ari: {url: "http://127.0.0.1:8088", username: astreinte}
trunk: {dial: "PJSIP/{number}", caller_id: "+33180000000", allowed_prefixes: ["+336"]}
lines:
  "+33180000000":
    name: Maintenance
    team: t
    business_hours: {mon-fri: "08:00-12:00,13:30-18:00", holidays: FR}
    in_business_hours: {forward: "+33612345670"}
    after_hours:
      hops: [{rota: nights, timeout: 20}]
teams:
  t:
    people:
      a: {name: A, mobile: "+33612345671"}
      b: {name: B, mobile: "+33612345672"}
      c: {name: C, mobile: "+33612345673"}
    rotas:
      nights: {every: week, handoff: "mon 08:00", start: 2026-01-05, people: [a, b],
               only: weekday-nights}
      week: {every: week, handoff: "mon 08:00", start: 2026-01-05, people: [b, c]}
"""


def write(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "astreinte.yaml"
    path.write_text(BASE + extra, encoding="utf-8")
    return path


def issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_checked_config(path)
    return [str(i) for i in exc.value.issues]


def test_invalid_entries_are_errors_naming_the_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """    overrides:
      - {rota: nights, person: c, from: "2026-03-07 10:00", to: "2026-03-07 16:00"}
      - {rota: nights, person: zed, from: "2026-03-02 20:00", to: "2026-03-03 06:00"}
    swaps:
      - {rota: wek, first: 2026-03-02, second: 2026-03-09}
""",
    )
    found = issues(path)
    lines = BASE.count("\n")
    assert len(found) == 3, found
    assert f":{lines + 2}: teams.t.overrides[0]: outside any shift" in found[0]
    assert f":{lines + 3}: teams.t.overrides[1].person: unknown person 'zed'" in found[1]
    assert f":{lines + 5}: teams.t.swaps[0].rota: unknown rota 'wek'" in found[2]


def test_malformed_entries_are_errors_naming_the_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """    overrides:
      - {rota: week, person: a, from: "2026-03-03 10:00", to: "2026-03-02 10:00"}
    holiday_rules:
      - {rota: week, person: b}
""",
    )
    found = issues(path)
    lines = BASE.count("\n")
    assert f":{lines + 2}: teams.t.overrides[0]: 'to' must be after 'from'" in found[0]
    assert f":{lines + 4}: teams.t.holiday_rules[0]: say which days" in found[1]


def test_swap_naming_no_shift_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "    swaps:\n      - {rota: week, first: 2026-03-04, second: 2026-03-09}\n"
    )
    (issue,) = issues(path)
    assert "teams.t.swaps[0]: no shift of rota 'week' starts on 2026-03-04" in issue
    assert f":{BASE.count(chr(10)) + 2}:" in issue


def _team(config: dict[str, Any]) -> TeamConfig:
    people = {p: {"name": p, "mobile": "+33612345678"} for p in "abc"}
    return TeamConfig.model_validate({"timezone": "Europe/Paris", "people": people, **config})


WEEK = {"every": "week", "handoff": "mon 08:00", "start": "2026-01-05"}
START = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # Monday 08:00 Paris


def rules(found: list[Any]) -> list[tuple[str, str]]:
    return [(f.rule, f.person) for f in found]


def test_double_booking_and_max_periods() -> None:
    team = _team(
        {
            "rotas": {
                "p": {**WEEK, "people": ["a", "b"]},
                "s": {**WEEK, "people": ["a", "c"]},  # a holds both every other week
            },
            "labour": {"max_periods_per_month": {"count": 2, "level": "error"}},
        }
    )
    found = programme_findings("t", team, START, START + timedelta(days=27))
    assert ("double_booking", "a") in rules(found)
    doubles = [f for f in found if f.rule == "double_booking"]
    assert all(f.end - f.start == timedelta(days=7) for f in doubles)
    assert {f.person for f in found if f.rule == "max_periods_per_month"} == {"a"}


def test_rest_rules_count_work_hours_and_interventions() -> None:
    team = _team(
        {
            "rotas": {"p": {**WEEK, "people": ["a"]}},
            "labour": {"work_hours": {"mon-fri": "08:00-12:00,13:30-18:00"}},
        }
    )
    end = START + timedelta(days=14)
    assert programme_findings("t", team, START, end) == []  # office hours alone are fine
    # A night intervention Tuesday 02:00-03:00: no 11 h rest between Monday 18:00
    # and Tuesday 18:00 (8 h, then 5 h).
    night = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    found = programme_findings(
        "t", team, START, end, interventions=[Intervention("a", night, night + timedelta(hours=1))]
    )
    assert rules(found) == [("daily_rest", "a")]
    # Working every weekend day too: no 35 h weekly rest.
    busy = _team(
        {
            "rotas": {"p": {**WEEK, "people": ["a"]}},
            "labour": {"work_hours": {"mon-sun": "08:00-18:00"}, "daily_rest": {"hours": 11}},
        }
    )
    weekly = [f for f in programme_findings("t", busy, START, end) if f.rule == "weekly_rest"]
    assert weekly and weekly[0].level == "warning"


def test_notice_flags_changes_within_15_days_only() -> None:
    old = _team({"rotas": {"p": {**WEEK, "people": ["a", "b"]}}})
    override = {"rota": "p", "person": "c", "from": "2026-03-10 08:00", "to": "2026-03-11 08:00"}
    late = {"rota": "p", "person": "c", "from": "2026-04-10 08:00", "to": "2026-04-11 08:00"}
    new = _team({"rotas": {"p": {**WEEK, "people": ["a", "b"]}}, "overrides": [override, late]})
    found = programme_findings("t", new, START, START + timedelta(days=60), previous=old, now=START)
    notices = [f for f in found if f.rule == "notice"]
    assert [(f.person, f.start.astimezone(PARIS).strftime("%m-%d %H:%M")) for f in notices] == [
        ("c", "03-10 08:00")
    ]
    assert "changed from b to c" in notices[0].message


def test_coverage_gap_on_weekends_for_a_nights_only_rota(tmp_path: Path) -> None:
    config = load_checked_config(write(tmp_path))
    start = datetime(2026, 3, 2, 0, 0, tzinfo=PARIS).astimezone(UTC)
    gaps = coverage_findings(config, "t", start, start + timedelta(days=7))
    spans = [
        (
            g.start.astimezone(PARIS).strftime("%a %H:%M"),
            g.end.astimezone(PARIS).strftime("%a %H:%M"),
        )
        for g in gaps
    ]
    # Lunch breaks (12:00-13:30) and the weekend: not business hours, no night shift.
    assert ("Mon 00:00", "Mon 08:00") in spans  # Sunday night: not mon-fri
    assert ("Sat 08:00", "Mon 00:00") in spans
    assert ("Mon 12:00", "Mon 13:30") in spans
    assert all(g.rule == "coverage" and "would ring nobody" in g.message for g in gaps)


def test_programme_report_of_the_example_config_is_clean() -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "astreinte.example.yaml"
    config: AppConfig = load_checked_config(example)
    assert yaml.safe_load(example.read_text(encoding="utf-8"))["teams"]
    assert programme_report(config, datetime(2026, 12, 1, tzinfo=UTC)) == []
