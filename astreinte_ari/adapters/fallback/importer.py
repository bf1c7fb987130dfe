"""Import the fallback spool into the audit trail (watcher.py, `astreinte fallback import`).

Spool files are grouped per call (the key of the channel's UNIQUEID): the
AGI's `<key>.jsonl` and, when the AGI failed, the dialplan's
`<key>.lastresort.json`, and the dialplan's `<key>.unclaimed.json` for a
call no service took (unclaimed.py). A finished call is written in one transaction
through AuditWriter.write_events (inserts are idempotent, ids derive from the
UNIQUEID, the same id the service gives the channel), then its files are
moved to `imported/` and its voicemail next to the service's recordings. A
call with no end yet is left alone unless its files are stale (AGI killed).

A call the service saw first (then lost to the watchdog, or handed over
while draining) already has its CallStarted row: the import completes that
record. Should the service ever have written transitions for it, the
fallback's continue after the highest one (and a re-import finds its own).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, select

from astreinte_ari.adapters.fallback.records import FallbackRecord, ImportedCall, fallback_record
from astreinte_ari.adapters.fallback.spool import RECORD_SUFFIXES
from astreinte_ari.adapters.fallback.unclaimed import UNCLAIMED_EVENT, UNCLAIMED_TRIGGER
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table
from astreinte_ari.adapters.store.safe_text import safe_text
from astreinte_ari.adapters.store.writer import LONG_TEXT
from astreinte_ari.callflow.audit_events import AuditEvent, CallEnded, StateChanged
from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.config.model import AppConfig

__all__ = [
    "IMPORTED_DIR",
    "CallHistory",
    "EventSink",
    "ExistingCall",
    "ImportedCall",
    "SpoolImportError",
    "SqlCallHistory",
    "import_fallback_spool",
    "import_spool",
]

log = logging.getLogger(__name__)

IMPORTED_DIR = "imported"


class EventSink(Protocol):
    def write_events(self, events: Sequence[AuditEvent]) -> None: ...


@dataclass(frozen=True, slots=True)
class ExistingCall:
    """What the audit trail already holds for a call id."""

    ended: bool
    transitions: tuple[tuple[int, str, str], ...]  # (seq, to_state, reason), by seq


class CallHistory(Protocol):
    def existing(self, call_id: str) -> ExistingCall | None: ...


class SqlCallHistory:
    """CallHistory over the audit database (read-only)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def existing(self, call_id: str) -> ExistingCall | None:
        with self.engine.connect() as conn:
            ended = conn.execute(
                select(calls_table.c.ended_at).where(calls_table.c.id == call_id)
            ).first()
            if ended is None:
                return None
            rows = conn.execute(
                select(
                    call_transitions_table.c.seq,
                    call_transitions_table.c.to_state,
                    call_transitions_table.c.reason,
                )
                .where(call_transitions_table.c.call_id == call_id)
                .order_by(call_transitions_table.c.seq)
            ).all()
        return ExistingCall(ended[0] is not None, tuple((r[0], r[1], r[2]) for r in rows))


class SpoolImportError(Exception):
    """The database failed mid-import; `imported` were committed before it did."""

    def __init__(self, imported: list[ImportedCall], cause: BaseException) -> None:
        super().__init__(f"fallback import stopped after {len(imported)} call(s): {cause}")
        self.imported = imported
        self.cause = cause


@dataclass
class _CallFiles:
    files: list[Path]
    steps: list[dict[str, Any]]
    bad_lines: int = 0

    @property
    def finished(self) -> bool:
        return any(s.get("event") in ("end", "lastresort", UNCLAIMED_EVENT) for s in self.steps)

    def newest_mtime(self) -> float:
        times = []
        for path in self.files:
            try:
                times.append(path.stat().st_mtime)
            except OSError:
                continue
        return max(times, default=0.0)


def _key(name: str) -> str:
    for suffix in RECORD_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _read(path: Path, into: _CallFiles) -> None:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            step = json.loads(line)
        except json.JSONDecodeError:
            into.bad_lines += 1  # a line torn by a crash or a full disk: the others count
            continue
        if isinstance(step, dict):
            into.steps.append(step)


def _collect(spool_dir: Path) -> dict[str, _CallFiles]:
    calls: dict[str, _CallFiles] = defaultdict(lambda: _CallFiles([], []))
    with os.scandir(spool_dir) as entries:
        names = sorted(e.name for e in entries if e.is_file())
    for name in names:
        if name.endswith(RECORD_SUFFIXES) and not name.startswith("."):
            group = calls[_key(name)]
            group.files.append(spool_dir / name)
            try:
                _read(spool_dir / name, group)
            except OSError as exc:  # gone meanwhile (another importer), unreadable
                log.warning("fallback spool file %s unreadable: %s", name, exc)
    return calls


