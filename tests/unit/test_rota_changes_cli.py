"""`astreinte rota request|consent|approve|refuse|cancel|changes|export-overrides`, and
the approved changes in `who`, `rota show` and `check` (real SQLite database)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from astreinte_ari import cli
from astreinte_ari.schedule.rota import who_is_on_call
from astreinte_ari.schedule.validate import load_checked_config
from tests.unit.rota_changes_helpers import CONFIG, PARIS


def saturday() -> date:
    """A Saturday four to five weeks ahead: outside the notice period, in the future."""
    day = datetime.now(PARIS).date() + timedelta(days=28)
    return day + timedelta(days=(5 - day.weekday()) % 7)


@pytest.fixture
def config_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "astreinte.yaml"
    db = tmp_path / "var" / "astreinte.db"
    path.write_text(CONFIG.replace("teams:\n", f'database: {{url: "sqlite:///{db}"}}\nteams:\n', 1))
    assert cli.main(["db", "upgrade", "-c", str(path)]) == 0
    capsys.readouterr()
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def holder(path: Path, day: date, hour: int = 12) -> str | None:
    team = load_checked_config(path).teams["t"]
    at = datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)
    return who_is_on_call(team, "week", at)


def request_cover(capsys: pytest.CaptureFixture[str], path: Path, actor: str) -> str:
    day = saturday()
    code, out, err = run(
        capsys, "rota", "request", "-c", str(path), "--team", "t", "--rota", "week",
        "--kind", "cover", "--from", f"{day} 10:00", "--to", f"{day} 16:00",
        "--as", actor, "--reason", "family visit",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("requested ") and "waiting for a manager's approval" in out
    return out.split()[1].rstrip(":")


def test_cover_from_request_to_who_show_check_and_export(
    capsys: pytest.CaptureFixture[str], config_path: Path
) -> None:
    day = saturday()
    was = holder(config_path, day)
    taker = "a"
    rid = request_cover(capsys, config_path, taker)
    code, out, _ = run(capsys, "rota", "changes", "-c", str(config_path), "--format", "json")
    (row,) = json.loads(out)
    assert (row["id"], row["status"], row["requester"], row["counterpart"]) == (
        rid, "requested", taker, was,
    )  # fmt: skip
    ten = datetime(day.year, day.month, day.day, 10, tzinfo=PARIS).isoformat()
    assert row["start"] == ten

    code, _, err = run(capsys, "rota", "approve", rid, "-c", str(config_path), "--as", "b")
    assert code == 1 and "refused [permission]" in err and "needs a manager" in err
    code, out, err = run(
        capsys, "rota", "approve", rid, "-c", str(config_path), "--as", "m", "--note", "ok"
    )
    assert code == 0, err
    assert out.startswith(f"{rid} approved: a covers {was} on week {day} 10:00 -> {day} 16:00")

    at = f"{day} 12:00"
    code, out, _ = run(capsys, "who", "-c", str(config_path), "--at", at, "--format", "json")
    assert {r["person_id"] for r in json.loads(out)} == {taker}
    code, out, _ = run(capsys, "who", "-c", str(config_path), "--at", at)
    marker = f"override: web change {rid}, approved by m: family visit (asked by a)"
    assert f"rota week: a until {day} 16:00" in out and marker in out

    month = f"{day:%Y-%m}"
    code, out, _ = run(capsys, "rota", "show", "-c", str(config_path), "--team", "t",
                       "--month", month, "--format", "json")  # fmt: skip
    (shift,) = [s for s in json.loads(out) if s["source"] == "override"]
    assert (shift["person_id"], shift["start"]) == (taker, ten)
    assert shift["reason"].startswith(f"web change {rid}")

    code, out, _ = run(capsys, "rota", "ical", "-c", str(config_path), "--team", "t",
                       "--since", str(day), "--until", str(day + timedelta(days=1)))  # fmt: skip
    assert code == 0 and f"web change {rid}" in out.replace("\r\n ", "")

    code, out, _ = run(capsys, "check", "-c", str(config_path))
    assert "Approved changes of team t (database, not in the YAML):" in out
    assert f"rota week: a {day} 10:00 -> {day} 16:00  override (web change {rid}" in out
    assert "requested by a)" in out

    code, out, _ = run(capsys, "rota", "export-overrides", "-c", str(config_path), "--team", "t")
    assert code == 0 and out.startswith("# team t: 1 approved change override(s)\n")
    (entry,) = yaml.safe_load(out)["overrides"]
    assert entry == {"rota": "week", "person": "a", "from": f"{day} 10:00",
                     "to": f"{day} 16:00", "reason": f"web change {rid}, approved by m: "
                     "family visit", "requested_by": "a"}  # fmt: skip
    # Pasted into the team's file, the YAML alone says the same.
    pasted = config_path.parent / "pasted.yaml"
    indented = "\n".join("    " + line for line in out.splitlines()[1:])
    pasted.write_text(CONFIG + indented + "\n", encoding="utf-8")
    assert holder(pasted, day) == taker and holder(config_path, day) == was


def test_swap_consent_then_approve(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    day = saturday()
    mine = holder(config_path, day)  # b or c, by the week
    other = {"b": "c", "c": "b"}[str(mine)]
    theirs = day + timedelta(days=7)
    assert holder(config_path, theirs) == other
    code, out, err = run(
        capsys, "rota", "request", "-c", str(config_path), "--team", "t", "--rota", "week",
        "--kind", "swap", "--from", f"{day} 09:00", "--to", f"{day} 18:00", "--with", other,
        "--swap-from", f"{theirs} 09:00", "--swap-to", f"{theirs} 18:00", "--as", str(mine),
    )  # fmt: skip
    assert code == 0, err
    assert "waiting for the colleague's consent" in out
    rid = out.split()[1].rstrip(":")
    code, out, err = run(capsys, "rota", "consent", rid, "-c", str(config_path), "--as", other)
    assert code == 0 and "agreed by the colleague; waiting for a manager's approval" in out
    code, out, _ = run(capsys, "rota", "changes", "-c", str(config_path))
    assert "requested*" in out and rid in out
    code, out, err = run(capsys, "rota", "approve", rid, "-c", str(config_path), "--as", "n")
    assert code == 0, err
    code, out, _ = run(capsys, "who", "-c", str(config_path), "--at", f"{theirs} 12:00",
                       "--format", "json")  # fmt: skip
    assert {r["person_id"] for r in json.loads(out)} == {mine}


def test_refuse_and_cancel_and_listing_filters(
    capsys: pytest.CaptureFixture[str], config_path: Path
) -> None:
    first = request_cover(capsys, config_path, "a")
    second = request_cover(capsys, config_path, "n")
    code, _, err = run(capsys, "rota", "cancel", first, "-c", str(config_path), "--as", "n")
    assert code == 1 and "refused [permission] only a can cancel" in err
    assert run(capsys, "rota", "cancel", first, "-c", str(config_path), "--as", "a")[0] == 0
    code, out, _ = run(capsys, "rota", "refuse", second, "-c", str(config_path), "--as", "m",
                       "--note", "short-staffed")  # fmt: skip
    assert code == 0 and out.startswith(f"{second} refused")
    code, out, _ = run(capsys, "rota", "changes", "-c", str(config_path), "--status", "refused",
                       "--format", "csv")  # fmt: skip
    lines = out.splitlines()
    assert lines[0].startswith("id,team,rota,kind,status") and len(lines) == 2
    assert "short-staffed" in lines[1] and second in lines[1]
    code, out, _ = run(capsys, "rota", "changes", "-c", str(config_path), "--person", "a")
    assert first in out and second not in out
    code, out, _ = run(capsys, "rota", "export-overrides", "-c", str(config_path))
    assert out.strip() == "# team t: 0 approved change override(s)"


@pytest.mark.parametrize(
    ("option", "value", "code", "words"),
    [
        ("--as", "zed", 1, "--as: unknown person 'zed' in team t"),
        ("--with", "zed", 1, "--with: unknown person 'zed'"),
        ("--to", "SAT 09:00", 2, "--to must be after --from"),
        ("--from", "saturday", 2, "--from: not a time like"),
        ("--team", "x", 1, "unknown team 'x'"),
        ("--rota", "days", 1, "refused [invalid] unknown rota 'days'"),
        ("--with", "NOT_HOLDER", 1, "refused [not_holder]"),
    ],
)
def test_request_errors(
    capsys: pytest.CaptureFixture[str],
    config_path: Path,
    option: str,
    value: str,
    code: int,
    words: str,
) -> None:
    day = saturday()
    args = {"--team": "t", "--rota": "week", "--kind": "cover", "--from": f"{day} 10:00",
            "--to": f"{day} 16:00", "--as": "a"}  # fmt: skip
    if value == "NOT_HOLDER":
        value = "c" if holder(config_path, day) == "b" else "b"
    args[option] = value.replace("SAT", str(day))
    flat = [x for pair in args.items() for x in pair]
    got, _, err = run(capsys, "rota", "request", "-c", str(config_path), *flat)
    assert got == code and words in err, err


def test_unknown_request_id(capsys: pytest.CaptureFixture[str], config_path: Path) -> None:
    code, _, err = run(capsys, "rota", "approve", "nope", "-c", str(config_path), "--as", "m")
    assert code == 1 and "refused [not_found] no change request 'nope'" in err


def test_who_without_a_database_uses_the_yaml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "astreinte.yaml"
    db = tmp_path / "none" / "astreinte.db"
    path.write_text(CONFIG.replace("teams:\n", f'database: {{url: "sqlite:///{db}"}}\nteams:\n', 1))
    code, out, _ = run(capsys, "who", "-c", str(path), "--format", "json")
    assert code == 0 and json.loads(out) and not db.exists()
