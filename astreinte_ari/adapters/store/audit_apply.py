"""How one audit event is written: its domain rows (calls, call_transitions, hops)
and its hash-chained audit record, in the caller's transaction. The writer
(writer.py) orders, batches and retries; this module says what each event writes.
"""

from __future__ import annotations

import enum
import logging

from sqlalchemy import Connection, Update, exists, insert, select, update

from astreinte_ari.adapters.store.audit_log import (
    append_audit_record,
    commitment,
    dedup_key_exists,
    iso,
)
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.adapters.store.safe_text import safe_text
from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallEnded,
    CallStarted,
    ConversationRecording,
    HopEnded,
    HopProgress,
    HopStarted,
    RecordingStep,
    StateChanged,
)

__all__ = ["LONG_TEXT", "apply_event", "dedup_key"]

# The writer's logger: these lines were its own before the split, and are still.
log = logging.getLogger("astreinte_ari.adapters.store.writer")

LONG_TEXT = 1024  # details, reasons, paths
_HOP_PROGRESS_COLUMNS = {
    "ringing": "ringing_at",
    "answered": "answered_at",
    "accepted": "accepted_at",
}


def _enum_text(value: enum.Enum | str) -> str:
    return value.value if isinstance(value, enum.Enum) else safe_text(value, 64)


def _opt(value: str | None, limit: int = 256) -> str | None:
    return None if value is None else safe_text(value, limit)


def apply_event(conn: Connection, event: AuditEvent, node: str | None = None) -> None:
    """Write one event's domain rows and its chained audit record, in `conn`'s transaction.

    The record's payload holds the values exactly as stored (after safe_text),
    so `audit verify` can rebuild the domain rows from the log. Its dedup_key
    makes a replayed event a no-op for both. `node`: the calls started here are
    carried by that node's Asterisk (calls.node, logged with the start).
    """
    key = dedup_key(event)
    if key is not None and dedup_key_exists(conn, key):
        return  # replay of a committed batch
    match event:
        case CallStarted():
            if conn.scalar(select(exists().where(calls_table.c.id == event.call_id))):
                return  # row written before the audit chain existed
            row = {
                "did": safe_text(event.did, 64),
                "line_name": safe_text(event.line_name),
                "period": safe_text(event.period, 64),
                "caller_number": safe_text(event.caller_number),
                "caller_name": safe_text(event.caller_name),
                "channel_id": safe_text(event.channel_id),
            }
            if node is not None:
                row["node"] = node
            conn.execute(insert(calls_table).values(id=event.call_id, started_at=event.at, **row))
            logged: dict[str, object] = {
                k: v for k, v in row.items() if not k.startswith("caller_")
            }
            for name in ("caller_number", "caller_name"):
                logged[f"{name}_sha256"] = commitment(event.call_id, row[name])
            logged["started_at"] = iso(event.at)
            append_audit_record(conn, event.kind, event.call_id, logged, dedup_key=key)
        case StateChanged():
            found = select(
                exists().where(
                    call_transitions_table.c.call_id == event.call_id,
                    call_transitions_table.c.seq == event.seq,
                )
            )
            if conn.scalar(found):
                return
            transition = {
                "seq": event.seq,
                "from_state": _enum_text(event.from_state),
                "to_state": _enum_text(event.to_state),
                "reason": safe_text(event.reason, LONG_TEXT),
            }
            conn.execute(
                insert(call_transitions_table).values(
                    call_id=event.call_id, at=event.at, **transition
                )
            )
            logged = {**transition, "at": iso(event.at)}
            append_audit_record(conn, event.kind, event.call_id, logged, dedup_key=key)
        case HopStarted():
            if conn.scalar(select(exists().where(hops_table.c.id == event.hop_id))):
                return
            hop = {
                "call_id": event.call_id,
                "seq": event.seq,
                "label": safe_text(event.label),
                "person_id": safe_text(event.person_id),
                "person_name": safe_text(event.person_name),
                "number": safe_text(event.number, 64),
                "target_kind": _opt(event.target_kind, 64),
                "target": _opt(event.target),
            }
            conn.execute(insert(hops_table).values(id=event.hop_id, started_at=event.at, **hop))
            logged = {**hop, "started_at": iso(event.at)}
            append_audit_record(conn, event.kind, event.hop_id, logged, dedup_key=key)
        case HopProgress():
            column = _HOP_PROGRESS_COLUMNS.get(event.event)
            if column is None:
                log.warning("ignored hop progress %r for hop %s", event.event, event.hop_id)
                return
            stmt = (
                update(hops_table).where(hops_table.c.id == event.hop_id).values({column: event.at})
            )
            if _update(conn, stmt, event):
                logged = {column: iso(event.at)}
                append_audit_record(conn, event.kind, event.hop_id, logged, dedup_key=key)
        case HopEnded():
            values = {
                "outcome": _enum_text(event.outcome),
                "ended_at": event.at,
                "cause_code": event.cause_code,
                "cause_text": _opt(event.cause_text),
                "dtmf": _opt(event.dtmf, 64),
            }
            if _update(
                conn,
                update(hops_table).where(hops_table.c.id == event.hop_id).values(values),
                event,
            ):
                logged = {**values, "ended_at": iso(event.at)}
                append_audit_record(conn, event.kind, event.hop_id, logged, dedup_key=key)
        case CallAnswered():
            values = {
                "answered_at": event.at,
                "accepted_hop_id": event.hop_id,
                "accepted_person_id": safe_text(event.person_id),
            }
            if _update(
                conn,
                update(calls_table).where(calls_table.c.id == event.call_id).values(values),
                event,
            ):
                logged = {**values, "answered_at": iso(event.at)}
                append_audit_record(conn, event.kind, event.call_id, logged, dedup_key=key)
        case CallEnded():
            values = {
                "ended_at": event.at,
                "outcome": _enum_text(event.outcome),
                "outcome_detail": safe_text(event.detail, LONG_TEXT),
                "talk_seconds": event.talk_seconds,
                "voicemail_path": _opt(event.voicemail_path, LONG_TEXT),
                "voicemail_seconds": event.voicemail_seconds,
            }
            if _update(
                conn,
                update(calls_table).where(calls_table.c.id == event.call_id).values(values),
                event,
            ):
                logged = {**values, "ended_at": iso(event.at)}
                append_audit_record(conn, event.kind, event.call_id, logged, dedup_key=key)
        case ConversationRecording():
            _apply_recording(conn, event, key)
        case _:
            log.warning("ignored unknown audit event %r", event)


