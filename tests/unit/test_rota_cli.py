"""`astreinte rota show|ical|fairness`, `who` and `check` findings, through the CLI;
the iCal feed read back with recurring-ical-events gives the same shifts."""

from __future__ import annotations

import importlib.util
import sys
import types
from datetime import UTC, date
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from astreinte_ari import cli
from astreinte_ari.config.loader import load_config
from astreinte_ari.schedule.reports import day_bounds, fairness, team_events

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "astreinte.example.yaml"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _other_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in cli._COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:
            stub = types.ModuleType(name)
            stub.register = lambda sub: None  # type: ignore[attr-defined]
            monkeypatch.setitem(sys.modules, name, stub)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().out


def test_rota_show_month_grid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys, "rota", "show", "-c", str(EXAMPLE), "--team", "maintenance", "--month", "2026-12"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Team maintenance - December 2026 (Europe/Paris)"
    assert lines[2].split() == ["primary", "secondary"]
    by_day = {line[:6]: line for line in lines if line[:3] in ("Mon", "Thu", "Fri", "Sat")}
    assert "chloe, 18:00 claire*" in by_day["Thu 24"]
    assert by_day["Fri 25"].startswith("Fri 25 (H)")  # Christmas
    assert "claire*, 08:00 alice" in by_day["Sat 26"]
    assert "~ swap" in lines[-1]


def test_rota_show_unknown_team(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["rota", "show", "-c", str(EXAMPLE), "--team", "nope"]) == 1
    assert "unknown team 'nope'" in capsys.readouterr().err


def test_fairness_counts(capsys: pytest.CaptureFixture[str]) -> None:
    team = load_config(EXAMPLE).teams["maintenance"]
    rows = {r.person: r for r in fairness(team, 2026)}
    # Two rotas: every weekend day of 2026 counts twice (104 x 2), holidays 11 x 2.
    assert sum(r.weekend_days for r in rows.values()) == 2 * 104
    assert rows["claire"].holiday_days == 1  # 25 December, by override
    code, out = run(
        capsys, "rota", "fairness", "-c", str(EXAMPLE), "--team", "maintenance", "--year", "2026"
    )
    assert code == 0 and "weekend days" in out and "claire" in out


def test_ical_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rota.ics"
    code = cli.main(
        [
            "rota", "ical", "-c", str(EXAMPLE), "--team", "informatique",
            "--from", "2026-03-01", "--to", "2026-04-15", "-o", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    cal = icalendar.Calendar.from_ical(out.read_bytes())
    events = recurring_ical_events.of(cal).between(date(2026, 3, 1), date(2026, 4, 15))
    read_back = sorted(
        (
            e.decoded("dtstart").astimezone(UTC),
            e.decoded("dtend").astimezone(UTC),
            str(e["summary"]),
        )
        for e in events
    )
    team = load_config(EXAMPLE).teams["informatique"]
    begin = day_bounds(team, date(2026, 3, 1))[0]
    end = day_bounds(team, date(2026, 4, 15))[0]
    expected = sorted(
        (s.start, s.end, f"Astreinte {rota}: {team.people[s.person_id].name} ({s.person_id})")
        for rota, s in team_events("informatique", team, begin, end)
    )
    assert len(expected) > 30
    assert read_back == expected
    # Across the spring change (29 March): the weekend shift still ends Monday 08:00 local.
    march_30 = [e for e in read_back if e[1].astimezone(PARIS).date() == date(2026, 3, 30)]
    assert [e[1].astimezone(PARIS).hour for e in march_30] == [8]


def test_ical_for_one_person(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys, "rota", "ical", "-c", str(EXAMPLE), "--person", "alice",
        "--from", "2026-12-01", "--to", "2026-12-31",
    )  # fmt: skip
    assert code == 0
    cal = icalendar.Calendar.from_ical(out)
    summaries = {str(e["summary"]) for e in cal.walk("VEVENT")}
    assert summaries == {
        "Astreinte primary: Alice Martin (alice)",
        "Astreinte secondary: Alice Martin (alice)",
    }


def test_check_lists_findings_with_person_dates_and_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    bad = text.replace(
        'person: claire, from: "2026-12-24 18:00"', 'person: bruno, from: "2026-12-24 18:00"'
    )
    assert bad != text
    path = tmp_path / "bad.yaml"
    path.write_text(bad, encoding="utf-8")
    code, out = run(capsys, "check", "-c", str(path), "--from", "2026-12-01 00:00")
    assert code == 1  # double_booking is an error in the example
    assert (
        "error: [double_booking] team maintenance bruno 2026-12-24 18:00 -> 2026-12-25 18:00: "
        "on call in both 'primary' and 'secondary'"
    ) in out
    # Against the previous version, the edit is within the 15-day notice window.
    args = ["check", "-c", str(path), "--from", "2026-12-20 00:00", "--previous", str(EXAMPLE)]
    code, out = run(capsys, *args)
    assert (
        "warning: [notice] team maintenance bruno 2026-12-24 18:00 -> 2026-12-26 08:00: "
        "rota 'primary' changed from claire to bruno less than 15 days ahead"
    ) in out
    code, out = run(capsys, "check", "-c", str(EXAMPLE), "--from", "2026-12-01 00:00")
    assert code == 0 and "Rota checks" not in out


def test_who_shows_a_gap(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys, "who", "-c", str(EXAMPLE), "--team", "informatique", "--at", "2026-12-23 12:00"
    )
    assert code == 0
    assert "rota astreinte: nobody until 2026-12-23 18:00 CET" in out
