"""Write audit events to the database, in order, off the event loop.

One background thread owns all writes: the call flow calls `emit()` from the
asyncio loop (never blocks on the database), and events reach the database in
exactly the order they were emitted. A database error never drops an event:
the batch is retried with capped exponential backoff until it commits.

Writes are idempotent (each event's audit record has a dedup key, and inserts
check for the row first: audit_apply.py), so a batch that did commit but whose
acknowledgement was lost (connection cut during COMMIT) can be replayed without
creating duplicates or failing forever. Every event also appends its
hash-chained record to `audit_log` in the same transaction (see audit_log.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from astreinte_ari.adapters.store.audit_apply import LONG_TEXT, apply_event, dedup_key
from astreinte_ari.adapters.store.safe_text import safe_text
from astreinte_ari.callflow.audit_events import AuditEvent

# LONG_TEXT and dedup_key: importable from here as before the split (audit_apply.py).
__all__ = ["LONG_TEXT", "AuditWriter", "dedup_key"]

log = logging.getLogger(__name__)

BACKOFF_MIN = 0.1
BACKOFF_MAX = 5.0
MAX_BATCH = 200  # events per transaction: fewer commits under load, bounded retry unit


@dataclass(frozen=True, slots=True)
class _Stop:
    """Queued by close(): everything emitted before it is written first."""


class AuditWriter:
    """Ordered, retrying, non-blocking audit writer (one worker thread)."""

    def __init__(self, engine: Engine, *, node: str | None = None) -> None:
        self._engine = engine
        # The node (cluster_nodes) whose Asterisk carries the calls this process starts.
        self._node = None if node is None else safe_text(node, 64)
        self._queue: queue.SimpleQueue[tuple[int, AuditEvent | _Stop]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._emitted = 0  # sequence number of the last event emitted
        self._committed = 0  # sequence number of the last event committed
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closing = False
        self._abort = threading.Event()  # set when close() gives up waiting
        # One transaction at a time: direct writers (the fallback import) and the
        # worker check-then-insert the same dedup keys; in parallel both could insert.
        self._write_lock = threading.Lock()
        self.failed_attempts = 0  # database errors so far (observability, tests)
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    # -- producer side (any thread, usually the asyncio loop) ------------------

    def emit(self, event: AuditEvent) -> None:
        """Queue one event; returns at once."""
        with self._lock:  # sequence number and queue position must agree
            if self._closing:
                raise RuntimeError("AuditWriter is closed")
            self._emitted += 1
            self._queue.put((self._emitted, event))

    @property
    def pending(self) -> int:
        """Events emitted but not yet committed."""
        with self._lock:
            return self._emitted - self._committed

    async def flush(self) -> None:
        """Return once every event emitted before this call is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            target = self._emitted
            if self._committed >= target:
                return
            if not self._thread.is_alive():
                raise RuntimeError(f"AuditWriter stopped with {target - self._committed} unwritten")
            self._waiters.append((target, loop, future))
        await future

    def close(self, timeout: float = 10) -> None:
        """Write everything queued, then stop the worker (waits at most `timeout` s)."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._queue.put((self._emitted, _Stop()))
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abort.set()  # stop retrying: the database stayed unavailable
            self._thread.join(BACKOFF_MAX + 1)
        lost = self.pending
        if lost:
            log.error("audit writer stopped with %d events NOT written to the database", lost)

    # -- worker thread -----------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            # Block for the first item, then take whatever else is already queued.
            items = [self._queue.get()]
            while len(items) <= MAX_BATCH and not isinstance(items[-1][1], _Stop):
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [item for _, item in items if not isinstance(item, _Stop)]
            stop = len(batch) < len(items)  # only close() queues a _Stop, always last
            if batch and not self._write_with_retry(batch):
                self._log_unwritten(batch)
                self._fail_waiters()
                return
            self._mark_committed(items[-1][0])

    def _write_with_retry(self, batch: Sequence[AuditEvent]) -> bool:
        """Retry until the batch commits; False only if close() gave up on it."""
        delay = BACKOFF_MIN
        while True:
            try:
                self.write_events(batch)
                return True
            except Exception as exc:
                self.failed_attempts += 1
                # An outage is expected operation (the journal holds the events): one
                # line per retry, the full traceback only for the first failure.
                log.warning(
                    "audit write failed (%d events kept, retry in %.1f s): %s",
                    len(batch),
                    delay,
                    str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__,
                    exc_info=self.failed_attempts == 1,
                )
            if self._abort.wait(delay):
                return False
            delay = min(delay * 2, BACKOFF_MAX)

    def _mark_committed(self, seq: int) -> None:
        with self._lock:
            self._committed = max(self._committed, seq)
            ready = [w for w in self._waiters if w[0] <= self._committed]
            self._waiters = [w for w in self._waiters if w[0] > self._committed]
        for _, loop, future in ready:
            # RuntimeError: that loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)

    def _fail_waiters(self) -> None:
        """Wake every flush() still waiting: what it waits for will never be written."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
            lost = self._emitted - self._committed
        error = RuntimeError(f"audit writer stopped with {lost} events unwritten")
        for _, loop, future in waiters:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_fail, future, error)

    def _log_unwritten(self, batch: Sequence[AuditEvent]) -> None:
        rest: list[AuditEvent] = list(batch)
        while True:
            try:
                _, item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, _Stop):
                rest.append(item)
        for event in rest:  # last resort: the log keeps what the database could not
            log.error("unwritten audit event: %r", event)

    # -- the write path (one method, so that a disk spool can wrap it) ----------

    def write_events(self, events: Sequence[AuditEvent]) -> None:
        """Apply events in order in ONE transaction; raises on any database error."""
        with self._write_lock, self._engine.begin() as conn:
            for event in events:
                apply_event(conn, event, self._node)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
