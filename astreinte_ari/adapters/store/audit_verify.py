"""`astreinte audit verify`: recompute the hash chain, then rebuild the domain rows
(calls, hops, call_transitions) from the log and compare them with the tables.

What each check catches:
- a record whose content no longer matches its hash: edited in the log;
- a seq gap or a prev_hash that is not the previous record's hash: a record
  deleted or inserted in the log;
- head row != last record: the newest records were deleted;
- a domain row that differs from what the log says, is missing, or is not in
  the log at all: edited, deleted or inserted in the domain tables.

Recorded retention actions are part of the log: a caller ID redaction
("retention.redact_caller_id") makes the redacted value the expected one.
Calls written before migration 0003 cannot be chained after the fact: the
migration records their count and a digest of their ids ("audit.baseline");
exactly those are accepted as "pre-chain", any other unlogged row is an error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, String, select, type_coerce

from astreinte_ari.adapters.store.audit_log import (
    GENESIS_HASH,
    audit_log_table,
    commitment,
    iso,
    read_head,
    record_hash,
)
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table

MAX_PROBLEMS = 50  # enough to see the pattern; the count says how many in all
REDACT_KIND = "retention.redact_caller_id"
BASELINE_KIND = "audit.baseline"  # written by migration 0003 for pre-existing calls
_FOLD_MARGIN = timedelta(days=1)  # a call's records are written within this of its start

_CALL_FIELDS = [c.name for c in calls_table.columns]
_HOP_FIELDS = [c.name for c in hops_table.columns]
_CALLER_FIELDS = ("caller_number", "caller_name")


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "audit_log seq 57", "calls 8e42...", ...
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    calls: int = 0
    hops: int = 0
    transitions: int = 0
    pre_chain_calls: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_broken(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def add(self, where: str, what: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(where, what))


def verify(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    check_domain: bool = True,
) -> VerifyReport:
    """Check the chain over records appended in [since, until) and the domain rows
    of calls started in that range; the whole database when both are None."""
    report = VerifyReport()
    with engine.connect() as conn:
        _verify_chain(conn, report, since, until)
        if check_domain:
            _cross_check(conn, report, since, until)
    return report


# -- the chain ----------------------------------------------------------------------


def iter_records(conn: Connection, since: datetime | None, until: datetime | None) -> Iterator[Any]:
    stmt = select(audit_log_table).order_by(audit_log_table.c.seq)
    if since is not None:
        stmt = stmt.where(audit_log_table.c.at >= since)
    if until is not None:
        stmt = stmt.where(audit_log_table.c.at < until)
    result = conn.execution_options(stream_results=True, yield_per=5000).execute(stmt)
    yield from result


def iter_chain(
    conn: Connection, since: datetime | None, until: datetime | None
) -> Iterator[tuple[int, str, str, str, str, str, str]]:
    """(seq, at as `iso()` text, kind, subject_id, payload, prev_hash, hash) in seq order.

    `at` is read as the stored text and reshaped, not parsed into a datetime and
    formatted back: that round trip was a third of `audit verify`'s time."""
    table = audit_log_table.c
    stmt = select(
        table.seq,
        type_coerce(table.at, String()) if conn.dialect.name == "sqlite" else table.at,
        table.kind,
        table.subject_id,
        table.payload,
        table.prev_hash,
        table.hash,
    ).order_by(table.seq)
    if since is not None:
        stmt = stmt.where(table.at >= since)
    if until is not None:
        stmt = stmt.where(table.at < until)
    rows = conn.execution_options(stream_results=True, yield_per=5000).execute(stmt)
    for seq, at, kind, subject_id, payload, prev_hash, digest in rows:
        yield int(seq), _iso_text(at), kind, subject_id, payload, prev_hash, digest


def _iso_text(at: str | datetime | None) -> str:
    if isinstance(at, str):
        # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC).
        if len(at) == 26 and at[10] == " ":
            return f"{at[:10]}T{at[11:]}+00:00"
        at = datetime.fromisoformat(at)
    return iso(at) or ""