def _continue_after(events: list[AuditEvent], existing: ExistingCall | None) -> list[AuditEvent]:
    """Number the fallback's transitions after those already stored for the call.

    A re-import finds its own first transition (same state and reason) and
    keeps its numbers, so every write is again a no-op.
    """
    if existing is None or not existing.transitions:
        return events
    first = next(e for e in events if isinstance(e, StateChanged))
    reason = safe_text(first.reason, LONG_TEXT)
    own = [s for s, to, why in existing.transitions if to == first.to_state and why == reason]
    base = own[0] - 1 if own else max(s for s, _, _ in existing.transitions)
    if base <= 0:
        return events
    before = {s: to for s, to, _ in existing.transitions}.get(base, "")
    try:
        prior = CallState(before)
    except ValueError:
        prior = first.from_state
    out: list[AuditEvent] = []
    for event in events:
        if isinstance(event, StateChanged):
            start = prior if event is first else event.from_state
            event = dataclasses.replace(event, seq=event.seq + base, from_state=start)
        out.append(event)
    return out


def _keep_voicemail(
    record: FallbackRecord, spool_dir: Path, recordings_dir: Path
) -> FallbackRecord:
    """Move the fallback's message next to the service's own (YYYY/MM/<call>.wav)."""
    messages = (spool_dir / "voicemail").resolve()
    events: list[AuditEvent] = []
    summary = record.summary
    for event in record.events:
        if isinstance(event, CallEnded) and event.voicemail_path:
            source = Path(event.voicemail_path)
            target = recordings_dir / f"{event.at:%Y}" / f"{event.at:%m}" / f"{event.call_id}.wav"
            try:
                # Only a message of the spool's own folder (the path is read from a file).
                if source.exists() and source.resolve().parent == messages:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(source, target)
            except OSError as exc:  # recordings full or read-only: keep it in the spool
                log.warning("fallback voicemail %s not moved: %s", source, exc)
            if target.exists():
                event = dataclasses.replace(event, voicemail_path=str(target))
                summary = dataclasses.replace(summary, voicemail_path=str(target))
        events.append(event)
    return FallbackRecord(events, summary)


def _move_aside(group: _CallFiles, done_dir: Path, key: str) -> None:
    try:
        done_dir.mkdir(exist_ok=True)
        for path in group.files:
            os.replace(path, done_dir / path.name)
    except OSError as exc:
        # Committed anyway: the next import of these files writes nothing again.
        log.warning("fallback call %s imported but its files stay in the spool: %s", key, exc)


def import_spool(
    spool_dir: Path,
    sink: EventSink,
    recordings_dir: Path,
    *,
    stale_after_s: float,
    clock: Callable[[], float] = time.time,
    history: CallHistory | None = None,
    line_name: Callable[[str], str | None] = lambda did: None,
) -> list[ImportedCall]:
    """Import every finished (or stale) call of `spool_dir`; returns them, in file order.

    Raises SpoolImportError (with the calls committed before) when the database
    fails: the files of the failed call and of the rest stay for the next import.
    `history` (SqlCallHistory) lets the import continue a record the service
    started and flag re-imports; without it, both rely on idempotent writes.
    """
    if not spool_dir.is_dir():
        return []
    done_dir = spool_dir / IMPORTED_DIR
    imported: list[ImportedCall] = []
    for key, group in _collect(spool_dir).items():
        newest = group.newest_mtime()
        if not group.finished and clock() - newest < stale_after_s:
            continue  # probably still ringing: next import
        record = fallback_record(key, group.steps, found_at=newest, line_name=line_name)
        record = _keep_voicemail(record, spool_dir, recordings_dir)
        try:
            existing = history.existing(record.summary.call_id) if history else None
            if not (existing and existing.ended and record.summary.trigger == UNCLAIMED_TRIGGER):
                # (An unclaimed call the service had started and already closed from
                # the PBX's records: its ending is on record, nothing to add.)
                sink.write_events(_continue_after(record.events, existing))
        except Exception as exc:  # database down: files stay for next time
            raise SpoolImportError(imported, exc) from exc
        _move_aside(group, done_dir, key)
        if group.bad_lines:
            log.warning("fallback call %s: %d unreadable spool line(s)", key, group.bad_lines)
        if not group.steps:
            log.error("fallback call %s: spool file empty (full disk?), recorded as failed", key)
        was_recorded = existing is not None and existing.ended
        imported.append(dataclasses.replace(record.summary, was_recorded=was_recorded))
    if imported:
        log.info("imported %d fallback call(s) from %s", len(imported), spool_dir)
    return imported


def import_fallback_spool(
    config: AppConfig, writer: EventSink, engine: Engine | None = None
) -> list[ImportedCall]:
    """The service's entry point (and `astreinte fallback import`): the calls imported.

    `writer` is the AuditWriter (its synchronous write_events: files are moved
    only once their events are committed); `engine` its database, to complete
    records the service started. Blocking: run it in a thread from the event
    loop (watcher.py does).
    """
    return import_spool(
        config.fallback_spool_dir,
        writer,
        config.recordings_dir,
        stale_after_s=config.fallback.stale_after_minutes * 60,
        history=SqlCallHistory(engine) if engine is not None else None,
        line_name=lambda did: line.name if (line := config.lines.get(did)) else None,
    )
