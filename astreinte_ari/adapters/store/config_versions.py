"""Audit of accepted configuration versions: hash, time, source, diff summary, text.

One row per distinct content (idempotent on the SHA-256), so that auditors can
say which programme was live when a call came in, and who changed what.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Connection, Engine, Integer, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError

from astreinte_ari.adapters.store.models import UTCDateTime, metadata

_SUMMARY_LINES = 12  # changed lines quoted in the summary; the full text is kept anyway


config_versions_table = Table(
    "config_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("accepted_at", UTCDateTime, nullable=False, index=True),
    Column("source_path", Text, nullable=False),
    Column("diff_summary", Text, nullable=False),
    Column("config_text", Text, nullable=False),
)


@dataclass(frozen=True, slots=True)
class ConfigVersionRecord:
    id: int
    content_hash: str
    accepted_at: datetime
    source_path: str
    diff_summary: str
    config_text: str


def text_hash(text: str) -> str:
    """Same value as the watcher's version for a UTF-8 file."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def diff_summary(previous_text: str | None, text: str) -> str:
    """'+3 -1 lines' and the first changed lines with their line numbers."""
    if previous_text is None:
        return f"first recorded version ({len(text.splitlines())} lines)"
    old, new = previous_text.splitlines(), text.splitlines()
    added = removed = 0
    quoted: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new).get_opcodes():
        if tag == "equal":
            continue
        removed += i2 - i1
        added += j2 - j1
        quoted += [f"-{i + 1}: {old[i].strip()}" for i in range(i1, i2)]
        quoted += [f"+{j + 1}: {new[j].strip()}" for j in range(j1, j2)]
    if not added and not removed:
        return "no line changed (whitespace or encoding only)"
    head = f"+{added} -{removed} lines"
    more = f"\n... {len(quoted) - _SUMMARY_LINES} more" if len(quoted) > _SUMMARY_LINES else ""
    return "\n".join([head, *quoted[:_SUMMARY_LINES]]) + more


def record_config_version(
    engine: Engine,
    config_text: str,
    path: str,
    previous_text: str | None,
    *,
    now: datetime | None = None,
) -> int:
    """Store an accepted configuration; returns its id (the existing one if this
    content was already recorded)."""
    digest = text_hash(config_text)
    with engine.connect() as conn:
        existing = _version_id(conn, digest)
    if existing is not None:
        return existing
    values = {
        "content_hash": digest,
        "accepted_at": now or datetime.now(UTC),
        "source_path": path,
        "diff_summary": diff_summary(previous_text, config_text),
        "config_text": config_text,
    }
    try:
        with engine.begin() as conn:
            result = conn.execute(insert(config_versions_table).values(**values))
            return int(result.inserted_primary_key[0])
    except IntegrityError:  # recorded concurrently by another process
        with engine.connect() as conn:
            found = _version_id(conn, digest)
        if found is None:
            raise
        return found


def _version_id(conn: Connection, digest: str) -> int | None:
    table = config_versions_table
    found = conn.scalar(select(table.c.id).where(table.c.content_hash == digest))
    return None if found is None else int(found)


def list_config_versions(engine: Engine) -> list[ConfigVersionRecord]:
    """Every recorded version, oldest first."""
    table = config_versions_table
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.id)).all()
    return [
        ConfigVersionRecord(
            r.id, r.content_hash, r.accepted_at, r.source_path, r.diff_summary, r.config_text
        )
        for r in rows
    ]
