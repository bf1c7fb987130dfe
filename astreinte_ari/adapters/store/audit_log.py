"""Append-only, hash-chained audit log: one global chain over every audit record.

Design (see docs/audit-and-reports.md):

- table `audit_log`: seq (1, 2, 3... no gaps), at (UTC, when the record was
  appended), kind ("call.started", "hop.ended", "alert.sent"...), subject_id
  (call id, hop id, alert id...), payload (canonical JSON text), prev_hash,
  hash, and dedup_key (unique, optional: makes replays of a batch no-ops).
- hash = SHA-256 over `seq | at | kind | subject_id | payload | prev_hash`
  (see `record_hash`); the first record's prev_hash is GENESIS_HASH.
- table `audit_log_head`: one row (id 1) with the last seq and hash. Every
  append first UPDATEs that row: on PostgreSQL the row lock, on SQLite the
  write lock it takes, serialise appenders from any process, so the chain
  never forks; and deleting the newest records is caught (head != last row).
- appends happen in the caller's transaction, so a record commits or rolls
  back together with the domain rows it describes.

Payloads are plain JSON values (str, int, float, bool, None, lists, dicts);
datetimes must be converted with `iso()` first. Canonical form: sorted keys,
no spaces, ASCII only (so any text, even lone surrogates, survives every
backend byte for byte).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    Text,
    case,
    cast,
    exists,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from astreinte_ari.adapters.store.models import UTCDateTime, metadata
from astreinte_ari.adapters.store.safe_text import safe_text

GENESIS_HASH = "0" * 64
json_quote = json.encoder.encode_basestring_ascii  # what json.dumps(str) returns
KIND_LEN = 64
SUBJECT_LEN = 128
DEDUP_LEN = 200


audit_log_table = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("kind", String(KIND_LEN), nullable=False),
    Column("subject_id", String(SUBJECT_LEN), nullable=False, index=True),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("dedup_key", String(DEDUP_LEN), nullable=True, unique=True),
)

audit_log_head_table = Table(
    "audit_log_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One chained record, as stored (payload is the canonical JSON text)."""

    seq: int
    at: datetime
    kind: str
    subject_id: str
    payload: str
    prev_hash: str
    hash: str

    def payload_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.payload)
        return data

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso(self.at),
            "kind": self.kind,
            "subject_id": self.subject_id,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def iso(value: datetime | None) -> str | None:
    """The one text form of an instant used in payloads and hashes (UTC, microseconds)."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


# SQLAlchemy's SQLite DateTime text, 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC): for these
# 26 ASCII characters, stored_iso's slices and one replace() of the space agree.
_SQLITE_STORED_FORM = "{0}{0}{0}{0}-{0}{0}-{0}{0} {0}{0}:{0}{0}:{0}{0}.{0}{0}{0}{0}{0}{0}".format(
    "[0-9]"
)
# `iso()`'s exact form, written by PostgreSQL itself (always 6 digits of microseconds).
_PG_ISO_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


def select_times_as_text(columns: Sequence[ColumnElement[Any]], dialect: str) -> Select[Any]:
    """SELECT `columns` with each timestamp read as `iso()` text written by the
    database itself, or None; on SQLite, a stored form other than SQLAlchemy's comes
    as bytes instead (never equal to a logged value): `iso_times_fixed` and
    `rows_with_iso_times` turn those into `iso()` text too.

    Building a datetime per value and formatting it back was a third of `audit
    verify`'s time over a million records (psycopg builds aware datetimes, at ~1 µs
    each), and rewriting SQLite's text in Python a tenth: the database's core does
    it while it reads the rows."""
    return select(*(_time_as_text(c, dialect) if is_time(c) else c for c in columns))


def rows_with_iso_times(
    rows: Iterable[Sequence[Any]], columns: Sequence[ColumnElement[Any]], dialect: str
) -> Iterator[Sequence[Any]]:
    """The rows of a `select_times_as_text(columns, dialect)`, timestamps as `iso()`."""
    if dialect == "postgresql":  # already iso(): no call per value over millions of rows
        yield from rows
        return
    times = [i for i, c in enumerate(columns) if is_time(c)]
    for row in rows:
        yield iso_times_fixed(row, times)


def iso_times_fixed(row: Sequence[Any], times: Sequence[int]) -> tuple[Any, ...]:
    """`row` of a `select_times_as_text`, its values at `times` as `iso()` text where
    the database sent an unusual stored form (bytes) instead."""
    values = list(row)
    for i in times:
        if values[i].__class__ is bytes:
            values[i] = stored_iso(values[i].decode())
    return tuple(values)


def is_time(column: ColumnElement[Any]) -> bool:
    return isinstance(column.type, UTCDateTime)


def _time_as_text(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    name = getattr(column, "name", None) or "at"
    if dialect == "sqlite":
        # SQLAlchemy's form -> iso(), as `stored_iso` does; GLOB and replace() cost the
        # least per value (a third of CASE on length() and substr()).
        stored = type_coerce(column, String())  # the text as such, no datetime binding
        usual = stored.op("GLOB")(_SQLITE_STORED_FORM)
        as_iso = func.replace(stored, " ", "T", type_=String()) + "+00:00"
        text = case((usual, as_iso), else_=cast(stored, LargeBinary))
        return type_coerce(text, String()).label(name)
    if dialect == "postgresql":
        utc = func.timezone("UTC", column)  # timestamptz -> UTC wall time, any session zone
        return func.to_char(utc, _PG_ISO_FORMAT).label(name)
    return column


def stored_iso(at: str | datetime) -> str:
    """`iso()` of a time as `select_times_as_text` reads it (the SQLite text, a datetime)."""
    if isinstance(at, str):
        # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC).
        if len(at) == 26 and at[10] == " ":
            return f"{at[:10]}T{at[11:]}+00:00"
        at = datetime.fromisoformat(at)
    return iso(at) or ""


def canonical_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def record_hash(
    seq: int, at: datetime | str, kind: str, subject_id: str, payload: str, prev_hash: str
) -> str:
    """SHA-256 (hex) of one record; fields joined with '|' after JSON-quoting the texts."""
    at_text = at if isinstance(at, str) else iso(at)
    # JSON-quoting the free texts means a '|' inside one cannot shift field borders
    # (same output as json.dumps(text), without its per-call dispatch: verify runs this 1M times).
    material = "|".join(
        (str(seq), str(at_text), json_quote(kind), json_quote(subject_id), payload, prev_hash)
    )
    return hashlib.sha256(material.encode("ascii", "backslashreplace")).hexdigest()


def commitment(call_id: str, value: str) -> str:
    """SHA-256 of a personal value (caller ID), bound to its call: the log keeps this,
    not the value, so that redacting the value later leaves the chain intact."""
    return hashlib.sha256(f"{call_id}\x00{value}".encode("utf-8", "surrogatepass")).hexdigest()


def dedup_key_exists(conn: Connection, dedup_key: str) -> bool:
    return bool(conn.scalar(select(exists().where(audit_log_table.c.dedup_key == dedup_key))))


def append_audit_record(
    conn: Connection,
    kind: str,
    subject_id: str,
    payload: dict[str, Any],
    *,
    at: datetime | None = None,
    dedup_key: str | None = None,
) -> AuditRecord:
    """Append one record to the chain inside the caller's transaction.

    Public API for every feature that must leave a tamper-evident trace
    (alerts and acknowledgements, configuration versions, shift-start outcomes,
    retention deletions...). Call it with the same `conn` that writes your own
    rows, inside `engine.begin()`: both commit or roll back together.

    kind: dotted name, e.g. "alert.acknowledged" (<= 64 chars); subject_id: the
    id of what the record is about (<= 128 chars). payload: JSON-able dict,
    datetimes converted with `iso()`; untrusted text should go through
    `safe_text` first. dedup_key: when given and already in the log, nothing is
    appended and the existing record is returned (safe replays).

    Holds the chain's head lock until the transaction ends: keep those short.
    """
    if dedup_key is not None:
        existing = conn.execute(
            select(audit_log_table).where(audit_log_table.c.dedup_key == dedup_key)
        ).mappings()
        row = existing.first()
        if row is not None:
            return _record(row)
    kind = safe_text(kind, KIND_LEN)
    subject_id = safe_text(subject_id, SUBJECT_LEN)
    text = canonical_json(payload)
    when = datetime.now(UTC) if at is None else at.astimezone(UTC)
    # Stored precision is microseconds on both backends: hash what will be read back.
    when = datetime.fromisoformat(str(iso(when)))
    # Lock the head first (row lock / SQLite write lock), then read it.
    conn.execute(
        update(audit_log_head_table)
        .where(audit_log_head_table.c.id == 1)
        .values(seq=audit_log_head_table.c.seq)
    )
    head = conn.execute(
        select(audit_log_head_table.c.seq, audit_log_head_table.c.hash).where(
            audit_log_head_table.c.id == 1
        )
    )
    found = head.first()
    if found is None:
        raise RuntimeError("audit_log_head is empty: run `astreinte db upgrade`")
    seq, prev_hash = int(found[0]) + 1, str(found[1])
    digest = record_hash(seq, when, kind, subject_id, text, prev_hash)
    conn.execute(
        insert(audit_log_table).values(
            seq=seq,
            at=when,
            kind=kind,
            subject_id=subject_id,
            payload=text,
            prev_hash=prev_hash,
            hash=digest,
            dedup_key=dedup_key,
        )
    )
    conn.execute(
        update(audit_log_head_table)
        .where(audit_log_head_table.c.id == 1)
        .values(seq=seq, hash=digest)
    )
    return AuditRecord(seq, when, kind, subject_id, text, prev_hash, digest)


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=int(row["seq"]),
        at=row["at"],
        kind=row["kind"],
        subject_id=row["subject_id"],
        payload=row["payload"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def read_head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(
        select(audit_log_head_table.c.seq, audit_log_head_table.c.hash).where(
            audit_log_head_table.c.id == 1
        )
    )
    found = row.first()
    return (0, GENESIS_HASH) if found is None else (int(found[0]), str(found[1]))
