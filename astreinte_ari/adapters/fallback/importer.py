"""Import the fallback spool into the audit trail (service start, `astreinte fallback import`).

Spool files are grouped per call (Asterisk UNIQUEID): the AGI's `<id>.jsonl`
and, when the AGI failed, the dialplan's `<id>.lastresort.json`. A finished
call is written in one transaction through AuditWriter.write_events (inserts
are idempotent, ids are derived from the UNIQUEID), then its files are moved
to `imported/` and its voicemail next to the service's recordings. A call with
no end yet is left alone unless its files are stale (AGI killed).
"""

from __future__ import annotations

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

from astreinte_ari.adapters.fallback.records import (
    LASTRESORT_SUFFIX,
    SPOOL_SUFFIX,
    call_audit_events,
)
from astreinte_ari.callflow.audit_events import AuditEvent, CallEnded
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

IMPORTED_DIR = "imported"


class EventSink(Protocol):
    def write_events(self, events: Sequence[AuditEvent]) -> None: ...


@dataclass
class _CallFiles:
    files: list[Path]
    steps: list[dict[str, Any]]
    bad_lines: int = 0

    @property
    def finished(self) -> bool:
        return any(s.get("event") in ("end", "lastresort") for s in self.steps)

    def newest_mtime(self) -> float:
        return max((p.stat().st_mtime for p in self.files if p.exists()), default=0.0)


def _uniqueid(path: Path) -> str:
    name = path.name
    for suffix in (LASTRESORT_SUFFIX, SPOOL_SUFFIX):
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
            into.bad_lines += 1  # a line torn by a crash: the others still count
            continue
        if isinstance(step, dict):
            into.steps.append(step)


def _collect(spool_dir: Path) -> dict[str, _CallFiles]:
    calls: dict[str, _CallFiles] = defaultdict(lambda: _CallFiles([], []))
    for path in sorted(spool_dir.iterdir()):
        if path.is_file() and path.name.endswith((SPOOL_SUFFIX, LASTRESORT_SUFFIX)):
            group = calls[_uniqueid(path)]
            group.files.append(path)
            _read(path, group)
    return calls


def _keep_voicemail(events: list[AuditEvent], recordings_dir: Path) -> list[AuditEvent]:
    """Move the fallback's message next to the service's own (YYYY/MM/<call>.wav)."""
    out: list[AuditEvent] = []
    for event in events:
        if isinstance(event, CallEnded) and event.voicemail_path:
            source = Path(event.voicemail_path)
            target = recordings_dir / f"{event.at:%Y}" / f"{event.at:%m}" / f"{event.call_id}.wav"
            if source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(source, target)
            if target.exists():
                event = CallEnded(
                    event.call_id,
                    event.outcome,
                    event.at,
                    event.detail,
                    event.talk_seconds,
                    str(target),
                    event.voicemail_seconds,
                )
        out.append(event)
    return out


def import_spool(
    spool_dir: Path,
    sink: EventSink,
    recordings_dir: Path,
    *,
    stale_after_s: float,
    clock: Callable[[], float] = time.time,
) -> int:
    """Import every finished (or stale) call of `spool_dir`; returns how many."""
    if not spool_dir.is_dir():
        return 0
    done_dir = spool_dir / IMPORTED_DIR
    imported = 0
    for uniqueid, group in _collect(spool_dir).items():
        if not group.steps:
            continue
        if not group.finished and clock() - group.newest_mtime() < stale_after_s:
            continue  # probably still ringing: next import
        events = _keep_voicemail(call_audit_events(uniqueid, group.steps), recordings_dir)
        sink.write_events(events)  # raises on a database error: files stay for next time
        done_dir.mkdir(exist_ok=True)
        for path in group.files:
            os.replace(path, done_dir / path.name)
        if group.bad_lines:
            log.warning("fallback call %s: %d unreadable spool line(s)", uniqueid, group.bad_lines)
        imported += 1
    if imported:
        log.info("imported %d fallback call(s) from %s", imported, spool_dir)
    return imported


def import_fallback_spool(config: AppConfig, writer: EventSink) -> int:
    """The service's entry point (and `astreinte fallback import`): returns calls imported.

    `writer` is the AuditWriter (its synchronous write_events: files are moved
    only once their events are committed). Blocking: run it in a thread from
    the event loop (asyncio.to_thread).
    """
    return import_spool(
        config.fallback_spool_dir,
        writer,
        config.recordings_dir,
        stale_after_s=config.fallback.stale_after_minutes * 60,
    )
