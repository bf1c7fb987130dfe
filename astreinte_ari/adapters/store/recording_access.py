"""Reading a recording (a recorded conversation or a voicemail) leaves a trace.

CNIL: access to recordings is restricted and logged. Every listen or download
through this service appends "recording.accessed" to the hash chain (who, how,
which file and its SHA-256) BEFORE the bytes are handed over: if the record
cannot be written, nothing is delivered.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine, select

from astreinte_ari.adapters.store.audit_log import append_audit_record
from astreinte_ari.adapters.store.models import calls_table
from astreinte_ari.adapters.store.safe_text import safe_text

ACCESS_KIND = "recording.accessed"


class RecordingKind(StrEnum):
    CONVERSATION = "conversation"  # calls.recording_path (record_calls)
    VOICEMAIL = "voicemail"  # calls.voicemail_path


class RecordingUnavailable(Exception):
    """No such recording to read (never recorded, deleted by retention, or outside the
    recordings directory): the message says which."""


@dataclass(frozen=True, slots=True)
class Accessor:
    """Who reads it, as the trail will say: "<user> (uid N)" and how ("cli", "link")."""

    user: str
    via: str
    uid: int | None = None

    def describe(self) -> str:
        return self.user if self.uid is None else f"{self.user} (uid {self.uid})"


def recording_path(engine: Engine, call_id: str, kind: RecordingKind) -> str | None:
    column = calls_table.c.recording_path
    if kind is RecordingKind.VOICEMAIL:
        column = calls_table.c.voicemail_path
    with engine.connect() as conn:
        return conn.scalar(select(column).where(calls_table.c.id == call_id))


def read_recording_audited(
    engine: Engine,
    call_id: str,
    kind: RecordingKind,
    recordings_dir: Path | None,
    accessor: Accessor,
    *,
    purpose: str = "",
) -> bytes:
    """The recording's bytes, once its access is on record in the chain.
    `recordings_dir`: when known, only files under it are ever read."""
    stored = recording_path(engine, call_id, kind)
    if not stored:
        raise RecordingUnavailable(f"call {call_id} has no {kind.value} recording")
    path = Path(stored).resolve()
    if recordings_dir is not None and not path.is_relative_to(recordings_dir.resolve()):
        raise RecordingUnavailable(f"{stored} is outside {recordings_dir}: not read")
    if not path.is_file():
        raise RecordingUnavailable(f"{stored} no longer exists (deleted by retention?)")
    data = path.read_bytes()
    note_access(engine, call_id, kind, stored, data, accessor, purpose=purpose)
    return data


def note_access(
    engine: Engine,
    subject: str,
    kind: RecordingKind,
    stored: str,
    data: bytes,
    accessor: Accessor,
    *,
    purpose: str = "",
) -> None:
    """Append "recording.accessed" (subject: the call, or the alert without one)."""
    payload: dict[str, object] = {
        "recording": kind.value,
        "path": stored,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "by": safe_text(accessor.user, 128),
        "uid": accessor.uid,
        "via": accessor.via,
        "message": safe_text(f"recording accessed by {accessor.describe()}", 256),
    }
    if purpose:
        payload["purpose"] = safe_text(purpose, 300)
    with engine.begin() as conn:
        append_audit_record(conn, ACCESS_KIND, subject, payload)


def note_voicemail_access(engine: Engine, subject: str, path: Path, person_id: str) -> None:
    """A voicemail fetched through an alert's link, by the person it was sent to."""
    note_access(
        engine, subject, RecordingKind.VOICEMAIL, str(path), path.read_bytes(),
        Accessor(person_id, "link"),
    )  # fmt: skip
