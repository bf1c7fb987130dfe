"""Import fallback calls while the service runs, within ~2 s of their end.

The dialplan fallback takes calls the service does not (not connected, the
watchdog fired, draining); the AGI spools them. This task polls the spool
directory (one os.scandir per second: names, sizes and mtimes), runs the
blocking import in a thread when something changed, and hands each imported
call to `on_imported` (the service raises the same missed-call alerts as for
its own calls). A database outage keeps the files and is retried with
backoff, logged once per outage, not once per poll.

Wiring (the service's composition root), e.g.:

    stop = asyncio.Event()
    task = asyncio.create_task(watch_fallback_spool(
        lambda: live.current.fallback_spool_dir,
        lambda: import_fallback_spool(live.current, writer, engine),
        on_imported,  # ImportedCall -> alert if missed (see ImportedCall.last_state)
        stop=stop,
    ))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from astreinte_ari.adapters.fallback.importer import SpoolImportError
from astreinte_ari.adapters.fallback.records import ImportedCall
from astreinte_ari.adapters.fallback.spool import RECORD_SUFFIXES
from astreinte_ari.aio import within

log = logging.getLogger(__name__)

RECHECK_S = 60.0  # unchanged files are looked at again this often (stale calls)
MAX_BACKOFF_S = 30.0
_REMEMBERED = 10_000  # call ids already handed over (a file that cannot be moved)

Signature = frozenset[tuple[str, int, int]]


def spool_signature(spool_dir: Path) -> Signature:
    """What the import would read: (name, size, mtime) of each call file; cheap."""
    try:
        with os.scandir(spool_dir) as entries:
            return frozenset(
                (e.name, (st := e.stat()).st_size, st.st_mtime_ns)
                for e in entries
                if e.name.endswith(RECORD_SUFFIXES) and e.is_file()
            )
    except OSError:  # not created yet, or unreadable: nothing to import
        return frozenset()


class _Outage:
    """One log line when imports start failing, one when they work again."""

    def __init__(self) -> None:
        self.failures = 0

    def failed(self, exc: BaseException) -> float:
        self.failures += 1
        if self.failures == 1:
            cause = exc.cause if isinstance(exc, SpoolImportError) else exc
            text = str(cause).splitlines()[0][:300] if str(cause) else type(cause).__name__
            log.warning("fallback import failed, spool files kept, retrying: %s", text)
        return min(2.0 ** min(self.failures, 10), MAX_BACKOFF_S)

    def succeeded(self) -> None:
        if self.failures:
            log.info("fallback import works again after %d failed attempt(s)", self.failures)
        self.failures = 0


async def watch_fallback_spool(
    spool_dir_of: Callable[[], Path],
    import_once: Callable[[], list[ImportedCall]],
    on_imported: Callable[[ImportedCall], None],
    *,
    stop: asyncio.Event,
    interval_s: float = 1.0,
    recheck_s: float = RECHECK_S,
) -> None:
    """Run until `stop` is set; the first look is immediate (calls taken while down).

    `spool_dir_of`: the current spool directory (live configuration).
    `import_once`: the blocking import (import_fallback_spool), run in a thread.
    `on_imported`: called on the event loop once per imported call (never twice for
    a call id in this process); its exceptions are logged, not raised.
    """
    outage = _Outage()
    seen: Signature | None = None
    since_import = 0.0
    retry_in = 0.0
    handed: OrderedDict[str, None] = OrderedDict()
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        signature = spool_signature(spool_dir_of())
        changed = signature != seen or since_import >= recheck_s
        due = retry_in <= 0 and bool(signature) and changed
        if due:
            try:
                calls = await asyncio.to_thread(import_once)
            except SpoolImportError as exc:
                calls, retry_in = exc.imported, outage.failed(exc)
            except Exception as exc:
                calls, retry_in = [], outage.failed(exc)
            else:
                outage.succeeded()
                # Files the import left (calls still ringing) are not read again
                # until they change or recheck_s has passed. The signature taken
                # BEFORE the import: a step appended meanwhile is a change.
                seen, since_import = signature, 0.0
            for call in calls:
                _hand_over(call, handed, on_imported)
        with contextlib.suppress(TimeoutError):
            await within(stop.wait(), interval_s)
        elapsed = loop.time() - started
        since_import += elapsed
        retry_in = max(0.0, retry_in - elapsed)


def _hand_over(
    call: ImportedCall,
    handed: OrderedDict[str, None],
    on_imported: Callable[[ImportedCall], None],
) -> None:
    if call.call_id in handed:
        return
    handed[call.call_id] = None
    if len(handed) > _REMEMBERED:
        handed.popitem(last=False)
    try:
        on_imported(call)
    except Exception:
        log.exception("fallback call %s: on_imported failed", call.call_id[:8])