def _verify_chain(
    conn: Connection, report: VerifyReport, since: datetime | None, until: datetime | None
) -> None:
    prev_seq: int | None = None
    prev_hash: str | None = None
    for seq, at, kind, subject_id, payload, stored_prev, stored_hash in iter_chain(
        conn, since, until
    ):
        if prev_seq is None:
            report.first_seq = seq
            prev_hash = hash_before(conn, seq)
            if prev_hash is None:
                report.add(
                    _where(seq, kind, subject_id),
                    f"record seq {seq - 1} before it is missing (deleted)",
                )
                prev_hash = stored_prev
        elif seq != prev_seq + 1:
            report.add(
                _where(seq, kind, subject_id),
                f"records seq {prev_seq + 1}..{seq - 1} are missing (deleted)",
            )
        if stored_prev != prev_hash:
            report.add(
                _where(seq, kind, subject_id),
                "prev_hash is not the previous record's hash (inserted or removed)",
            )
        if record_hash(seq, at, kind, subject_id, payload, stored_prev) != stored_hash:
            report.add(
                _where(seq, kind, subject_id), "content does not match its hash (record edited)"
            )
        prev_seq, prev_hash = seq, stored_hash
        report.records += 1
    report.last_seq = prev_seq
    head_seq, head_hash = read_head(conn)
    report.head_seq, report.head_hash = head_seq, head_hash
    if until is None and (since is None or prev_seq is not None):
        if prev_seq is None and head_seq != 0:
            report.add("audit_log", f"empty, but the head says seq {head_seq} (records deleted)")
        elif prev_seq is not None and (head_seq != prev_seq or head_hash != prev_hash):
            report.add(
                "audit_log_head",
                f"head is seq {head_seq} but the last record is seq {prev_seq} "
                "(newest records deleted, or head edited)",
            )


def _where(seq: int, kind: str, subject_id: str) -> str:
    return f"audit_log seq {seq} ({kind} {subject_id})"


def hash_before(conn: Connection, seq: int) -> str | None:
    if seq == 1:
        return GENESIS_HASH
    found = conn.scalar(select(audit_log_table.c.hash).where(audit_log_table.c.seq == seq - 1))
    return None if found is None else str(found)


# -- domain rows against the log --------------------------------------------------------


@dataclass(slots=True)
class _Expected:
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    hops: dict[str, dict[str, Any]] = field(default_factory=dict)
    transitions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    redactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None  # "audit.baseline": calls older than the chain
    pre_chain: set[str] = field(default_factory=set)


def _fold(conn: Connection, since: datetime | None, until: datetime | None) -> _Expected:
    """Rebuild the expected domain rows by replaying the logged values in order."""
    exp = _Expected()
    baseline = conn.scalar(
        select(audit_log_table.c.payload).where(audit_log_table.c.kind == BASELINE_KIND).limit(1)
    )
    exp.baseline = None if baseline is None else json.loads(baseline)
    fold_until = None if until is None else until + _FOLD_MARGIN
    redactions = select(audit_log_table.c.subject_id, audit_log_table.c.payload).where(
        audit_log_table.c.kind == REDACT_KIND
    )
    for subject, payload in conn.execute(redactions):  # whenever they happened
        exp.redactions[subject] = json.loads(payload)
    for row in iter_records(conn, since, fold_until):
        kind, subject = row.kind, row.subject_id
        if not (kind.startswith("call.") or kind.startswith("hop.")):
            continue
        data = json.loads(row.payload)
        if kind == "call.started":
            exp.calls[subject] = {name: None for name in _CALL_FIELDS} | data | {"id": subject}
        elif kind in ("call.answered", "call.ended") and subject in exp.calls:
            exp.calls[subject].update(data)
        elif kind == "call.state":
            key = (subject, int(data.pop("seq")))
            exp.transitions[key] = data
        elif kind == "hop.started":
            exp.hops[subject] = {name: None for name in _HOP_FIELDS} | data | {"id": subject}
        elif kind in ("hop.progress", "hop.ended") and subject in exp.hops:
            exp.hops[subject].update(data)
    return exp


