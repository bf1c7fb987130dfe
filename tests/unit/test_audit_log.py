"""Hash-chained audit log: written with the domain rows, tamper detection, export,
retention — each case on SQLite and PostgreSQL (db_url)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, insert, select, text

from astreinte_ari import cli
from astreinte_ari.adapters.store.audit_export import export_log, verify_export
from astreinte_ari.adapters.store.audit_log import (
    append_audit_record,
    audit_log_table,
    canonical_json,
    iso,
    record_hash,
    rows_with_iso_times,
    select_times_as_text,
)
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.retention import REDACTED_NUMBER, run_retention
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import AuditEvent, CallEnded, CallStarted
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.config.reporting import RetentionConfig
from tests.unit.test_store import CALL_ID, T0, three_hop_call

SECOND_CALL = "7a7a7a7a-0000-4000-8000-000000000002"
EVENTS_PER_CALL = 18  # three_hop_call()
GENESIS = "0" * 64


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


async def _write(engine: Engine, events: list[AuditEvent]) -> None:
    writer = AuditWriter(engine)
    try:
        for event in events:
            writer.emit(event)
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        writer.close()


@pytest.fixture
def filled(engine: Engine) -> Engine:
    events = [*three_hop_call(), *three_hop_call(SECOND_CALL, T0 + timedelta(hours=2))]
    asyncio.run(_write(engine, events))
    return engine


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def _seq_of(engine: Engine, kind: str, subject: str) -> int:
    with engine.connect() as conn:
        found = conn.scalar(
            select(audit_log_table.c.seq).where(
                audit_log_table.c.kind == kind, audit_log_table.c.subject_id == subject
            )
        )
    assert found is not None
    return int(found)


def test_every_event_is_chained_and_verifies(filled: Engine) -> None:
    report = verify(filled)
    assert report.ok, report.problems
    assert report.records == 2 * EVENTS_PER_CALL
    assert (report.calls, report.hops, report.transitions) == (2, 6, 10)
    assert report.head_seq == report.last_seq == 2 * EVENTS_PER_CALL
    with filled.connect() as conn:
        payload = conn.scalar(select(audit_log_table.c.payload).where(audit_log_table.c.seq == 1))
    assert "+33612345678" not in str(payload)  # only a commitment of the caller ID


def test_verify_gives_the_cyclic_collector_back(filled: Engine) -> None:
    """verify pauses Python's cyclic GC for its bulk replay; it must come back on,
    and stay off for a caller that had turned it off."""
    assert verify(filled).ok and gc.isenabled()
    gc.disable()
    try:
        verify(filled)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_replayed_batch_adds_nothing(filled: Engine) -> None:
    writer = AuditWriter(filled)
    try:
        writer.write_events(three_hop_call())  # e.g. the commit ack was lost
    finally:
        writer.close()
    report = verify(filled)
    assert report.ok and report.records == 2 * EVENTS_PER_CALL


def test_edited_log_record_is_the_first_broken_link(filled: Engine) -> None:
    seq = _seq_of(filled, "call.ended", CALL_ID)
    _sql(filled, "UPDATE audit_log SET payload = replace(payload, 'accepted', 'no_one') "
         "WHERE seq = :seq", seq=seq)  # fmt: skip
    report = verify(filled)
    assert not report.ok
    assert report.first_broken is not None
    assert f"seq {seq} " in report.first_broken.where
    assert "record edited" in report.first_broken.what


def test_deleted_log_record_is_detected(filled: Engine) -> None:
    _sql(filled, "DELETE FROM audit_log WHERE seq = 5")
    report = verify(filled, check_domain=False)
    assert not report.ok
    assert "seq 6 " in str(report.first_broken)
    assert "5..5 are missing" in str(report.first_broken)


def test_deleted_newest_record_is_detected_by_the_head(filled: Engine) -> None:
    _sql(filled, "DELETE FROM audit_log WHERE seq = :seq", seq=2 * EVENTS_PER_CALL)
    report = verify(filled, check_domain=False)
    assert not report.ok
    assert "audit_log_head" in str(report.first_broken)


def test_inserted_log_record_is_detected(filled: Engine) -> None:
    # A forger who knows the algorithm computes a valid hash, but appends behind
    # the head's back (or must rewrite every later hash: see the export test).
    with filled.begin() as conn:
        table = audit_log_table
        row = conn.execute(select(table).order_by(table.c.seq.desc())).first()
        assert row is not None
        seq, when, payload = row.seq + 1, row.at + timedelta(seconds=1), canonical_json({"x": 1})
        digest = record_hash(seq, when, "call.note", CALL_ID, payload, row.hash)
        conn.execute(audit_log_table.insert().values(
            seq=seq, at=when, kind="call.note", subject_id=CALL_ID, payload=payload,
            prev_hash=row.hash, hash=digest))  # fmt: skip
    assert "audit_log_head" in str(verify(filled, check_domain=False).first_broken)
    # In the middle: the next record's link breaks.
    _sql(filled, "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 10")
    report = verify(filled, check_domain=False)
    assert not report.ok and "missing" in str(report.first_broken)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE calls SET outcome = 'no_one' WHERE id = :call", "outcome is 'no_one'"),
        ("UPDATE calls SET caller_number = '+33700000000' WHERE id = :call", "caller_number"),
        ("UPDATE hops SET outcome = 'accepted' WHERE id = :hop", "outcome is 'accepted'"),
        ("DELETE FROM hops WHERE id = :hop", "row deleted"),
        ("UPDATE call_transitions SET reason = 'x' WHERE call_id = :call AND seq = 2", "reason"),
        ("DELETE FROM call_transitions WHERE call_id = :call AND seq = 2", "row deleted"),
        ("UPDATE hops SET ended_at = started_at WHERE id = :hop", "ended_at is"),
        ("UPDATE call_transitions SET at = (SELECT ended_at FROM calls WHERE id = :call)"
         " WHERE call_id = :call AND seq = 2", "at differs"),
        ("INSERT INTO calls (id, did, line_name, period, caller_number, caller_name, channel_id,"
         " started_at) SELECT 'forged', did, line_name, period, caller_number, caller_name,"
         " channel_id, started_at FROM calls WHERE id = :call", "not in the audit log"),
        ("INSERT INTO hops (id, call_id, seq, label, person_id, person_name, number,"
         " started_at) SELECT 'forged-hop', call_id, 9, label, person_id, person_name, number,"
         " started_at FROM hops WHERE id = :hop", "hops forged-hop"),
        ("INSERT INTO call_transitions (call_id, seq, from_state, to_state, reason, at)"
         " SELECT call_id, 99, from_state, to_state, reason, at FROM call_transitions"
         " WHERE call_id = :call AND seq = 2", "#99"),
    ],
)  # fmt: skip
def test_tampered_domain_rows_are_detected(filled: Engine, statement: str, expected: str) -> None:
    _sql(filled, statement, call=CALL_ID, hop=f"{CALL_ID[:8]}-hop-1")
    report = verify(filled)
    assert not report.ok
    assert expected in str(report.first_broken), report.problems


def test_deleted_call_is_detected(filled: Engine) -> None:
    for table in ("hops", "call_transitions"):
        _sql(filled, f"DELETE FROM {table} WHERE call_id = :call", call=SECOND_CALL)
    _sql(filled, "DELETE FROM calls WHERE id = :call", call=SECOND_CALL)
    report = verify(filled)
    assert any(SECOND_CALL in p.where and "row deleted" in p.what for p in report.problems)


def test_other_features_append_their_records(filled: Engine) -> None:
    with filled.begin() as conn:
        first = append_audit_record(conn, "alert.sent", "alert-1", {"to": "alice", "n": 1},
                                    dedup_key="alert.sent:alert-1:1")  # fmt: skip
        again = append_audit_record(conn, "alert.sent", "alert-1", {"to": "alice", "n": 1},
                                    dedup_key="alert.sent:alert-1:1")  # fmt: skip
        append_audit_record(conn, "config.version", "v42", {"sha256": "ab" * 32})
    assert first == again  # the dedup key made the second call a no-op
    report = verify(filled)
    assert report.ok and report.records == 2 * EVENTS_PER_CALL + 2


def test_range_verification(filled: Engine) -> None:
    with filled.connect() as conn:
        middle = conn.scalar(select(audit_log_table.c.at).where(audit_log_table.c.seq == 10))
    assert middle is not None
    report = verify(filled, since=middle, until=middle + timedelta(days=1))
    assert report.ok, report.problems
    assert report.first_seq == 10


def test_retention_redacts_and_deletes_and_still_verifies(filled: Engine, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    (recordings / "2026" / "03").mkdir(parents=True)
    wav = recordings / "2026" / "03" / "vm-old.wav"
    wav.write_bytes(b"RIFF fake wav")
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"keep me")
    events: list[AuditEvent] = []
    for call_id, path in (("vm-old", wav), ("vm-outside", outside)):
        events += [
            CallStarted(call_id, "+33180000000", "M", "night", "+33611", "Bob", "c", T0),
            CallEnded(call_id, CallOutcome.VOICEMAIL, T0 + timedelta(seconds=30), "vm",
                      voicemail_path=str(path), voicemail_seconds=9.0),
        ]  # fmt: skip
    asyncio.run(_write(filled, events))
    now = T0 + timedelta(days=400)
    config = RetentionConfig(recordings_days=30, caller_id_days=365)
    result = run_retention(filled, config, recordings, clock=lambda: now)
    assert (result.recordings_deleted, result.caller_ids_redacted) == (1, 4)
    assert result.recordings_refused == [str(outside)]
    assert not wav.exists() and outside.exists()
    with filled.connect() as conn:
        numbers = set(conn.scalars(select(text("caller_number")).select_from(text("calls"))))
        deleted = conn.scalar(
            select(audit_log_table.c.payload).where(
                audit_log_table.c.kind == "retention.delete_recording",
                audit_log_table.c.subject_id == "vm-old",
            )
        )
    assert numbers == {REDACTED_NUMBER}
    assert json.loads(str(deleted))["sha256"] is not None
    report = verify(filled)
    assert report.ok, report.problems
    again = run_retention(filled, config, recordings, clock=lambda: now)
    assert (again.recordings_deleted, again.caller_ids_redacted) == (0, 0)
    # A redacted field edited afterwards is still caught.
    _sql(filled, "UPDATE calls SET caller_number = '+33699' WHERE id = :call", call=CALL_ID)
    assert "redaction" in str(verify(filled).first_broken)


def test_export_and_offline_verification(filled: Engine, tmp_path: Path) -> None:
    key = b"k" * 32
    now = datetime(2026, 4, 1, tzinfo=UTC)
    manifest = export_log(filled, tmp_path / "exp", key=key, clock=lambda: now)
    assert manifest["records"] == 2 * EVENTS_PER_CALL
    ok = verify_export(tmp_path / "exp", key=key)
    assert ok.ok and ok.signature == "valid" and ok.head_hash == manifest["head_hash"]
    assert verify_export(tmp_path / "exp").signature == "not checked (no key)"
    assert verify_export(tmp_path / "exp", key=b"x" * 32).signature == "INVALID"
    data = tmp_path / "exp" / "audit_log.jsonl"
    lines = data.read_text().splitlines()
    lines[1] = lines[1].replace("announcing", "bridged")
    data.write_text("\n".join(lines) + "\n")
    broken = verify_export(tmp_path / "exp", key=key)
    assert not broken.ok
    assert any("seq 2" in p and "edited" in p for p in broken.problems)


def test_audit_cli(filled: Engine, db_url: str, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert cli.main(["audit", "verify", "--url", db_url]) == 0
    assert "OK: chain intact" in capsys.readouterr().out
    assert cli.main(["audit", "export", "--url", db_url, "--out", str(tmp_path / "e")]) == 0
    assert "unsigned" in capsys.readouterr().out
    assert cli.main(["audit", "verify-export", str(tmp_path / "e")]) == 0
    assert "OK: export intact" in capsys.readouterr().out
    _sql(filled, "UPDATE hops SET dtmf = '9' WHERE id = :hop", hop=f"{CALL_ID[:8]}-hop-3")
    assert cli.main(["audit", "verify", "--url", db_url]) == 1
    out = capsys.readouterr().out
    assert "FIRST BROKEN LINK: hops" in out and "dtmf is '9'" in out
    with filled.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(audit_log_table)) == 36


def test_calls_older_than_the_chain_are_accepted_and_only_them(blank_db_url: str) -> None:
    from alembic import command

    from astreinte_ari.adapters.store.migrate import _alembic_config, upgrade

    eng = create_db_engine(blank_db_url)
    try:
        cfg = _alembic_config()
        with eng.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
        _sql(eng, "INSERT INTO calls (id, did, line_name, period, caller_number, caller_name, "
             "channel_id, started_at) VALUES ('old-1', '+331', 'M', 'night', '+336', '', 'c', "
             ":t)", t=T0.replace(tzinfo=None) if "sqlite" in blank_db_url else T0)  # fmt: skip
        upgrade(blank_db_url)
        asyncio.run(_write(eng, three_hop_call()))
        report = verify(eng, open_after=None)  # the minimal old row has no ending
        assert report.ok and report.pre_chain_calls == 1, report.problems
        _sql(eng, "UPDATE calls SET id = 'old-2' WHERE id = 'old-1'")
        assert "baseline" in str(verify(eng).first_broken)
    finally:
        eng.dispose()


async def test_calls_that_never_ended_are_findings(filled: Engine) -> None:
    """A call still open long after its start is not "OK": nothing says what became
    of the caller (the service closes such calls from the PBX's records)."""
    await _write(filled, [CallStarted("lost-1", "+33180000000", "M", "night", "+336", "", "c", T0)])
    report = verify(filled, now=T0 + timedelta(minutes=30))
    assert report.ok, report.problems  # younger than the threshold: may still be ringing
    report = verify(filled, now=T0 + timedelta(hours=2))
    assert not report.ok and report.open_calls == 1
    assert "calls lost-1: never ended" in str(report.first_broken)
    assert verify(filled, now=T0 + timedelta(hours=2), open_after=None).ok


async def test_retention_is_also_scheduled_by_the_service(filled: Engine, tmp_path: Path) -> None:
    """keep_retention runs at once (then every interval) with the live settings."""
    from astreinte_ari.adapters.store.retention import keep_retention

    recordings = tmp_path / "recordings"
    (recordings / "2026" / "03").mkdir(parents=True)
    wav = recordings / "2026" / "03" / "vm-sched.wav"
    wav.write_bytes(b"RIFF fake wav")
    await _write(
        filled,
        [
            CallStarted("vm-sched", "+33180000000", "M", "night", "+33611", "Bob", "c", T0),
            CallEnded("vm-sched", CallOutcome.VOICEMAIL, T0 + timedelta(seconds=30), "vm",
                      voicemail_path=str(wav), voicemail_seconds=9.0),
        ],
    )  # fmt: skip
    settings = (RetentionConfig(recordings_days=30), recordings)
    task = asyncio.create_task(
        keep_retention(filled, lambda: settings, clock=lambda: T0 + timedelta(days=40))
    )
    for _ in range(100):
        if not wav.exists():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    assert not wav.exists()


RAW_TIMES = [
    datetime(2025, 1, 1, tzinfo=UTC),  # no microseconds: isoformat() alone would drop them
    datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 3, 29, 2, 30, 0, 1, tzinfo=ZoneInfo("Europe/Paris")),  # DST jump day
    datetime(2026, 10, 25, 2, 30, 0, 500, tzinfo=ZoneInfo("Europe/Paris"), fold=1),
    datetime(1999, 12, 31, 23, 0, 0, 10),  # naive: taken as UTC
]


def test_timestamps_read_as_raw_text_are_exactly_iso(engine: Engine) -> None:
    """`audit verify` hashes the times select_times_as_text + rows_with_iso_times give:
    they must match iso() byte for byte, or every record would read as tampered."""
    rows = [
        {"seq": 900 + i, "at": at, "kind": "t", "subject_id": "s", "payload": "{}",
         "prev_hash": GENESIS, "hash": GENESIS}
        for i, at in enumerate(RAW_TIMES)
    ]  # fmt: skip
    columns = [audit_log_table.c.seq, audit_log_table.c.at]
    with engine.connect() as conn:
        conn.execute(insert(audit_log_table), rows)
        dialect = conn.dialect.name
        stmt = select_times_as_text(columns, dialect).order_by(audit_log_table.c.seq)
        got = [row[1] for row in rows_with_iso_times(conn.execute(stmt), columns, dialect)]
        conn.rollback()
    assert got == [iso(at) for at in RAW_TIMES]
