"""`astreinte db ...` and `astreinte calls ...` on both backends."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from astreinte_ari import cli
from astreinte_ari.adapters.store.migrate import create_db_engine, head_revision
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import AuditEvent, CallEnded, CallStarted
from astreinte_ari.callflow.outcomes import CallOutcome
from tests.unit.test_store import CALL_ID, T0, at, three_hop_call

REPO = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _write(url: str, events: list[AuditEvent]) -> None:
    engine = create_db_engine(url)
    writer = AuditWriter(engine)
    try:
        for event in events:
            writer.emit(event)
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        writer.close()
        engine.dispose()


@pytest.fixture
def filled_url(db_url: str) -> str:
    events = [
        *three_hop_call(),
        CallStarted("vm-call-1", "+33180000099", "Chauffage", "night", "+33699999999", "",
                    "ch-2", at(3600)),
        CallEnded("vm-call-1", CallOutcome.VOICEMAIL, at(3700), "voicemail after 3 hops",
                  voicemail_path="/var/spool/vm/vm-call-1.wav", voicemail_seconds=21.0),
    ]  # fmt: skip
    asyncio.run(_write(db_url, events))
    return db_url


def test_db_upgrade_and_current(blank_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "current", "--url", blank_db_url)
    assert code == 1 and f"(empty) (needs upgrade to {head_revision()})" in out
    code, out, _ = run(capsys, "db", "upgrade", "--url", blank_db_url)
    assert code == 0 and f"upgraded from (empty) to {head_revision()}" in out
    code, out, _ = run(capsys, "db", "upgrade", "--url", blank_db_url)
    assert code == 0 and f"already at revision {head_revision()}" in out
    code, out, _ = run(capsys, "db", "current", "--url", blank_db_url)
    assert code == 0 and f"{head_revision()} (up to date)" in out


def test_calls_refused_on_unmigrated_database(
    blank_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "calls", "list", "--url", blank_db_url)
    assert code == 1
    assert "astreinte db upgrade -c <config>" in err


def test_no_database_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ASTREINTE_CONFIG", raising=False)
    code, _, err = run(capsys, "calls", "list")
    assert code == 2 and "--url" in err and "-c CONFIG" in err


def test_bad_url_does_not_leak_password(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "db", "current", "--url", "nodriver://u:t0psecret@h:x/db")
    assert code == 1 and "t0psecret" not in out + err


def test_calls_list_table(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calls", "list", "--url", filled_url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "LINE", "CALLER", "OUTCOME", "HOPS", "WAIT", "TALK", "ID"]
    assert "vm-call-" in lines[1] and "voicemail" in lines[1]  # newest first
    first = lines[2]
    local_start = T0.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    for field in (local_start, "Maintenance +33180000000", "+33612345678 (ACME Corp)",
                  "accepted", " 3 ", "44s", "1m06s", CALL_ID[:8]):  # fmt: skip
        assert field in first, field


def test_calls_list_filters_and_json(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "calls", "list", "--url", filled_url, "--outcome", "accepted", "--json"
    )
    data = json.loads(out)
    assert code == 0 and [c["id"] for c in data] == [CALL_ID]
    assert data[0]["hop_count"] == 3 and data[0]["wait_seconds"] == 44.0
    assert data[0]["started_at"] == "2026-03-01T22:15:00+00:00"
    code, out, _ = run(
        capsys, "calls", "list", "--url", filled_url, "--line", "+33180000099", "--json"
    )
    assert [c["id"] for c in json.loads(out)] == ["vm-call-1"]
    since = at(1800).isoformat()
    code, out, _ = run(capsys, "calls", "list", "--url", filled_url, "--since", since, "--json")
    assert [c["id"] for c in json.loads(out)] == ["vm-call-1"]
    code, _, err = run(capsys, "calls", "list", "--url", filled_url, "--since", "yesterday")
    assert code == 2 and "ISO 8601" in err


_TIMELINE = "timeline (offset from the call's start, local time)"


def _squashed(text: str) -> list[str]:
    """Output lines with runs of blanks made single: table columns align with spaces."""
    return [" ".join(line.split()) for line in text.splitlines()]


def _table_rows(lines: list[str], title: str) -> list[str]:
    """Header and data rows of the table titled `title`, up to the next table."""
    start = lines.index(title) + 1
    rows: list[str] = []
    for line in lines[start:]:
        if line.startswith(("hops (", "timeline (")):
            break
        if line and set(line) != {"─"}:
            rows.append(line)
    return rows


def test_calls_show_timeline(
    filled_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # would make rich colour a pipe
        monkeypatch.delenv(name, raising=False)
    code, out, _ = run(capsys, "calls", "show", CALL_ID[:6], "--url", filled_url)
    assert code == 0
    assert "\x1b" not in out  # captured output is not a terminal: no colour codes
    lines = _squashed(out)
    local_start = T0.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert lines[:8] == [
        f"call {CALL_ID}",
        "line Maintenance (+33180000000)",
        "caller +33612345678 (ACME Corp)",
        "period after_hours",
        f"started {local_start} (local time)",
        "outcome accepted - accepted by sup (hop 3)",
        "wait/talk wait 44s, talk 1m06s",
        "taken by sup (hop #3)",
    ]
    assert _table_rows(lines, "hops (3)") == [
        "# label person target outcome cause dtmf ring",
        "1 primary Alice Martin [alice] +33611111111 (trunk: PJSIP/+33611111111@operator) busy "
        "17 User busy - 1s",
        "2 secondary Bob Durand [bob] +33622222222 no_answer 0 Normal, unspecified - 26s",
        "3 supervisor Sam Chef [sup] sip:desk-301 (sip: PJSIP/desk-301) accepted - 1 7s",
    ]

    def clock(seconds: float) -> str:
        return at(seconds).astimezone().strftime("%H:%M:%S")

    timeline = _table_rows(lines, _TIMELINE)
    assert timeline == [
        "offset time source event detail",
        f"+0.0s {clock(0)} call started +33612345678 (ACME Corp) called Maintenance "
        "(+33180000000), period after_hours",
        f"+0.5s {clock(0.5)} state received -> announcing after hours",
        f"+6.0s {clock(6)} hop #1 rung primary: Alice Martin [alice] +33611111111 "
        "(trunk: PJSIP/+33611111111@operator)",
        f"+6.0s {clock(6)} state announcing -> dialing announcement done",
        f"+7.0s {clock(7)} hop #1 ended: busy cause 17 User busy",
        f"+7.0s {clock(7)} hop #2 rung secondary: Bob Durand [bob] +33622222222",
        f"+8.0s {clock(8)} hop #2 ringing",
        f"+33.0s {clock(33)} hop #2 ended: no_answer cause 0 Normal, unspecified",
        f"+33.0s {clock(33)} hop #3 rung supervisor: Sam Chef [sup] sip:desk-301 "
        "(sip: PJSIP/desk-301)",
        f"+34.0s {clock(34)} hop #3 ringing",
        f"+40.0s {clock(40)} hop #3 answered",
        f"+40.0s {clock(40)} state dialing -> agent_prompt agent answered",
        f"+44.0s {clock(44)} hop #3 accepted dtmf 1",
        f"+44.0s {clock(44)} hop #3 ended: accepted dtmf 1",
        f"+44.0s {clock(44)} state agent_prompt -> bridged accepted",
        f"+44.0s {clock(44)} call answered connected to sup after 44s",
        f"+109.5s {clock(109.5)} state bridged -> ended caller hung up",
        f"+109.5s {clock(109.5)} call ended: accepted accepted by sup (hop 3); talk 1m06s",
    ]


def test_calls_show_voicemail_call(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calls", "show", "vm-call-1", "--url", filled_url)
    assert code == 0
    lines = _squashed(out)
    assert "outcome voicemail - voicemail after 3 hops" in lines
    assert "voicemail /var/spool/vm/vm-call-1.wav (21s)" in lines
    assert _table_rows(lines, "hops (0)") == ["# label person target outcome cause dtmf ring"]
    assert [line.split(" ", 3)[2:] for line in _table_rows(lines, _TIMELINE)[1:]] == [
        ["call", "started +33699999999 called Chauffage (+33180000099), period night"],
        ["call", "voicemail /var/spool/vm/vm-call-1.wav (21s)"],
        ["call", "ended: voicemail voicemail after 3 hops"],
    ]


def test_calls_show_json_and_errors(filled_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "calls", "show", "vm-call-1", "--url", filled_url, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["voicemail_path"] == "/var/spool/vm/vm-call-1.wav"
    assert (
        data["voicemail_seconds"] == 21.0 and data["hops"] == [] and data["outcome"] == "voicemail"
    )
    code, _, err = run(capsys, "calls", "show", "nope", "--url", filled_url)
    assert code == 1 and "no call" in err


def test_config_file_gives_the_database(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The config layer reads ASTREINTE_DATABASE_URL before the file's database section.
    monkeypatch.setenv("ASTREINTE_DATABASE_URL", db_url)
    monkeypatch.setenv("ASTREINTE_CONFIG", str(REPO / "config" / "demo.yaml"))
    code, out, err = run(capsys, "db", "current")
    assert code == 0, err
    assert f"{head_revision()} (up to date)" in out


def test_unknown_driver_does_not_leak_password(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "db", "current", "--url", "nodriver://u:t0psecret@h/db")
    assert code == 1 and "t0psecret" not in out + err


def test_read_commands_do_not_create_a_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/missing/audit.db"
    for argv in (["db", "current"], ["calls", "list"], ["calls", "show", "x"]):
        code, _, err = run(capsys, *argv, "--url", url)
        assert code == 1 and "no database file" in err and "astreinte db upgrade" in err
    assert not (tmp_path / "missing").exists()


def test_times_follow_the_configuration_zone(
    filled_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Servers often run in UTC: with -c, times are shown and read in the service's zone."""
    monkeypatch.setenv("ASTREINTE_DATABASE_URL", filled_url)
    config = str(REPO / "config" / "demo.yaml")  # Europe/Paris
    code, out, err = run(capsys, "calls", "show", CALL_ID[:6], "-c", config)
    assert code == 0, err
    assert "2026-03-01 23:15:00 (Europe/Paris)" in out  # started 22:15 UTC
    for since, listed in (("2026-03-01T23:15", True), ("2026-03-01T23:16", False)):
        code, out, err = run(capsys, "calls", "list", "-c", config, "--since", since, "--json")
        assert code == 0, err
        assert (CALL_ID in [c["id"] for c in json.loads(out)]) is listed, since
