"""AuditWriter guarantees on both backends: order, draining, idempotence, retries."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, select, text

from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table
from astreinte_ari.adapters.store.queries import get_call, list_calls
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow.audit_events import AuditEvent, CallStarted, StateChanged
from astreinte_ari.callflow.outcomes import CallState
from tests.unit.test_store import CALL_ID, T0, at, engine, three_hop_call

__all__ = ["engine"]  # the fixture, shared with test_store.py


# -- writer guarantees ---------------------------------------------------------------


async def test_writer_keeps_emission_order_under_load(engine: Engine) -> None:
    calls, steps = 60, 15
    events: list[AuditEvent] = [
        CallStarted(f"load-{c:03d}", "+331", "L", "night", "", "", "ch", at(c))
        for c in range(calls)
    ]
    # Interleave the calls' transitions as concurrent calls would.
    order = [(f"load-{c:03d}", s) for s in range(1, steps + 1) for c in range(calls)]
    events += [
        StateChanged(cid, s, CallState.DIALING, CallState.DIALING, f"step {s}", at(s))
        for cid, s in order
    ]
    writer = AuditWriter(engine)
    try:
        for i, event in enumerate(events):
            writer.emit(event)
            if i % 97 == 0:
                await asyncio.sleep(0)  # let the worker take partial batches
        await asyncio.wait_for(writer.flush(), 60)
        assert writer.pending == 0
    finally:
        writer.close()
    with engine.connect() as conn:
        rows = conn.execute(
            select(call_transitions_table.c.call_id, call_transitions_table.c.seq).order_by(
                call_transitions_table.c.id
            )
        ).all()
    assert [tuple(r) for r in rows] == order


async def test_flush_with_nothing_pending_and_close_drains(engine: Engine) -> None:
    writer = AuditWriter(engine)
    await asyncio.wait_for(writer.flush(), 5)
    for i in range(20):
        writer.emit(CallStarted(f"drain-{i}", "+331", "L", "night", "", "", "c", at(i)))
    writer.close()  # no flush: close must still write everything
    assert len(list_calls(engine, limit=100)) == 20
    with pytest.raises(RuntimeError):
        writer.emit(CallStarted("late", "+331", "L", "night", "", "", "c", T0))


async def test_replayed_batch_creates_no_duplicates(engine: Engine) -> None:
    writer = AuditWriter(engine)
    try:
        events = three_hop_call()
        writer.write_events(events)
        writer.write_events(events)  # as after a COMMIT whose acknowledgement was lost
    finally:
        writer.close()
    call = get_call(engine, CALL_ID)
    assert call is not None and len(call.hops) == 3 and len(call.transitions) == 5


async def _wait_for_failures(writer: AuditWriter, count: int) -> None:
    for _ in range(200):
        if writer.failed_attempts >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"writer never failed {count} times ({writer.failed_attempts})")


async def test_writer_retries_while_table_is_unavailable(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE calls RENAME TO calls_offline"))
    writer = AuditWriter(engine)
    try:
        for event in three_hop_call():
            writer.emit(event)
        await _wait_for_failures(writer, 3)
        assert writer.pending == len(three_hop_call())
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE calls_offline RENAME TO calls"))
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        writer.close()
    call = get_call(engine, CALL_ID)
    assert call is not None and len(call.hops) == 3 and len(call.transitions) == 5
    assert call.outcome == "accepted"


async def test_writer_retries_while_sqlite_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/locked.db"
    upgrade(url)
    engine = create_db_engine(url, sqlite_busy_timeout=0.05)
    blocker = sqlite3.connect(make_url(url).database or "", isolation_level=None)
    writer = AuditWriter(engine)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        for event in three_hop_call():
            writer.emit(event)
        await _wait_for_failures(writer, 2)
        blocker.execute("COMMIT")
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        writer.close()
        blocker.close()
    with engine.connect() as conn:
        assert conn.scalar(select(calls_table.c.outcome)) == "accepted"
    engine.dispose()


async def test_close_gives_up_on_a_dead_database_and_says_so(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE calls RENAME TO calls_offline"))
    writer = AuditWriter(engine)
    writer.emit(CallStarted("lost", "+331", "L", "night", "", "", "c", T0))
    await _wait_for_failures(writer, 1)
    waiting = asyncio.ensure_future(writer.flush())
    await asyncio.to_thread(writer.close, 0.2)
    with pytest.raises(RuntimeError, match="1 events unwritten"):
        await asyncio.wait_for(waiting, 5)  # a flush() waiting then is woken, not left hanging
    assert writer.pending == 1
    assert "1 events NOT written" in caplog.text and "unwritten audit event" in caplog.text
