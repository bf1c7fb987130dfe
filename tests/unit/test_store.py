"""Audit trail store: migrations, writer, queries, the same assertions on SQLite and PostgreSQL.

`db_url` / `blank_db_url` (tests/rig/db_fixtures.py) run every test once per backend.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, make_url

from astreinte_ari.adapters.store.migrate import (
    SCHEMA_HEAD,
    DatabaseNotMigrated,
    create_db_engine,
    current_revision,
    ensure_migrated,
    head_revision,
    mask_url,
    normalize_url,
    upgrade,
)
from astreinte_ari.adapters.store.models import metadata
from astreinte_ari.adapters.store.queries import AmbiguousCallIdError, get_call, list_calls
from astreinte_ari.adapters.store.safe_text import unescape, unescape_bytes
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopProgress,
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome

T0 = datetime(2026, 3, 1, 22, 15, 0, tzinfo=UTC)
CALL_ID = "5f1c2d3e-0000-4000-8000-00000000c0de"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def three_hop_call(call_id: str = CALL_ID, start: datetime = T0) -> list[AuditEvent]:
    """Busy primary, no answer from the backup, the supervisor accepts on a desk phone.
    The backup's hop is recorded without its target, as before migration 0009."""
    s = (start - T0).total_seconds()
    h = [f"{call_id[:8]}-hop-{i}" for i in (1, 2, 3)]
    st = CallState
    return [
        CallStarted(call_id, "+33180000000", "Maintenance", "after_hours",
                    "+33612345678", "ACME Corp", "chan-1", at(s)),
        StateChanged(call_id, 1, st.RECEIVED, st.ANNOUNCING, "after hours", at(s + 0.5)),
        StateChanged(call_id, 2, st.ANNOUNCING, st.DIALING, "announcement done", at(s + 6)),
        HopStarted(call_id, h[0], 1, "primary", "alice", "Alice Martin", "+33611111111", at(s + 6),
                   "trunk", "PJSIP/+33611111111@operator"),
        HopEnded(h[0], HopOutcome.BUSY, at(s + 7), 17, "User busy"),
        HopStarted(call_id, h[1], 2, "secondary", "bob", "Bob Durand", "+33622222222", at(s + 7)),
        HopProgress(h[1], "ringing", at(s + 8)),
        HopEnded(h[1], HopOutcome.NO_ANSWER, at(s + 33), 0, "Normal, unspecified"),
        HopStarted(call_id, h[2], 3, "supervisor", "sup", "Sam Chef", "sip:desk-301", at(s + 33),
                   "sip", "PJSIP/desk-301"),
        HopProgress(h[2], "ringing", at(s + 34)),
        HopProgress(h[2], "answered", at(s + 40)),
        StateChanged(call_id, 3, st.DIALING, st.AGENT_PROMPT, "agent answered", at(s + 40)),
        HopProgress(h[2], "accepted", at(s + 44)),
        HopEnded(h[2], HopOutcome.ACCEPTED, at(s + 44), None, None, "1"),
        CallAnswered(call_id, h[2], "sup", at(s + 44)),
        StateChanged(call_id, 4, st.AGENT_PROMPT, st.BRIDGED, "accepted", at(s + 44)),
        StateChanged(call_id, 5, st.BRIDGED, st.ENDED, "caller hung up", at(s + 109.5)),
        CallEnded(call_id, CallOutcome.ACCEPTED, at(s + 109.5), "accepted by sup (hop 3)", 65.5),
    ]  # fmt: skip


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_db_engine(db_url)
    yield eng
    eng.dispose()


async def write_all(engine: Engine, events: list[AuditEvent]) -> None:
    writer = AuditWriter(engine)
    try:
        for event in events:
            writer.emit(event)
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        writer.close()


# -- migrations ------------------------------------------------------------------


def test_schema_head_constant_is_alembics_head() -> None:
    # The service checks the schema against SCHEMA_HEAD without Alembic: a new
    # migration must bump it, or the service would refuse every migrated database.
    assert head_revision() == SCHEMA_HEAD


