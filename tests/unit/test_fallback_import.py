"""Fallback spool import (idempotent, completes service-started records, last resort),
the AGI's plan cache, and the spool watcher - real directories, real databases."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from astreinte_ari.adapters.fallback.importer import import_spool
from astreinte_ari.adapters.fallback.plancache import (
    CACHE_NAME,
    build_plan_cache,
    plan_from_json,
    refresh_plan_cache,
)
from astreinte_ari.adapters.fallback.records import ImportedCall
from astreinte_ari.adapters.fallback.watcher import watch_fallback_spool
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.adapters.store.queries import get_call, list_calls
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import CallStarted, StateChanged
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.config.loader import load_config
from astreinte_ari.routing.router import build_plan
from tests.unit.fallback_helpers import (
    DID,
    HOSTILE,
    T0,
    FakeChannel,
    Ring,
    _config,
    _dials,
    _import,
    _run,
    _steps,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return _config(tmp_path, tmp_path / "spool")


def _spool(config_file: Path) -> Path:
    return config_file.parent.parent / "spool"


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


# -- the plan cache ---------------------------------------------------------------------


def test_plan_cache_matches_the_yaml_across_a_handoff(config_file: Path) -> None:
    # The demo rota with two people, so that the handoff changes who is rung.
    text = config_file.read_text()
    config_file.write_text(text.replace("people: [alice]}", "people: [alice, bob]}"))
    config = load_config(config_file)
    # Sun 2027-01-17 12:00 Paris: the weekly handoff (mon 09:00) is 21 h ahead.
    start = datetime(2027, 1, 17, 11, 0, 30, tzinfo=UTC)
    cache = build_plan_cache(config, start)
    segments = cache["lines"][DID]
    assert (
        len(segments) == 2 and segments[0][1] == datetime(2027, 1, 18, 8, 0, tzinfo=UTC).timestamp()
    )
    probe = datetime(2027, 1, 17, 11, 0, tzinfo=UTC)
    while probe < start + timedelta(hours=35):
        t = probe.timestamp()
        [index] = [i for a, b, i in segments if a <= t < b]
        assert plan_from_json(cache["plans"][index]) == build_plan(config, DID, probe)
        probe += timedelta(minutes=7, seconds=13)


def test_agi_uses_the_cache_only_for_the_yaml_it_came_from(config_file: Path) -> None:
    spool = _spool(config_file)
    refresh_plan_cache(load_config(config_file), datetime.fromtimestamp(T0 - 60, UTC))

    def source(uniqueid: str) -> str:
        _run(config_file, FakeChannel({}), uniqueid, cache_dir=str(spool))
        return str(_steps(spool / f"{uniqueid}.jsonl")[0]["plan_source"])

    assert source("1800000000.81") == "cache"
    config_file.write_text(config_file.read_text() + "# edited\n")
    assert source("1800000000.82") == "yaml"  # and the AGI rewrote the cache after the call
    assert source("1800000000.83") == "cache"
    config_file.write_text(config_file.read_text() + "lines: [broken\n")
    assert source("1800000000.84") == "cache-last-good"
    (spool / CACHE_NAME).unlink()
    with pytest.raises(Exception, match=r"the \[ opened on this line is not closed"):
        _run(config_file, FakeChannel({}), "1800000000.85", cache_dir=str(spool))


def test_agi_fast_path_does_not_import_the_configuration_model() -> None:
    code = (
        "import sys; import astreinte_ari.adapters.fallback.agi; "
        "print(sorted(m for m in ('pydantic', 'yaml', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the watcher ---------------------------------------------------------------------------


class _Watched:
    """watch_fallback_spool over a real spool and a real SQLite database."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.config_file = _config(tmp_path, tmp_path / "spool")
        self.spool = tmp_path / "spool"
        self.engine = create_db_engine(db_url)
        self.writer = AuditWriter(self.engine)
        self.calls: list[ImportedCall] = []
        self.stop = asyncio.Event()

    def import_once(self) -> list[ImportedCall]:
        from astreinte_ari.adapters.fallback.importer import import_fallback_spool

        return import_fallback_spool(load_config(self.config_file), self.writer, self.engine)

    def start(self, **options: float) -> asyncio.Task[None]:
        return asyncio.create_task(
            watch_fallback_spool(
                lambda: self.spool, self.import_once, self.calls.append, stop=self.stop, **options
            )
        )

    async def until(self, condition: object, timeout: float = 5.0) -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not condition():  # type: ignore[operator]
            assert loop.time() - start < timeout, "condition not met in time"
            await asyncio.sleep(0.02)
        return loop.time() - start

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    return url


