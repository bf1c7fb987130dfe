"""Fast seeding for `bench_reports.py --full-verify-calls N --fast-seed`: the first
calls go through the real AuditWriter, the rest are copies of the first one with
their ids, caller commitments and times changed, chained and bulk-inserted.

The real writer costs ~5 ms a record on a loaded 2-core machine (80 minutes for
a million records); copying takes about a minute. The copies are checked
against calls the writer wrote itself, so the log, its payloads and the domain
rows are the writer's, record for record.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select, update

from astreinte_ari.adapters.store.audit_log import (
    audit_log_head_table,
    audit_log_table,
    commitment,
    iso,
    read_head,
    record_hash,
)
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.adapters.store.writer import AuditWriter

WRITTEN = 3  # calls written by the real writer: the template and two to check copies with
CHUNK_CALLS = 2000
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")
_DOMAIN = (calls_table, hops_table, call_transitions_table)
CallEvents = Callable[[str, datetime], list[Any]]


def seed_by_template(engine: Engine, n_calls: int, start: datetime, events: CallEvents) -> None:
    """`n_calls` calls, call i with a fresh uuid4 id starting at start + i minutes."""
    ids = [str(uuid.uuid4()) for _ in range(n_calls)]
    writer = AuditWriter(engine)
    try:
        for i in range(min(WRITTEN, n_calls)):
            writer.write_events(events(ids[i], start + timedelta(minutes=i)))
    finally:
        writer.close()
    with engine.begin() as conn:
        template = _Template(conn, ids[0])
        for i in range(1, min(WRITTEN, n_calls)):  # the copies are the writer's own rows
            expected = template.call(ids[i], timedelta(minutes=i))
            assert _logged(conn, ids[i]) == [(*r[:3], r[4]) for r in expected[0]], ids[i]
            for table, rows in zip(_DOMAIN, expected[1:], strict=True):
                assert _domain(conn, table, ids[i]) == rows, (table.name, ids[i])
    seq, prev = _head(engine)
    at = datetime.now(UTC).replace(microsecond=0)
    for first in range(WRITTEN, n_calls, CHUNK_CALLS):
        log: list[dict[str, Any]] = []
        domain: list[list[dict[str, Any]]] = [[], [], []]
        for i in range(first, min(first + CHUNK_CALLS, n_calls)):
            records, *rows = template.call(ids[i], timedelta(minutes=i))
            for kind, subject, payload, _, dedup in records:
                seq += 1
                at += timedelta(microseconds=1500)
                digest = record_hash(seq, at, kind, subject, payload, prev)
                log.append({"seq": seq, "at": at, "kind": kind, "subject_id": subject,
                            "payload": payload, "prev_hash": prev, "hash": digest,
                            "dedup_key": dedup})  # fmt: skip
                prev = digest
            for bucket, part in zip(domain, rows, strict=True):
                bucket += part
        with engine.begin() as conn:
            for table, rows in zip(_DOMAIN, domain, strict=True):
                conn.execute(insert(table), rows)
            conn.execute(insert(audit_log_table), log)
            head = audit_log_head_table
            conn.execute(update(head).where(head.c.id == 1).values(seq=seq, hash=prev))
        print(f"  sqlite: {min(first + CHUNK_CALLS, n_calls):,} calls", file=sys.stderr)


class _Template:
    """One call as the writer left it, and the same call under another id and time."""

    def __init__(self, conn: Connection, call_id: str) -> None:
        self.call_id = call_id
        self.records = _logged(conn, call_id)
        self.rows = [_domain(conn, table, call_id) for table in _DOMAIN]
        caller = self.rows[0][0]
        self.commitments = [
            commitment(call_id, caller[n]) for n in ("caller_number", "caller_name")
        ]

    def call(self, call_id: str, shift: timedelta) -> list[list[Any]]:
        """[(kind, subject, payload, seq placeholder, dedup_key)...], calls, hops, transitions."""
        caller = self.rows[0][0]
        texts = {self.call_id: call_id, f"{self.call_id[:8]}-hop": f"{call_id[:8]}-hop"}
        for old, name in zip(self.commitments, ("caller_number", "caller_name"), strict=True):
            texts[old] = commitment(call_id, caller[name])
        pattern = re.compile("|".join(map(re.escape, texts)))

        def text(value: str) -> str:
            shifted = _ISO.sub(lambda m: str(iso(datetime.fromisoformat(m[0]) + shift)), value)
            return pattern.sub(lambda m: texts[m[0]], shifted)

        def value(v: Any) -> Any:
            if isinstance(v, str):
                return text(v)
            return v + shift if isinstance(v, datetime) else v

        records = [
            [kind, text(subject), text(payload), None, None if dedup is None else text(dedup)]
            for kind, subject, payload, dedup in self.records
        ]
        rows = [[{k: value(v) for k, v in row.items()} for row in part] for part in self.rows]
        return [records, *rows]


def _logged(conn: Connection, call_id: str) -> list[tuple[Any, ...]]:
    """The call's records in order: (kind, subject, payload, dedup_key)."""
    log = audit_log_table.c
    hop_prefix = f"{call_id[:8]}-hop-%"
    stmt = (
        select(log.kind, log.subject_id, log.payload, log.dedup_key)
        .where((log.subject_id == call_id) | log.subject_id.like(hop_prefix))
        .order_by(log.seq)
    )
    return [tuple(row) for row in conn.execute(stmt)]


def _domain(conn: Connection, table: Table, call_id: str) -> list[dict[str, Any]]:
    column = table.c.id if table is calls_table else table.c.call_id
    key = [table.c.seq] if "seq" in table.c else []
    rows = conn.execute(select(table).where(column == call_id).order_by(*key)).mappings()
    # call_transitions.id is the database's own counter: not copied, not compared
    drop = "id" if table is call_transitions_table else None
    return [{k: v for k, v in row.items() if k != drop} for row in rows]


def _head(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        return read_head(conn)