def _norm(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _in_range(value: Any, since: datetime | None, until: datetime | None) -> bool:
    text = _norm(value)
    return (since is None or text >= iso(since)) and (until is None or text < iso(until))


def _cross_check(
    conn: Connection, report: VerifyReport, since: datetime | None, until: datetime | None
) -> None:
    exp = _fold(conn, since, until)
    calls_stmt = select(calls_table)
    if since is not None:
        calls_stmt = calls_stmt.where(calls_table.c.started_at >= since)
    if until is not None:
        calls_stmt = calls_stmt.where(calls_table.c.started_at < until)
    in_scope: set[str] = set()
    for row in conn.execute(calls_stmt).mappings():
        call_id = row["id"]
        in_scope.add(call_id)
        report.calls += 1
        logged = exp.calls.pop(call_id, None)
        if logged is None:
            last = None if exp.baseline is None else exp.baseline["last_started_at"]
            if last is not None and _norm(row["started_at"]) <= last:
                report.pre_chain_calls += 1
                exp.pre_chain.add(call_id)
            else:
                report.add(f"calls {call_id}", "not in the audit log (row inserted)")
            continue
        _compare_call(report, call_id, row, logged, exp.redactions.get(call_id))
    for call_id, logged in exp.calls.items():
        if _in_range(logged["started_at"], since, until):
            report.add(f"calls {call_id}", "in the audit log but not in the table (row deleted)")
            in_scope.add(call_id)
    if exp.baseline is not None and since is None and until is None:
        digest = hashlib.sha256("\n".join(sorted(exp.pre_chain)).encode()).hexdigest()
        if (len(exp.pre_chain), digest) != (exp.baseline["calls"], exp.baseline["ids_sha256"]):
            report.add(
                "calls (pre-chain)",
                f"{len(exp.pre_chain)} calls predate the chain but the baseline recorded "
                f"{exp.baseline['calls']} others (a row inserted or deleted before the chain)",
            )
    _check_hops(conn, report, exp, in_scope)
    _check_transitions(conn, report, exp, in_scope)


def _compare_call(
    report: VerifyReport,
    call_id: str,
    row: Any,
    logged: dict[str, Any],
    redaction: dict[str, Any] | None,
) -> None:
    for name in _CALL_FIELDS:
        if name in _CALLER_FIELDS:
            actual = row[name]
            if redaction is not None and name in redaction.get("values", {}):
                if actual != redaction["values"][name]:
                    report.add(f"calls {call_id}", f"{name} differs from the recorded redaction")
            elif commitment(call_id, actual) != logged.get(f"{name}_sha256"):
                report.add(f"calls {call_id}", f"{name} differs from the log (row edited)")
            continue
        if _norm(row[name]) != logged.get(name):
            report.add(
                f"calls {call_id}",
                f"{name} is {_norm(row[name])!r} but the log says {logged.get(name)!r} "
                "(row edited)",
            )


def _chunks(ids: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _check_hops(conn: Connection, report: VerifyReport, exp: _Expected, in_scope: set[str]) -> None:
    seen: set[str] = set()
    for ids in _chunks(sorted(in_scope)):
        for row in conn.execute(select(hops_table).where(hops_table.c.call_id.in_(ids))).mappings():
            report.hops += 1
            seen.add(row["id"])
            logged = exp.hops.get(row["id"])
            where = f"hops {row['id']} (call {row['call_id']})"
            if logged is None:
                if row["call_id"] not in exp.pre_chain:
                    report.add(where, "not in the audit log (row inserted)")
                continue
            for name in _HOP_FIELDS:
                if _norm(row[name]) != logged.get(name):
                    report.add(
                        where,
                        f"{name} is {_norm(row[name])!r} but the log says "
                        f"{logged.get(name)!r} (row edited)",
                    )
    for hop_id, logged in exp.hops.items():
        if logged["call_id"] in in_scope and hop_id not in seen:
            report.add(
                f"hops {hop_id} (call {logged['call_id']})",
                "in the log but not in the table (row deleted)",
            )


def _check_transitions(
    conn: Connection, report: VerifyReport, exp: _Expected, in_scope: set[str]
) -> None:
    seen: set[tuple[str, int]] = set()
    columns = (
        call_transitions_table.c.call_id,
        call_transitions_table.c.seq,
        call_transitions_table.c.from_state,
        call_transitions_table.c.to_state,
        call_transitions_table.c.reason,
        call_transitions_table.c.at,
    )
    for ids in _chunks(sorted(in_scope)):
        stmt = select(*columns).where(call_transitions_table.c.call_id.in_(ids))
        for row in conn.execute(stmt).mappings():
            report.transitions += 1
            key = (row["call_id"], int(row["seq"]))
            seen.add(key)
            logged = exp.transitions.get(key)
            where = f"call_transitions {key[0]} #{key[1]}"
            if logged is None:
                if key[0] not in exp.pre_chain:
                    report.add(where, "not in the audit log (row inserted)")
                continue
            for name in ("from_state", "to_state", "reason", "at"):
                if _norm(row[name]) != logged.get(name):
                    report.add(where, f"{name} differs from the log (row edited)")
    for key in exp.transitions:
        if key[0] in in_scope and key not in seen:
            report.add(
                f"call_transitions {key[0]} #{key[1]}",
                "in the log but not in the table (row deleted)",
            )
