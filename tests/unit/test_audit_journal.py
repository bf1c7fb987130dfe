"""The audit journal: no event lost across a database outage or a crash during it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, make_url, select

from astreinte_ari.adapters.store.journal import (
    AuditJournal,
    JournaledAuditWriter,
    event_from_json,
    event_to_json,
)
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.adapters.store.queries import get_call
from astreinte_ari.adapters.store.writer import AuditWriter
from tests.unit.test_store import CALL_ID, T0, engine, three_hop_call

__all__ = ["engine"]


def test_every_event_type_survives_the_journal_format() -> None:
    events = three_hop_call()
    assert {type(e).__name__ for e in events} >= {
        "CallStarted",
        "StateChanged",
        "HopStarted",
        "HopProgress",
        "HopEnded",
        "CallAnswered",
        "CallEnded",
    }
    for event in events:
        assert event_from_json(event_to_json(event)) == event


def test_hostile_caller_text_round_trips_as_plain_ascii_json(tmp_path: Path) -> None:
    from astreinte_ari.callflow.audit_events import CallStarted

    nasty = CallStarted(
        "c", "+331", "L", "night", "\x00'; DROP TABLE calls;--\n", "é\u202e", "ch", T0
    )
    journal = AuditJournal(tmp_path)
    journal.append([nasty])
    assert journal.path.read_bytes().isascii()
    assert journal.read() == [nasty]


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    events = three_hop_call()[:3]
    journal = AuditJournal(tmp_path)
    journal.append(events)
    with open(journal.path, "a", encoding="ascii") as handle:
        handle.write(event_to_json(events[0])[:25])  # crash in the middle of an append
    assert journal.read() == events


async def test_events_written_and_journal_emptied(engine: Engine, tmp_path: Path) -> None:
    writer = JournaledAuditWriter(engine, tmp_path)
    for event in three_hop_call():
        writer.emit(event)
    await asyncio.wait_for(writer.flush(), 30)
    writer.close()
    detail = get_call(engine, CALL_ID)
    assert detail is not None and detail.outcome == "accepted"
    assert (tmp_path / "audit-journal.jsonl").stat().st_size == 0


def _sqlite_path(engine: Engine) -> str:
    database = make_url(str(engine.url)).database
    assert database
    return database


async def test_outage_then_crash_then_replay_loses_nothing(tmp_path: Path) -> None:
    """Database locked (outage) -> events only in the journal -> process dies ->
    next start replays them once, in order: every row, no duplicate."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    engine = create_db_engine(url, sqlite_busy_timeout=0.05)
    blocker = sqlite3.connect(_sqlite_path(engine))
    blocker.execute("BEGIN EXCLUSIVE")  # the outage: every write fails
    events = three_hop_call()
    writer = JournaledAuditWriter(engine, tmp_path / "journal")
    for event in events:
        writer.emit(event)
    await asyncio.sleep(1.0)
    assert writer.pending == len(events)
    writer.close(timeout=0.5)  # the "crash": the database never came back
    journaled = AuditJournal(tmp_path / "journal").read()
    assert journaled == events
    blocker.rollback()
    blocker.close()
    # Part of it reached the database before the crash (commit acknowledged too late):
    # replaying the whole journal must not duplicate it.
    partial = AuditWriter(engine)
    for event in events[:6]:
        partial.emit(event)
    await asyncio.wait_for(partial.flush(), 30)
    partial.close()
    first = JournaledAuditWriter(engine, tmp_path / "journal")
    await asyncio.wait_for(first.flush(), 30)
    first.close()
    again = JournaledAuditWriter(engine, tmp_path / "journal")  # nothing left to replay
    assert again.replayed == 0
    again.close()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(calls_table)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(hops_table)).scalar() == 3
        transitions = conn.execute(
            select(func.count()).select_from(call_transitions_table)
        ).scalar()
    assert transitions == sum(1 for e in events if type(e).__name__ == "StateChanged")
    detail = get_call(engine, CALL_ID)
    assert detail is not None and [h.outcome for h in detail.hops] == [
        "busy",
        "no_answer",
        "accepted",
    ]
    engine.dispose()


async def test_database_back_during_run_drains_journal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    upgrade(url)
    engine = create_db_engine(url, sqlite_busy_timeout=0.05)
    blocker = sqlite3.connect(_sqlite_path(engine))
    blocker.execute("BEGIN EXCLUSIVE")
    writer = JournaledAuditWriter(engine, tmp_path / "journal")
    for event in three_hop_call():
        writer.emit(event)
    await asyncio.sleep(0.5)
    assert writer.journal.size() > 0
    blocker.rollback()
    blocker.close()
    await asyncio.wait_for(writer.flush(), 30)
    await asyncio.sleep(1.5)  # idle: the journal is compacted
    assert writer.journal.size() == 0
    writer.close()
    assert get_call(engine, CALL_ID) is not None
    engine.dispose()


@pytest.mark.parametrize("count", [1, 250])
def test_journal_appends_in_order(tmp_path: Path, count: int) -> None:
    events = three_hop_call() * (count // len(three_hop_call()) + 1)
    journal = AuditJournal(tmp_path)
    for start in range(0, len(events), 7):
        journal.append(events[start : start + 7])
    assert journal.read() == events
