"""One output convention for every command that prints rows (cli/output.py):
--format table|json|csv (--json alias), a stable JSON shape, guarded CSV, a notice
on stderr when --limit leaves rows out, --since/--until everywhere."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from astreinte_ari import cli
from astreinte_ari.adapters.store.alerts import AlertStore
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.callflow.audit_events import CallEnded, CallStarted
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.reports.csv_safe import SafeWriter, spreadsheet_safe
from tests.unit.test_store import T0, three_hop_call
from tests.unit.test_store_cli import _write, run

REPO = Path(__file__).resolve().parents[2]
# The example configuration: two teams, and shift-start alerts for `shifts`.
CONFIG = str(REPO / "config" / "astreinte.example.yaml")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ASTREINTE_CONFIG", "ASTREINTE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite database with three calls (one from a hostile caller name) and two alerts."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    later = T0 + timedelta(hours=1)
    events = [
        *three_hop_call(),
        *three_hop_call("second-call", T0 + timedelta(minutes=30)),
        CallStarted("evil-call", "+33180000099", "Chauffage", "night", "", " =1+1", "ch-9", later),
        CallEnded("evil-call", CallOutcome.ABANDONED, later + timedelta(seconds=5), "hung up"),
    ]  # fmt: skip
    asyncio.run(_write(url, events))
    store = AlertStore(create_db_engine(url))
    for n in (1, 2):
        store.insert_alert(
            dict(id=f"alert000000{n}", kind="missed_call", state="open", policy="missed_call",
                 chain=("alice", "bruno"), opened_at=T0 + timedelta(minutes=n), next_step=0,
                 next_at=T0 + timedelta(minutes=n + 5), line_name="Maintenance")
        )  # fmt: skip
    store.engine.dispose()
    return url


# Every command that prints rows, and the keys of each of its JSON objects, in order:
# the documented shape (README, docs/audit-and-reports.md).
CALL_KEYS = ["id", "did", "line_name", "period", "caller_number", "caller_name", "started_at",
             "answered_at", "ended_at", "outcome", "outcome_detail", "accepted_person_id",
             "hop_count", "talk_seconds", "voicemail_path", "wait_seconds"]  # fmt: skip
COMMANDS = [
    (["calls", "list"], "db", None, ["started_at", "answered_at", "ended_at"]),
    (["alerts", "list"], "db",
     ["id", "kind", "state", "opened_at", "next_at", "chain", "team", "rota", "line_did",
      "line_name", "caller_number", "call_id", "acked_at", "acked_by", "ack_via"],
     ["opened_at", "next_at"]),
    (["shifts"], "db", ["team", "rota", "person_id", "start", "end", "status"], ["start", "end"]),
    (["who", "--at", "2026-03-02 03:00"], "config",
     ["at", "did", "line_name", "team", "period", "step", "label", "person_id", "person_name",
      "number", "ring_timeout_s", "require_accept", "then"], ["at"]),
    (["rota", "show", "--team", "maintenance", "--month", "2026-03"], "config",
     ["team", "rota", "person_id", "start", "end", "source", "layer", "reason"], ["start", "end"]),
]  # fmt: skip


def _argv(argv: list[str], where: str, url: str) -> list[str]:
    return [*argv, "-c", CONFIG, *(["--url", url] if where == "db" else [])]


@pytest.mark.parametrize("spelling", [["--format", "json"], ["--json"]], ids=["format", "alias"])
@pytest.mark.parametrize(
    ("argv", "where", "keys", "times"), COMMANDS, ids=[" ".join(c[0][:2]) for c in COMMANDS]
)
def test_every_row_command_prints_the_documented_json(
    url: str,
    argv: list[str],
    where: str,
    keys: list[str] | None,
    times: list[str],
    spelling: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, *_argv(argv, where, url), *spelling)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, list) and data, out
    expected = keys or CALL_KEYS
    for row in data:
        assert list(row) == expected
        for key in times:
            if row[key] is not None:  # ISO 8601 with an offset: comparable as instants
                assert datetime.fromisoformat(row[key]).utcoffset() is not None, row[key]


@pytest.mark.parametrize(
    ("argv", "where", "keys"), [c[:3] for c in COMMANDS], ids=[" ".join(c[0][:2]) for c in COMMANDS]
)
def test_every_row_command_prints_csv_with_the_same_keys(
    url: str,
    argv: list[str],
    where: str,
    keys: list[str] | None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, *_argv(argv, where, url), "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    if keys is not None:  # calls list keeps its spreadsheet columns
        assert rows[0] == keys
    assert len(rows) > 1 and all(len(r) == len(rows[0]) for r in rows)


def test_a_cut_list_says_so_on_stderr(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "calls", "list", "--url", url, "--limit", "2", "--json")
    assert code == 0 and len(json.loads(out)) == 2  # stdout stays parseable
    assert err == "showing 2 of 3 calls: use --limit N or --all\n"
    for lift in ("--all", "--no-limit"):
        code, out, err = run(capsys, "calls", "list", "--url", url, "--limit", "2", lift, "--json")
        assert code == 0 and len(json.loads(out)) == 3 and err == ""
    code, out, err = run(capsys, "calls", "list", "--url", url, "--format", "csv", "--limit", "1")
    assert len(out.splitlines()) == 2 and "showing 1 of 3 calls" in err
    code, out, err = run(capsys, "alerts", "list", "--url", url, "--limit", "1")
    assert code == 0 and "alert0000002" in out and "alert0000001" not in out
    assert err == "showing 1 of 2 alerts: use --limit N or --no-limit\n"
    code, out, err = run(capsys, "calls", "list", "--url", url, "--limit", "2", "--page", "2")
    assert code == 0 and err == "showing calls 3-3 of 3: use --limit N or --all\n"
    code, out, err = run(capsys, "calls", "list", "--url", url)
    assert err == ""  # nothing left out, nothing said


@pytest.mark.parametrize(
    ("cell", "guarded"),
    [
        ("=1+1", True),
        (" =1+1", True),  # spreadsheets skip the blanks first
        ("  @SUM(A1)", True),
        ("\t=1+1", True),
        ("\r=1+1", True),
        ("\tplain", True),  # tab and CR start a formula on some spreadsheets
        ("-cmd|' /C calc'!A0", True),
        ("+33612345678", False),  # phone numbers stay as written
        ("-5", False),
        (" 12.5", False),
        ("Alice", False),
        ("", False),
    ],
)
def test_csv_formula_guard(cell: str, guarded: bool) -> None:
    assert spreadsheet_safe(cell) == ("'" + cell if guarded else cell)
    out = io.StringIO()
    SafeWriter(out).writerow([cell, 3, None])  # the writer of statements and KPI reports
    assert next(csv.reader(io.StringIO(out.getvalue())))[0] == spreadsheet_safe(cell)


def test_calls_csv_guards_a_caller_name_with_leading_blanks(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "calls", "list", "--url", url, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    evil = next(r for r in rows if r["id"] == "evil-call")
    assert code == 0 and evil["caller_name"].startswith("'") and "=1+1" in evil["caller_name"]


@pytest.mark.parametrize(
    "argv",
    [
        ["calls", "list"],
        ["audit", "verify"],
        ["audit", "export", "--out", "x"],
        ["report"],
        ["rota", "ical", "--team", "t"],
    ],
)
def test_since_until_everywhere_from_to_as_aliases(argv: list[str]) -> None:
    parser = cli.build_parser()
    new = parser.parse_args([*argv, "--since", "2026-03-01", "--until", "2026-04-01"])
    old = parser.parse_args([*argv, "--from", "2026-03-01", "--to", "2026-04-01"])
    assert (new.since, new.until) == (old.since, old.until) == ("2026-03-01", "2026-04-01")


@pytest.fixture
def _restore_levels() -> Iterator[None]:
    names = ("apscheduler", "aiohttp.access")
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("_restore_levels")
def test_third_party_info_is_quiet_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "rota", "show", "-c", CONFIG, "--team", "maintenance")
    assert not logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
    assert logging.getLogger("apscheduler").isEnabledFor(logging.WARNING)
    run(capsys, "-v", "rota", "show", "-c", CONFIG, "--team", "maintenance")
    assert logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.DEBUG)
