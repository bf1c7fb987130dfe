"""`astreinte retention run`: delete expired voicemails and recorded conversations,
redact old caller IDs.

Each action is recorded in the hash chain in the same transaction as the
change it describes, so `audit verify` accepts the result:
- "retention.delete_recording" (subject: call id): path, SHA-256 and size of
  the deleted file (proof of what was destroyed), or why nothing was deleted;
- "retention.delete_call_recording" (subject: call id): the same, for the recording
  of a bridged conversation (calls.recording_path, `call_recordings_days`);
- "retention.redact_caller_id" (subject: call id): the new values; the log
  itself only ever held SHA-256 commitments of the caller ID (audit_log.py),
  so after redaction the plain caller ID exists nowhere in the database.

Both carry a dedup key: running the job twice does nothing the second time.
Only files under the configured recordings directory are ever deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, and_, not_, select, update

from astreinte_ari.adapters.store.audit_log import append_audit_record, audit_log_table, iso
from astreinte_ari.adapters.store.models import calls_table
from astreinte_ari.config.reporting import RetentionConfig

log = logging.getLogger(__name__)

REDACTED_NUMBER = "[redacted]"
REDACTED_NAME = ""
DELETE_KIND = "retention.delete_recording"
DELETE_CALL_RECORDING_KIND = "retention.delete_call_recording"
REDACT_KIND = "retention.redact_caller_id"
BATCH = 500  # calls per transaction: bounded lock time on a big backlog


@dataclass(slots=True)
class RetentionResult:
    recordings_deleted: int = 0
    call_recordings_deleted: int = 0
    recordings_missing: int = 0
    recordings_refused: list[str] = field(default_factory=list)  # outside recordings_dir
    caller_ids_redacted: int = 0


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(1 << 16), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _not_done(kind: str) -> object:
    """Calls for which `kind` is not yet in the log (the dedup key names the call)."""
    done = select(audit_log_table.c.dedup_key).where(audit_log_table.c.kind == kind)
    return not_((kind + ":" + calls_table.c.id).in_(done))


def run_retention(
    engine: Engine,
    config: RetentionConfig,
    recordings_dir: Path,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RetentionResult:
    result = RetentionResult()
    now = clock()
    if config.recordings_days is not None:
        cutoff = now - timedelta(days=config.recordings_days)
        _delete_recordings(engine, cutoff, recordings_dir, result, now, _VOICEMAILS)
    cutoff = now - timedelta(days=config.call_recordings_days)
    _delete_recordings(engine, cutoff, recordings_dir, result, now, _CONVERSATIONS)
    if config.caller_id_days is not None:
        _redact_caller_ids(engine, now - timedelta(days=config.caller_id_days), result, now)
    return result


@dataclass(frozen=True, slots=True)
class _Files:
    """A kind of file a call may point to: its column, and the record of deleting it."""

    column: str
    kind: str


_VOICEMAILS = _Files("voicemail_path", DELETE_KIND)
_CONVERSATIONS = _Files("recording_path", DELETE_CALL_RECORDING_KIND)


def _delete_recordings(
    engine: Engine,
    cutoff: datetime,
    root: Path,
    result: RetentionResult,
    now: datetime,
    files: _Files,
) -> None:
    root = root.resolve()
    column = calls_table.c[files.column]
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(calls_table.c.id, column)
                .where(and_(calls_table.c.started_at < cutoff, column.is_not(None)))
                .where(_not_done(files.kind))  # type: ignore[arg-type]
                .order_by(calls_table.c.started_at)
                .limit(BATCH)
            ).all()
            for call_id, stored_path in rows:
                path = Path(stored_path).resolve()
                payload: dict[str, object] = {"path": stored_path, "cutoff": iso(cutoff)}
                if not path.is_relative_to(root):
                    payload |= {"deleted": False, "reason": f"outside {root}: not deleted"}
                    result.recordings_refused.append(stored_path)
                elif path.is_file():
                    sha256, size = _file_digest(path)
                    payload |= {"deleted": True, "sha256": sha256, "bytes": size}
                else:
                    payload |= {"deleted": False, "reason": "file already absent"}
                    result.recordings_missing += 1
                append_audit_record(conn, files.kind, call_id, payload, at=now,
                                    dedup_key=f"{files.kind}:{call_id}")  # fmt: skip
                if payload["deleted"]:
                    # Inside the transaction: if this fails, the record rolls back too.
                    path.unlink()
                    if files is _CONVERSATIONS:
                        result.call_recordings_deleted += 1
                    else:
                        result.recordings_deleted += 1
                    log.info("retention: deleted %s (call %s)", path, call_id)
        if len(rows) < BATCH:
            return


def _redact_caller_ids(
    engine: Engine, cutoff: datetime, result: RetentionResult, now: datetime
) -> None:
    values = {"caller_number": REDACTED_NUMBER, "caller_name": REDACTED_NAME}
    while True:
        with engine.begin() as conn:
            ids = conn.scalars(
                select(calls_table.c.id)
                .where(calls_table.c.started_at < cutoff)
                .where(_not_done(REDACT_KIND))  # type: ignore[arg-type]
                .order_by(calls_table.c.started_at)
                .limit(BATCH)
            ).all()
            for call_id in ids:
                conn.execute(update(calls_table).where(calls_table.c.id == call_id).values(values))
                append_audit_record(conn, REDACT_KIND, call_id,
                                    {"values": values, "cutoff": iso(cutoff)}, at=now,
                                    dedup_key=f"{REDACT_KIND}:{call_id}")  # fmt: skip
            result.caller_ids_redacted += len(ids)
        if len(ids) < BATCH:
            return


async def keep_retention(
    engine: Engine,
    current: Callable[[], tuple[RetentionConfig, Path]],
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    interval_s: float = 6 * 3600,
    after_run: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """The scheduled side of `astreinte retention run`: at start, then every interval.
    `after_run`: e.g. sign a checkpoint of the chain right after what retention wrote."""
    while True:
        config, recordings_dir = current()
        # Always run: recorded conversations always have a retention (6 months default).
        try:
            result = await asyncio.to_thread(
                run_retention, engine, config, recordings_dir, clock=clock
            )
            log.info(
                "retention: %d voicemail(s) and %d recorded conversation(s) deleted, "
                "%d caller ID(s) redacted",
                result.recordings_deleted,
                result.call_recordings_deleted,
                result.caller_ids_redacted,
            )
            if after_run is not None:
                await after_run()
        except Exception:
            log.exception("retention run failed; retried at the next interval")
        await asyncio.sleep(interval_s)
