"""A write-ahead journal for audit events: nothing is lost while the database is down.

Every emitted event is appended to a local file and fsync'd (by a dedicated
thread, so the event loop never waits on the disk) before it is handed to
the database writer. When the database has committed everything journaled,
the file is truncated. On start, whatever the file still holds is replayed
first, in order; replay is safe because the writer's inserts are idempotent.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import queue
import threading
import typing
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.callflow import audit_events
from astreinte_ari.callflow.audit_events import AuditEvent

log = logging.getLogger(__name__)

_EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls for cls in typing.get_args(audit_events.AuditEvent)
}
_COMPACT_EVERY_S = 1.0


def event_to_json(event: AuditEvent) -> str:
    data: dict[str, Any] = {}
    for field in fields(event):  # type: ignore[arg-type]
        value = getattr(event, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, enum.Enum):
            value = value.value
        data[field.name] = value
    return json.dumps({"type": type(event).__name__, "fields": data}, ensure_ascii=True)


def event_from_json(line: str) -> AuditEvent:
    record = json.loads(line)
    cls = _EVENT_TYPES[record["type"]]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in record["fields"].items():
        kwargs[name] = _coerce(hints[name], value)
    return cls(**kwargs)  # type: ignore[no-any-return]


def _coerce(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    for candidate in typing.get_args(hint) or (hint,):
        if candidate is datetime:
            return datetime.fromisoformat(value)
        if isinstance(candidate, type) and issubclass(candidate, enum.Enum):
            return candidate(value)
    return value


class AuditJournal:
    """The file itself: append + fsync, read back, truncate."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "audit-journal.jsonl"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)

    def read(self) -> list[AuditEvent]:
        events: list[AuditEvent] = []
        with open(self.path, encoding="ascii", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith("\n"):
                    log.warning("journal %s: torn last line %d ignored", self.path, number)
                    break  # a crash during the last append: that event was never handed over
                try:
                    events.append(event_from_json(line))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("journal %s line %d unreadable, skipped: %s", self.path, number, exc)
        return events

    def append(self, events: list[AuditEvent]) -> None:
        data = "".join(event_to_json(e) + "\n" for e in events).encode("ascii")
        os.write(self._fd, data)
        os.fsync(self._fd)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def truncate(self) -> None:
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


class JournaledAuditWriter:
    """AuditWriter behind a write-ahead journal; same emit/flush/close interface."""

    def __init__(self, engine: Engine, journal_dir: Path, *, node: str | None = None) -> None:
        self.journal = AuditJournal(journal_dir)
        self._writer = AuditWriter(engine, node=node)
        replay = self.journal.read()
        # What the previous process journalled: the only record of its last calls while
        # the database is down (restart recovery reads it); dropped once all is written.
        self.replayed_events: list[AuditEvent] = replay
        if replay:
            log.warning("replaying %d audit event(s) journaled before a stop", len(replay))
            for event in replay:  # first, and in order
                self._writer.emit(event)
        self._inbox: queue.SimpleQueue[AuditEvent | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepted = 0
        self._handed = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-journal", daemon=True)
        self._thread.start()

    @property
    def replayed(self) -> int:
        return self._writer.pending

    @property
    def pending(self) -> int:
        """Events not yet committed to the database (journaled or not)."""
        with self._lock:
            unjournaled = self._accepted - self._handed
        return unjournaled + self._writer.pending

    def emit(self, event: AuditEvent) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("audit writer is closed")
            self._accepted += 1
        self._inbox.put(event)

    def write_events(self, events: list[AuditEvent]) -> None:
        """Direct, synchronous write (imports from other spools; call from a thread)."""
        self._writer.write_events(events)

    async def flush(self) -> None:
        while True:
            with self._lock:
                caught_up = self._handed >= self._accepted
            if caught_up:
                break
            await asyncio.sleep(0.01)
        await self._writer.flush()

    def close(self, timeout: float = 10) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._inbox.put(None)
        self._thread.join(timeout)
        self._writer.close(timeout)
        if self._writer.pending == 0:
            self.journal.truncate()
        else:
            log.error(
                "%d audit event(s) stay in %s for the next start",
                self._writer.pending,
                self.journal.path,
            )
        self.journal.close()

    def _run(self) -> None:
        while True:
            try:
                first = self._inbox.get(timeout=_COMPACT_EVERY_S)
            except queue.Empty:
                self._compact()
                continue
            batch: list[AuditEvent] = []
            stop = first is None
            if first is not None:
                batch.append(first)
            while not stop:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            if batch:
                self._compact()  # before appending: under steady load the file stays short
                self._journal_and_hand_over(batch)
            if stop:
                return

    def _journal_and_hand_over(self, batch: list[AuditEvent]) -> None:
        try:
            self.journal.append(batch)
        except OSError:
            # Disk full or failing: keep going in memory rather than stall calls.
            log.exception("audit journal append failed; events kept in memory only")
        for event in batch:
            self._writer.emit(event)
        with self._lock:
            self._handed += len(batch)

    def _compact(self) -> None:
        # Only this thread appends, so nothing can slip in between check and truncate.
        if self._writer.pending == 0 and self.journal.size() > 0:
            self.journal.truncate()
            self.replayed_events = []
