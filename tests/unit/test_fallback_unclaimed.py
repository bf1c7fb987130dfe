"""Calls no service took: the dialplan's `<key>.unclaimed.json` record (h extension of
[astreinte-inbound]) becomes the call's trail - once, with the line's name, and never
a second ending for a call the service had started and already closed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from astreinte_ari.adapters.fallback.unclaimed import UNKNOWN_LINE, unclaimed_events
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import CallDetail, get_call
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import CallEnded, CallStarted, StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from tests.unit.fallback_helpers import DID, T0, _config, _import

KEY = "pbx-1800000000.91"


def _stamp(epoch: float) -> str:
    """As the dialplan writes times: STRFTIME(,UTC,%Y%m%dT%H%M%S.%3q)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3]


def _record(**changes: str) -> dict[str, str]:
    record = {
        "event": "unclaimed", "uniqueid": KEY, "did": DID, "caller_number": "+33199000091",
        "channel": "PJSIP/operator-00000012", "call_start": _stamp(T0),
        "ended": _stamp(T0 + 2.25), "stasisstatus": "", "hangupcause": "16",
    }  # fmt: skip
    return record | changes


@pytest.mark.parametrize(
    ("changes", "started", "ended", "detail"),
    [
        ({}, T0, T0 + 2.25, "caller hung up after 2.2 s (Normal Clearing), before any service"),
        ({"hangupcause": ""}, T0, T0 + 2.25, "caller hung up after 2.2 s, before any service"),
        ({"hangupcause": "0"}, T0, T0 + 2.25, "caller hung up after 2.2 s, before any service"),
        # No arrival stamp (an older dialplan): the call starts when it ended.
        ({"call_start": ""}, T0 + 2.25, T0 + 2.25, "caller hung up after 0.0 s"),
        # Nothing usable at all: the file's time stands in.
        ({"call_start": "x", "ended": "rm -rf /"}, T0 + 60, T0 + 60, "caller hung up after 0.0"),
        # A clock step back between arrival and hang-up never gives a negative wait.
        ({"call_start": _stamp(T0 + 9)}, T0 + 2.25, T0 + 2.25, "caller hung up after 0.0 s"),
    ],
)
def test_unclaimed_record_to_events(
    changes: dict[str, str], started: float, ended: float, detail: str
) -> None:
    events, summary = unclaimed_events(
        KEY, _record(**changes), found_at=T0 + 60, line_name={DID: "Astreinte"}.get
    )
    call_id = call_id_for_channel(KEY)
    assert [type(e) for e in events] == [CallStarted, StateChanged, CallEnded]
    start, change, end = events
    assert isinstance(start, CallStarted) and start.call_id == call_id
    assert (start.did, start.line_name, start.caller_number) == (DID, "Astreinte", "+33199000091")
    assert start.at.timestamp() == pytest.approx(started)
    assert isinstance(change, StateChanged)
    assert (change.seq, change.from_state, change.to_state) == (
        1,
        CallState.RECEIVED,
        CallState.ENDED,
    )
    assert isinstance(end, CallEnded) and end.outcome is CallOutcome.ABANDONED
    assert end.at.timestamp() == pytest.approx(ended)
    assert end.detail.startswith(detail), end.detail
    assert summary["trigger"] == "unclaimed" and summary["last_state"] is CallState.RECEIVED


def test_an_unknown_did_is_named_so_not_guessed() -> None:
    events, summary = unclaimed_events(KEY, _record(did="+33999"), found_at=T0)
    start = events[0]
    assert isinstance(start, CallStarted) and start.line_name == UNKNOWN_LINE
    assert summary["line_name"] == ""


def _write(spool: Path, record: dict[str, str]) -> None:
    spool.mkdir(exist_ok=True)
    (spool / f"{KEY}.unclaimed.json").write_text(json.dumps(record) + "\n")


def _stored(db_url: str, call_id: str) -> CallDetail:
    engine = create_db_engine(db_url)
    try:
        detail = get_call(engine, call_id)
    finally:
        engine.dispose()
    assert detail is not None
    return detail


def _audit_rows(db_url: str) -> int:
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())
    finally:
        engine.dispose()


def test_import_records_the_call_once_under_its_line(db_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    config_file = _config(tmp_path, spool)
    _write(spool, _record())
    [call] = _import(config_file, db_url)
    assert (call.call_id, call.outcome, call.trigger) == (
        call_id_for_channel(KEY),
        CallOutcome.ABANDONED,
        "unclaimed",
    )
    assert not call.was_recorded
    assert (spool / "imported" / f"{KEY}.unclaimed.json").exists()
    detail = _stored(db_url, call.call_id)
    assert detail.outcome == "abandoned"
    assert detail.line_name != UNKNOWN_LINE and detail.caller_number == "+33199000091"
    assert [(t.from_state, t.to_state) for t in detail.transitions] == [("received", "ended")]
    assert detail.ended_at is not None
    assert (detail.ended_at - detail.started_at).total_seconds() == pytest.approx(2.25, abs=0.01)
    before = _audit_rows(db_url)
    _write(spool, _record())  # the same file again (moved back by hand): nothing twice
    [again] = _import(config_file, db_url)
    assert again.was_recorded and _audit_rows(db_url) == before


def _service_started(db_url: str, *, ended: bool) -> None:
    """The service journalled the call's start, then died before disarming the
    watchdog; `ended`: the reconciliation closed it from the PBX's records since."""
    engine = create_db_engine(db_url)
    writer = AuditWriter(engine)
    call_id = call_id_for_channel(KEY)
    at = datetime.fromtimestamp(T0, UTC)
    events: list[CallStarted | StateChanged | CallEnded] = [
        CallStarted(call_id, DID, "Astreinte", "night", "+33199000091", "", KEY, at)
    ]
    if ended:
        gone = datetime.fromtimestamp(T0 + 2.3, UTC)
        events += [
            StateChanged(call_id, 1, CallState.RECEIVED, CallState.ENDED, "gone", gone),
            CallEnded(
                call_id, CallOutcome.ABANDONED, gone, "caller left while the service was away"
            ),
        ]
    try:
        writer.write_events(events)
    finally:
        writer.close()
        engine.dispose()


@pytest.mark.parametrize("ended", [False, True])
def test_a_call_the_service_had_started_is_completed_or_left_alone(
    db_url: str, tmp_path: Path, ended: bool
) -> None:
    spool = tmp_path / "spool"
    config_file = _config(tmp_path, spool)
    _service_started(db_url, ended=ended)
    before = _audit_rows(db_url)
    _write(spool, _record())
    [call] = _import(config_file, db_url)
    assert call.was_recorded is ended
    detail = _stored(db_url, call.call_id)
    assert detail.outcome == "abandoned"
    assert [(t.seq, t.to_state) for t in detail.transitions] == [(1, "ended")]
    assert detail.period == "night"  # the service's own start stays
    if ended:
        assert _audit_rows(db_url) == before
        assert detail.outcome_detail == "caller left while the service was away"
    else:
        assert _audit_rows(db_url) == before + 2  # its transition and its end
        assert detail.outcome_detail.startswith("caller hung up after 2.2 s")