def _write(spool: Path, key: str, steps: list[dict[str, object]]) -> None:
    spool.mkdir(exist_ok=True)
    with open(spool / f"{key}.jsonl", "a") as fh:
        fh.writelines(json.dumps(s) + "\n" for s in steps)


_RINGING = [
    {"event": "call", "at": T0, "arrived": T0 - 0.2, "did": DID, "line_name": "Demo"},
    {"event": "hop", "at": T0 + 0.1, "seq": 1, "person_id": "alice", "label": "primary"},
]
_ENDED = [
    {"event": "hop_end", "at": T0 + 6, "seq": 1, "dialstatus": "NOANSWER", "outcome": "no_answer"},
    {"event": "end", "at": T0 + 6.5, "outcome": "no_one", "detail": "nobody answered"},
]


async def test_watcher_imports_a_call_within_two_seconds_of_its_end(
    tmp_path: Path, sqlite_url: str
) -> None:
    w = _Watched(tmp_path, sqlite_url)
    task = w.start(interval_s=0.2)
    try:
        _write(w.spool, "1800000000.91", _RINGING)
        await asyncio.sleep(1.0)  # several polls: a ringing call is left alone
        assert w.calls == [] and (w.spool / "1800000000.91.jsonl").exists()
        _write(w.spool, "1800000000.91", _ENDED)
        took = await w.until(lambda: w.calls)
        assert took < 2.0
        [call] = w.calls
        assert (call.outcome, call.last_state) == (CallOutcome.NO_ONE, CallState.DIALING)
        assert call.started_at.timestamp() == pytest.approx(T0 - 0.2)
        assert call.person_ids == ("alice",) and call.did == DID
        assert not list(w.spool.glob("*.jsonl"))
    finally:
        w.stop.set()
        await task
        w.close()


async def test_watcher_keeps_files_while_the_database_is_down(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "audit.db"
    w = _Watched(tmp_path, sqlite_url)
    caplog.set_level(logging.INFO, logger="astreinte_ari.adapters.fallback.watcher")
    db.rename(tmp_path / "audit.db.away")
    db.mkdir()  # SQLite cannot open a directory: the database is "down"
    w.engine.dispose()
    task = w.start(interval_s=0.05)
    try:
        _write(w.spool, "1800000000.92", _RINGING + _ENDED)
        await asyncio.sleep(2.5)  # polls and retries (backoff 2 s)
        assert w.calls == [] and (w.spool / "1800000000.92.jsonl").exists()
        db.rmdir()
        (tmp_path / "audit.db.away").rename(db)
        await w.until(lambda: w.calls, timeout=10)
    finally:
        w.stop.set()
        await task
        w.close()
    messages = [r.getMessage() for r in caplog.records if r.name.endswith("watcher")]
    assert sum("fallback import failed" in m for m in messages) == 1, messages
    assert any("works again" in m for m in messages), messages
    assert [c.outcome for c in w.calls] == [CallOutcome.NO_ONE]


async def test_watcher_hands_a_call_over_once_even_if_its_files_cannot_move(
    tmp_path: Path, sqlite_url: str
) -> None:
    w = _Watched(tmp_path, sqlite_url)
    _write(w.spool, "1800000000.93", _RINGING + _ENDED)
    (w.spool / "imported").write_text("")  # a file where the imported/ folder goes
    task = w.start(interval_s=0.05, recheck_s=0.1)
    try:
        await w.until(lambda: w.calls)
        await asyncio.sleep(0.5)  # re-imported (no-op) several times meanwhile
    finally:
        w.stop.set()
        await task
        w.close()
    assert len(w.calls) == 1 and (w.spool / "1800000000.93.jsonl").exists()
    shutil.rmtree(w.spool)
