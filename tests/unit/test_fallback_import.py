"""Fallback spool import: idempotent, completes service-started records, last resort -
real directories, real databases. The plan cache: test_fallback_plan_cache.py; the
watcher: test_fallback_watcher.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from astreinte_ari.adapters.fallback.importer import import_spool
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.adapters.store.queries import get_call, list_calls
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import CallStarted, StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.config.loader import load_config
from tests.unit.fallback_helpers import (
    DID,
    HOSTILE,
    T0,
    FakeChannel,
    Ring,
    _dials,
    _import,
    _run,
    _spool,
    config_file_fixture,  # noqa: F401 (a fixture)
)


@pytest.fixture
def spool_with_calls(config_file: Path) -> Iterator[Path]:
    dials = _dials(config_file)
    channel = FakeChannel(
        {dials[0]: Ring("ANSWER", "16", "none"), dials[1]: Ring("ANSWER", key="1")}
    )
    _run(config_file, channel, "1800000000.1")
    _run(config_file, FakeChannel({d: Ring() for d in dials}), "1800000000.2")
    spool = _spool(config_file)
    # A call the AGI never handled (config broken): only the dialplan's last resort.
    (spool / "1800000000.3.lastresort.json").write_text(
        json.dumps(
            {
                "event": "lastresort",
                "uniqueid": "1800000000.3",
                "did": DID,
                "caller_number": "+33199000003",
                "call_start": str(T0),
                "agi_status": "FAILURE",
                "target": "PJSIP/+33610000001",
                "at": str(T0 + 0.3),
                "ended": str(T0 + 20),
                "dialstatus": "BUSY",
                "hangupcause": "17",
            }
        )
        + "\n"
    )
    # Still ringing (no end, fresh file): must be left for the next import.
    (spool / "1800000000.4.jsonl").write_text(
        json.dumps({"event": "call", "at": T0, "did": DID}) + "\n"
    )
    yield spool


def _counts(db_url: str) -> tuple[int, ...]:
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            tables = (calls_table, hops_table, call_transitions_table)
            rows = [conn.scalar(select(func.count()).select_from(t)) or 0 for t in tables]
            rows.append(conn.scalar(text("SELECT count(*) FROM audit_log")) or 0)
    finally:
        engine.dispose()
    return tuple(rows)


def test_import_is_idempotent_and_moves_files_aside(
    db_url: str, config_file: Path, spool_with_calls: Path
) -> None:
    first = _import(config_file, db_url)
    assert len(first) == 3 and not any(c.was_recorded for c in first)
    assert sorted(p.name for p in spool_with_calls.glob("*.json*")) == ["1800000000.4.jsonl"]
    counts = _counts(db_url)
    # A crash between the commit and the file move: the files come back.
    for path in (spool_with_calls / "imported").iterdir():
        path.rename(spool_with_calls / path.name)
    again = _import(config_file, db_url)
    assert [c.call_id for c in again] == [c.call_id for c in first]
    assert all(c.was_recorded for c in again)  # flagged: alerts were raised the first time
    assert _counts(db_url) == counts  # nothing written twice, audit log included
    engine = create_db_engine(db_url)
    try:
        accepted = get_call(engine, call_id_for_channel("1800000000.1"))
        voicemail = get_call(engine, call_id_for_channel("1800000000.2"))
        last = get_call(engine, call_id_for_channel("1800000000.3"))
    finally:
        engine.dispose()
    assert accepted is not None and accepted.outcome == "accepted"
    assert [(h.outcome, h.dtmf) for h in accepted.hops] == [
        ("not_accepted", None),
        ("accepted", "1"),
    ]
    assert accepted.caller_name == HOSTILE.replace("\n", "\\n").replace("\x00", "\\x00")
    assert [t.seq for t in accepted.transitions] == list(range(1, len(accepted.transitions) + 1))
    config = load_config(config_file)
    assert voicemail is not None and voicemail.outcome == "voicemail"
    assert voicemail.voicemail_path and Path(voicemail.voicemail_path).is_relative_to(
        config.recordings_dir
    )
    assert last is not None and last.outcome == "no_one"
    assert [(h.label, h.outcome, h.cause_code) for h in last.hops] == [("last-resort", "busy", 17)]
    by_id = {c.call_id: c for c in first}
    summary = by_id[voicemail.id]
    assert (summary.outcome, summary.last_state) == (CallOutcome.VOICEMAIL, CallState.RECORDING)
    assert summary.voicemail_path == voicemail.voicemail_path
    assert len(summary.person_ids) == 2 and summary.person_ids[-1] == "sup"
    assert by_id[accepted.id].accepted_person_id == accepted.accepted_person_id


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({}, "service not connected: dialplan fallback (AGI)"),
        (
            {"ASTREINTE_WATCHDOG_FIRED": "1"},
            "service did not take the call in time (watchdog): dialplan fallback (AGI)",
        ),
        (
            {"ASTREINTE_FB_TRIGGER": "draining"},
            "service stopping (draining): dialplan fallback (AGI)",
        ),
        ({"ASTREINTE_FB_TRIGGER": "draining;x"}, "service not connected: dialplan fallback (AGI)"),
    ],
)
def test_import_completes_the_record_the_service_started(
    db_url: str, config_file: Path, variables: dict[str, str], reason: str
) -> None:
    uniqueid = "pbx-1-1800000000.51"
    call_id = call_id_for_channel(uniqueid)
    engine = create_db_engine(db_url)
    writer = AuditWriter(engine)
    try:
        started = CallStarted(
            call_id, DID, "Demo", "after_hours", "+33199000001", "Client", uniqueid,
            datetime.fromtimestamp(T0 - 2, UTC),
        )  # fmt: skip
        writer.write_events([started])
        dials = _dials(config_file)
        channel = FakeChannel({dials[1]: Ring("ANSWER", key="1", talk_s=9)}, **variables)
        assert _run(config_file, channel, uniqueid) is CallOutcome.ACCEPTED
        calls = _import(config_file, db_url)
        assert [c.call_id for c in calls] == [call_id]
        detail = get_call(engine, call_id)
        assert [c.id for c in list_calls(engine, did=DID)] == [call_id]  # one record
    finally:
        writer.close()
        engine.dispose()
    assert detail is not None and detail.outcome == "accepted"
    assert detail.started_at == started.at  # the service's row, completed
    assert [h.outcome for h in detail.hops] == ["no_answer", "accepted"]
    assert detail.transitions[0].reason == reason and detail.transitions[0].seq == 1
    assert calls[0].trigger in ("stasis", "watchdog", "draining")


def test_import_continues_after_transitions_already_stored(db_url: str, config_file: Path) -> None:
    uniqueid = "1800000000.52"
    call_id = call_id_for_channel(uniqueid)
    at = datetime.fromtimestamp(T0 - 2, UTC)
    engine = create_db_engine(db_url)
    writer = AuditWriter(engine)
    try:
        writer.write_events(
            [
                CallStarted(call_id, DID, "Demo", "after_hours", "", "", uniqueid, at),
                StateChanged(call_id, 1, CallState.RECEIVED, CallState.ANNOUNCING, "svc", at),
                StateChanged(call_id, 2, CallState.ANNOUNCING, CallState.DIALING, "svc", at),
            ]
        )
        dials = _dials(config_file)
        _run(config_file, FakeChannel({dials[0]: Ring("ANSWER", key="1")}), uniqueid)
        _import(config_file, db_url)
        spool = _spool(config_file)
        for path in (spool / "imported").iterdir():  # import the same call again
            path.rename(spool / path.name)
        assert [c.was_recorded for c in _import(config_file, db_url)] == [True]
        detail = get_call(engine, call_id)
    finally:
        writer.close()
        engine.dispose()
    assert detail is not None
    moves = [(t.seq, t.from_state, t.to_state) for t in detail.transitions]
    assert moves == [
        (1, "received", "announcing"),
        (2, "announcing", "dialing"),
        (3, "dialing", "dialing"),  # the fallback took over (its reason says why)
        (4, "dialing", "agent_prompt"),
        (5, "agent_prompt", "bridged"),
        (6, "bridged", "ended"),
    ]
    assert detail.transitions[2].reason.startswith("service not connected")


def test_last_resort_record_times_and_trigger(db_url: str, config_file: Path) -> None:
    spool = _spool(config_file)
    spool.mkdir()
    record = {
        "event": "lastresort", "uniqueid": "pbx-1800000000.61", "did": DID,
        "caller_number": "", "call_start": f"{T0:.3f}", "trigger": "watchdog",
        "agi_status": "FAILURE", "target": "PJSIP/+33610000001", "at": f"{T0 + 2.5:.3f}",
        "ended": f"{T0 + 20:.3f}", "dialstatus": "ANSWER", "hangupcause": "16",
        "dialedtime": "17", "answeredtime": "12",
    }  # fmt: skip
    (spool / "pbx-1800000000.61.lastresort.json").write_text(json.dumps(record) + "\n")
    [call] = _import(config_file, db_url)
    engine = create_db_engine(db_url)
    try:
        detail = get_call(engine, call.call_id)
    finally:
        engine.dispose()
    assert detail is not None and detail.outcome == "connected"
    assert detail.started_at.timestamp() == pytest.approx(T0)
    assert detail.hops[0].answered_at is not None
    assert detail.hops[0].answered_at.timestamp() == pytest.approx(T0 + 2.5 + 17 - 12)
    assert detail.transitions[0].reason.startswith(
        "service did not take the call in time (watchdog): dialplan fallback, AGI failed"
    )


def test_an_empty_stale_spool_file_is_recorded_as_lost(db_url: str, config_file: Path) -> None:
    spool = _spool(config_file)
    spool.mkdir()
    (spool / "1800000000.71.jsonl").write_bytes(b"")  # the disk was full from the start
    assert _import(config_file, db_url) == []  # fresh: maybe still ringing
    engine = create_db_engine(db_url)
    writer = AuditWriter(engine)
    try:
        later = load_config(config_file).fallback.stale_after_minutes * 60 + 1
        calls = import_spool(
            spool, writer, spool / "rec", stale_after_s=later - 1, clock=lambda: T0 + 1e9
        )
    finally:
        writer.close()
        engine.dispose()
    assert [(c.outcome, c.detail.startswith("fallback record lost")) for c in calls] == [
        (CallOutcome.FAILED, True)
    ]