def _apply_recording(conn: Connection, event: ConversationRecording, key: str | None) -> None:
    """A recording step; "stored" also sets the call's recording_path/seconds (the
    payload then holds them under the column names, as `audit verify` replays them)."""
    logged: dict[str, object] = {
        "step": _enum_text(event.step),
        "name": _opt(event.name),
        "detail": _opt(event.detail, LONG_TEXT),
        "at": iso(event.at),
    }
    if event.step is RecordingStep.STORED:
        values = {
            "recording_path": _opt(event.path, LONG_TEXT),
            "recording_seconds": event.seconds,
        }
        stmt = update(calls_table).where(calls_table.c.id == event.call_id).values(values)
        if not _update(conn, stmt, event):
            return
        logged |= values
    append_audit_record(conn, event.kind, event.call_id, logged, dedup_key=key)


def dedup_key(event: AuditEvent) -> str | None:
    """Key of the one audit record an event may produce: a replay finds it and stops."""
    match event:
        case CallStarted() | CallAnswered() | CallEnded():
            return f"{event.kind}:{event.call_id}"
        case StateChanged():
            return f"{event.kind}:{event.call_id}:{event.seq}"
        case HopStarted() | HopEnded():
            return f"{event.kind}:{event.hop_id}"
        case HopProgress():
            return f"{event.kind}:{event.hop_id}:{safe_text(event.event, 32)}"
        case ConversationRecording():
            return f"{event.kind}:{event.call_id}:{_enum_text(event.step)}"
    return None


def _update(conn: Connection, statement: Update, event: AuditEvent) -> bool:
    if conn.execute(statement).rowcount == 0:
        # The row it refers to was never started: a call flow bug, not a database
        # fault, so retrying cannot help. Keep it visible in the log.
        log.warning("audit update matched no row, event kept in this log: %r", event)
        return False
    return True