def test_service_path_does_not_import_alembic() -> None:
    code = (
        "import sys, astreinte_ari.app.compose, astreinte_ari.cli.run_cmd; "
        "sys.exit(1 if 'alembic' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_service_path_does_not_import_the_orm() -> None:
    # Tables are plain Core: sqlalchemy.orm would cost the service ~5.6 MB of RSS.
    code = (
        "import sys, astreinte_ari.app.compose, astreinte_ari.cli.run_cmd; "
        "sys.exit(1 if 'sqlalchemy.orm' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_migrations_apply_and_are_idempotent(blank_db_url: str) -> None:
    head = head_revision()
    assert upgrade(blank_db_url) == head
    assert upgrade(blank_db_url) == head
    eng = create_db_engine(blank_db_url)
    try:
        assert current_revision(eng) == head
        ensure_migrated(eng)
        tables = set(inspect(eng).get_table_names())
        assert {"calls", "hops", "call_transitions", "alembic_version"} <= tables
        indexed = {tuple(ix["column_names"]) for ix in inspect(eng).get_indexes("calls")}
        report = ("started_at", "outcome", "answered_at", "talk_seconds", "id")
        assert {report, ("did", "started_at"), ("outcome", "started_at")} <= indexed
    finally:
        eng.dispose()


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_unmigrated_database_is_refused_with_the_fix(blank_db_url: str) -> None:
    url = make_url(blank_db_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password="s3cret-pw")  # trust auth ignores it; must never be shown
    eng = create_db_engine(url)
    try:
        with pytest.raises(DatabaseNotMigrated) as info:
            ensure_migrated(eng, config_path="/etc/astreinte/astreinte.yaml")
    finally:
        eng.dispose()
    message = str(info.value)
    assert "never migrated" in message
    assert f"needs revision {head_revision()}" in message
    assert "astreinte db upgrade -c /etc/astreinte/astreinte.yaml" in message
    assert "s3cret-pw" not in message


def test_url_helpers() -> None:
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    masked = mask_url("postgresql://user:hunter2@db.example:5432/astreinte")
    assert "hunter2" not in masked and "user" in masked


# -- writer + queries: the full story ----------------------------------------------


async def test_three_hop_call_round_trip(engine: Engine) -> None:
    await write_all(engine, three_hop_call())
    call = get_call(engine, CALL_ID)
    assert call is not None
    assert (call.id, call.did, call.line_name, call.period) == (
        CALL_ID, "+33180000000", "Maintenance", "after_hours",
    )  # fmt: skip
    assert (call.caller_number, call.caller_name, call.channel_id) == (
        "+33612345678", "ACME Corp", "chan-1",
    )  # fmt: skip
    assert call.started_at == T0 and call.started_at.tzinfo is not None
    assert call.started_at.utcoffset() == timedelta(0)
    assert call.answered_at == at(44)
    assert call.ended_at == at(109.5)
    assert (call.outcome, call.outcome_detail) == ("accepted", "accepted by sup (hop 3)")
    assert (call.accepted_hop_id, call.accepted_person_id) == ("5f1c2d3e-hop-3", "sup")
    assert call.talk_seconds == 65.5
    assert call.wait_seconds == 44.0
    assert (call.voicemail_path, call.voicemail_seconds) == (None, None)

    hops = [
        (h.seq, h.label, h.person_id, h.person_name, h.number, h.outcome, h.cause_code,
         h.cause_text, h.dtmf)
        for h in call.hops
    ]  # fmt: skip
    assert hops == [
        (1, "primary", "alice", "Alice Martin", "+33611111111", "busy", 17, "User busy", None),
        (2, "secondary", "bob", "Bob Durand", "+33622222222", "no_answer", 0,
         "Normal, unspecified", None),
        (3, "supervisor", "sup", "Sam Chef", "sip:desk-301", "accepted", None, None, "1"),
    ]  # fmt: skip
    assert [(h.target_kind, h.target) for h in call.hops] == [
        ("trunk", "PJSIP/+33611111111@operator"),
        (None, None),  # recorded without them (before 0009)
        ("sip", "PJSIP/desk-301"),
    ]
    times = [
        (h.started_at, h.ringing_at, h.answered_at, h.accepted_at, h.ended_at) for h in call.hops
    ]
    assert times == [
        (at(6), None, None, None, at(7)),
        (at(7), at(8), None, None, at(33)),
        (at(33), at(34), at(40), at(44), at(44)),
    ]
    assert [(t.seq, t.from_state, t.to_state, t.reason, t.at) for t in call.transitions] == [
        (1, "received", "announcing", "after hours", at(0.5)),
        (2, "announcing", "dialing", "announcement done", at(6)),
        (3, "dialing", "agent_prompt", "agent answered", at(40)),
        (4, "agent_prompt", "bridged", "accepted", at(44)),
        (5, "bridged", "ended", "caller hung up", at(109.5)),
    ]

    summaries = list_calls(engine)
    assert len(summaries) == 1
    s = summaries[0]
    assert (s.id, s.did, s.caller_number, s.outcome, s.hop_count) == (
        CALL_ID, "+33180000000", "+33612345678", "accepted", 3,
    )  # fmt: skip
    assert (s.wait_seconds, s.talk_seconds, s.started_at) == (44.0, 65.5, T0)

    data = call.to_json_dict()
    assert data["started_at"] == "2026-03-01T22:15:00+00:00"
    assert data["hops"][2]["dtmf"] == "1" and len(data["transitions"]) == 5
    assert s.to_json_dict()["hop_count"] == 3


async def test_non_utc_input_times_are_stored_as_utc(engine: Engine) -> None:
    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    await write_all(engine, [CallStarted("c-tz", "+331", "L", "night", "", "", "ch", paris)])
    call = get_call(engine, "c-tz")
    assert (
        call is not None and call.started_at == T0 and call.started_at.utcoffset() == timedelta(0)
    )


async def test_list_calls_filters_and_order(engine: Engine) -> None:
    events: list[AuditEvent] = []
    for i in range(5):
        cid = f"call-{i}"
        did = "+33180000000" if i % 2 == 0 else "+33180000099"
        events.append(CallStarted(cid, did, "L", "night", f"+3360000000{i}", "", "ch", at(i * 60)))
        outcome = CallOutcome.VOICEMAIL if i == 3 else CallOutcome.ABANDONED
        events.append(CallEnded(cid, outcome, at(i * 60 + 30), "d"))
    await write_all(engine, events)
    assert [c.id for c in list_calls(engine)] == ["call-4", "call-3", "call-2", "call-1", "call-0"]
    assert [c.id for c in list_calls(engine, did="+33180000099")] == ["call-3", "call-1"]
    assert [c.id for c in list_calls(engine, outcome="voicemail")] == ["call-3"]
    assert [c.id for c in list_calls(engine, since=at(60), until=at(180))] == ["call-2", "call-1"]
    assert [c.id for c in list_calls(engine, limit=2, offset=1)] == ["call-3", "call-2"]
    assert all(c.hop_count == 0 for c in list_calls(engine))


async def test_get_call_by_prefix(engine: Engine) -> None:
    await write_all(engine, three_hop_call("abc-1") + three_hop_call("abd-1", at(500)))
    call = get_call(engine, "abc")
    assert call is not None and call.id == "abc-1"
    assert get_call(engine, "zzz") is None
    assert get_call(engine, "%") is None  # LIKE wildcards are literal
    with pytest.raises(AmbiguousCallIdError, match="abc-1, abd-1"):
        get_call(engine, "ab")


# -- hostile caller data -----------------------------------------------------------

NASTY_BYTES = b"\xff\xfe+33\x00\xc3"


async def test_hostile_caller_ids_are_stored_safely(engine: Engine) -> None:
    long_name = "N" * 500
    events: list[AuditEvent] = [
        CallStarted("nul", "+331", "L", "night", "+336\x0012\x00", "Evil\x00Name\x1b[2J", "c", T0),
        CallStarted("long", "+331", "L", "night", "+33" + "9" * 497, long_name, "c", at(1)),
        CallStarted("sql", "+331", "L", "night", "'; DROP TABLE calls; --", "Robert'); --", "c",
                    at(2)),
        CallStarted("bytes", "+331", "L", "night", NASTY_BYTES, "caf\xe9", "c", at(3)),  # type: ignore[arg-type]
        CallStarted("surrogate", "+331", "L", "night",
                    NASTY_BYTES.decode("utf-8", "surrogateescape"), "", "c", at(4)),
        HopStarted("nul", "h-nul", 1, "p", "a", "A", "+336", at(5)),
        HopEnded("h-nul", HopOutcome.DECLINED, at(6), dtmf="9\x00#\n*"),
        StateChanged("nul", 1, CallState.RECEIVED, CallState.ENDED, "reason\x00with NUL", at(7)),
    ]  # fmt: skip
    await write_all(engine, events)

    nul = get_call(engine, "nul")
    assert nul is not None
    assert nul.caller_number == "+336\\x0012\\x00"
    assert unescape(nul.caller_name) == "Evil\x00Name\x1b[2J"
    assert nul.hops[0].dtmf == "9\\x00#\\n*"
    assert nul.transitions[0].reason == "reason\\x00with NUL"

    long = get_call(engine, "long")
    assert long is not None
    assert len(long.caller_number) <= 256 and long.caller_number == "+33" + "9" * 246 + "…[+251]"
    assert long.caller_name == "N" * 249 + "…[+251]"

    sql = get_call(engine, "sql")
    assert sql is not None and sql.caller_number == "'; DROP TABLE calls; --"
    assert sql.caller_name == "Robert'); --"
    assert len(list_calls(engine)) == 5  # the table is still there

    for cid in ("bytes", "surrogate"):
        call = get_call(engine, cid)
        assert call is not None
        assert call.caller_number == "\\xff\\xfe+33\\x00\\xc3"
        assert unescape_bytes(call.caller_number) == NASTY_BYTES
    bytes_call = get_call(engine, "bytes")
    assert bytes_call is not None and bytes_call.caller_name == "caf\xe9"
