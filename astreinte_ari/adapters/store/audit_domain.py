"""`audit verify`, second half: rebuild the domain rows (calls, hops,
call_transitions) from the audit log and compare them with the tables.

A domain row that differs from what the log says, is missing, or is not in the
log at all was edited, deleted or inserted. Recorded retention actions are part
of the log (a caller ID redaction makes the redacted value the expected one);
calls older than the chain are accepted only as recorded by migration 0003's
"audit.baseline" (their count and a digest of their ids).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, select

from astreinte_ari.adapters.store.audit_log import (
    audit_log_table,
    commitment,
    is_time,
    iso,
    iso_times_fixed,
    select_times_as_text,
)
from astreinte_ari.adapters.store.driver_scan import driver_batches
from astreinte_ari.adapters.store.models import (
    call_transitions_table,
    calls_table,
    hops_table,
)
from astreinte_ari.adapters.store.retention import REDACT_KIND
from astreinte_ari.callflow.audit_events import AuditKind

if TYPE_CHECKING:
    from astreinte_ari.adapters.store.audit_report import VerifyReport

BASELINE_KIND = "audit.baseline"  # written by migration 0003 for pre-existing calls
_FOLD_MARGIN = timedelta(days=1)  # a call's records are written within this of its start

_CALL_FIELDS = [c.name for c in calls_table.columns]
_HOP_FIELDS = [c.name for c in hops_table.columns]
_CALLER_FIELDS = ("caller_number", "caller_name")
_PLAIN_CALL_FIELDS = tuple(name for name in _CALL_FIELDS if name not in _CALLER_FIELDS)
_plain_call_values = operator.itemgetter(*_PLAIN_CALL_FIELDS)
_CALL_BLANK = dict.fromkeys(_CALL_FIELDS)
_HOP_BLANK = dict.fromkeys(_HOP_FIELDS)
_TRANSITION_FIELDS = ("from_state", "to_state", "reason", "at")
_transition_values = operator.itemgetter(*_TRANSITION_FIELDS)
# Plain strings, not the enum's members: each is compared once per record of the log.
_REPLAYED_KINDS = frozenset(kind.value for kind in AuditKind)
_CALL_STATE = AuditKind.CALL_STATE.value
_CALL_STARTED = AuditKind.CALL_STARTED.value
_HOP_STARTED = AuditKind.HOP_STARTED.value
_HOP_UPDATES = frozenset({AuditKind.HOP_PROGRESS.value, AuditKind.HOP_ENDED.value})


# The C scanner without json.loads' wrappers: about half its cost per payload (the
# log's canonical payloads have no whitespace around them; others take json.loads).
_scan_json = json.JSONDecoder().scan_once


@dataclass(slots=True)
class ExpectedRows:
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    hops: dict[str, dict[str, Any]] = field(default_factory=dict)
    transitions: dict[tuple[str, int], tuple[Any, ...]] = field(default_factory=dict)  # fields
    redactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None  # "audit.baseline": calls older than the chain
    baseline_text: str | None = None  # its payload, as the replay met it (the first)
    pre_chain: set[str] = field(default_factory=set)

    def add(self, kind: str, subject: str, payload: str) -> None:
        """Replay one record (in seq order) onto the expected rows."""
        self.add_rows(((kind, subject, payload),))

    def add_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Replay records (kind, subject_id, payload), in seq order, onto the expected
        rows. One loop over a batch, the JSON scanner called inline and the most
        frequent kinds first: this runs for each of a million records."""
        calls, hops, transitions = self.calls, self.hops, self.transitions
        scan = _scan_json
        for kind, subject, payload in rows:
            if kind not in _REPLAYED_KINDS:
                if kind == REDACT_KIND:  # a recorded redaction, whenever it happened
                    self.redactions[subject] = json.loads(payload)
                elif kind == BASELINE_KIND and self.baseline_text is None:
                    self.baseline_text = payload
                continue
            try:  # json.loads(payload), at about half its cost
                data, end = scan(payload, 0)
            except StopIteration:
                end = -1
            if end != len(payload):
                data = json.loads(payload)  # whitespace around it, or its usual error
            if kind == _CALL_STATE:
                try:
                    values = _transition_values(data)
                except KeyError:  # an older record without some field: compared as None
                    values = tuple(data.get(name) for name in _TRANSITION_FIELDS)
                transitions[(subject, int(data["seq"]))] = values
            elif kind in _HOP_UPDATES:
                hop = hops.get(subject)
                if hop is not None:
                    hop.update(data)
            elif kind == _HOP_STARTED:
                hop = _HOP_BLANK.copy()  # every column, None unless logged
                hop.update(data)
                hop["id"] = subject
                hops[subject] = hop
            elif kind == _CALL_STARTED:
                call = _CALL_BLANK.copy()
                call.update(data)
                call["id"] = subject
                calls[subject] = call
            else:
                call = calls.get(subject)
                if call is not None:
                    call.update(data)


def _fold(
    conn: Connection,
    since: datetime | None,
    until: datetime | None,
    replay: ExpectedRows | None,
    *,
    with_transitions: bool = True,
) -> ExpectedRows:
    """The expected domain rows: the logged values replayed in order (`replay`: already
    replayed during the chain check), plus the baseline and the recorded redactions.
    Without transitions: not read at all (compared elsewhere)."""
    log = audit_log_table.c
    # The whole log is replayed (here or during the chain check): the baseline and the
    # redactions come with it, instead of two more scans of the log (no index on kind).
    whole = since is None and until is None
    exp = replay
    if exp is None:
        exp = ExpectedRows()
        kinds = _REPLAYED_KINDS | {BASELINE_KIND, REDACT_KIND} if whole else _REPLAYED_KINDS
        if not with_transitions:
            kinds -= {_CALL_STATE}
        stmt = select(log.kind, log.subject_id, log.payload).where(log.kind.in_(kinds))
        stmt = stmt.order_by(log.seq)
        if since is not None:
            stmt = stmt.where(log.at >= since)
        if until is not None:
            stmt = stmt.where(log.at < until + _FOLD_MARGIN)
        for batch in driver_batches(conn, stmt):  # plain tuples, no SQLAlchemy Row each
            exp.add_rows(batch)
    if not whole:
        stmt = select(log.payload).where(log.kind == BASELINE_KIND).order_by(log.seq).limit(1)
        exp.baseline_text = conn.scalar(stmt)
        redactions = select(log.subject_id, log.payload).where(log.kind == REDACT_KIND)
        for subject, payload in conn.execute(redactions.order_by(log.seq)):
            exp.redactions[subject] = json.loads(payload)  # whenever they happened
    exp.baseline = None if exp.baseline_text is None else json.loads(exp.baseline_text)
    return exp


def _raw_rows(conn: Connection, columns: list[Any], *where: Any) -> Iterator[tuple[Any, ...]]:
    """Rows as tuples, timestamps as `iso()` text (read as the chain check reads them),
    except a time SQLite stores in an unusual form: bytes, never equal to a logged
    value, so such a row takes the slow path, where `_iso_row` reads it."""
    stmt = select_times_as_text(columns, conn.dialect.name).where(*where)
    return itertools.chain.from_iterable(driver_batches(conn, stmt))


def _iso_row(row: tuple[Any, ...], columns: list[Any]) -> tuple[Any, ...]:
    """`row` of `_raw_rows`, every timestamp as `iso()` text."""
    return iso_times_fixed(row, _time_indexes(columns))


def _time_indexes(columns: list[Any]) -> list[int]:
    return [i for i, c in enumerate(columns) if is_time(c)]


def _domain_rows(conn: Connection, table: Table, *where: Any) -> Iterator[dict[str, Any]]:
    names, columns = [c.name for c in table.columns], list(table.columns)
    times = _time_indexes(columns)
    for values in _raw_rows(conn, columns, *where):
        yield dict(zip(names, iso_times_fixed(values, times), strict=True))


def _in_range(text: str, since: datetime | None, until: datetime | None) -> bool:
    """`text`: an `iso()` timestamp, as the log and _domain_rows give them."""
    return (since is None or text >= iso(since)) and (until is None or text < iso(until))


def cross_check(
    conn: Connection,
    report: VerifyReport,
    since: datetime | None,
    until: datetime | None,
    replay: ExpectedRows | None = None,
    transitions: Callable[[], TransitionsCompared] | None = None,
) -> None:
    """`transitions`: the transitions already compared elsewhere (the chain's child,
    over the whole log; waited for when needed), instead of here."""
    exp = _fold(conn, since, until, replay, with_transitions=transitions is None)
    where = []
    if since is not None:
        where.append(calls_table.c.started_at >= since)
    if until is not None:
        where.append(calls_table.c.started_at < until)
    in_scope: set[str] = set()
    for row in _domain_rows(conn, calls_table, *where):
        call_id = row["id"]
        in_scope.add(call_id)
        report.calls += 1
        logged = exp.calls.pop(call_id, None)
        if logged is None:
            last = None if exp.baseline is None else exp.baseline["last_started_at"]
            if last is not None and row["started_at"] <= last:
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
    # Whole database: one scan of each table instead of lookups by call (and a row
    # of a call that exists nowhere is caught too).
    whole = since is None and until is None
    _check_hops(conn, report, exp, in_scope, whole)
    if transitions is None:
        scopes = _scopes(call_transitions_table, in_scope, whole)
        compared = compare_transitions(conn, exp.transitions, scopes)
    else:
        compared = transitions()
    _report_transitions(report, compared, exp.pre_chain, in_scope)


def _compare_call(
    report: VerifyReport,
    call_id: str,
    row: Any,
    logged: dict[str, Any],
    redaction: dict[str, Any] | None,
) -> None:
    # The usual case: every plain column as logged, in one tuple comparison; then
    # only the caller columns need the loop (same findings, same order as the loop).
    plain_ok = _plain_call_values(row) == tuple(map(logged.get, _PLAIN_CALL_FIELDS))
    for name in _CALLER_FIELDS if plain_ok else _CALL_FIELDS:
        if name in _CALLER_FIELDS:
            actual = row[name]
            if redaction is not None and name in redaction.get("values", {}):
                if actual != redaction["values"][name]:
                    report.add(f"calls {call_id}", f"{name} differs from the recorded redaction")
            elif commitment(call_id, actual) != logged.get(f"{name}_sha256"):
                report.add(f"calls {call_id}", f"{name} differs from the log (row edited)")
            continue
        if row[name] != logged.get(name):  # timestamps: already iso() text
            report.add(
                f"calls {call_id}",
                f"{name} is {row[name]!r} but the log says {logged.get(name)!r} (row edited)",
            )


def _scopes(table: Table, in_scope: set[str], whole: bool) -> Iterator[tuple[Any, ...]]:
    """WHERE clauses that together select the rows of the calls in scope."""
    if whole:
        yield ()
        return
    ids = sorted(in_scope)
    for start in range(0, len(ids), 500):
        yield (table.c.call_id.in_(ids[start : start + 500]),)


def _check_hops(
    conn: Connection, report: VerifyReport, exp: ExpectedRows, in_scope: set[str], whole: bool
) -> None:
    unseen = exp.hops  # what is left at the end was logged but is not in the table
    columns = list(hops_table.columns)
    for where in _scopes(hops_table, in_scope, whole):
        for row in _raw_rows(conn, columns, *where):
            report.hops += 1
            logged = unseen.pop(row[0], None)  # row[0]: hops.id
            # the usual case: one tuple comparison, no dict per row
            if logged is not None and row == tuple(map(logged.get, _HOP_FIELDS)):
                continue
            row = _iso_row(row, columns)
            if logged is not None and row == tuple(map(logged.get, _HOP_FIELDS)):
                continue
            actual = dict(zip(_HOP_FIELDS, row, strict=True))
            if logged is None:
                if actual["call_id"] not in exp.pre_chain:
                    report.add(_hop_where(actual), "not in the audit log (row inserted)")
                continue
            for name in _HOP_FIELDS:
                if actual[name] != logged.get(name):
                    report.add(
                        _hop_where(actual),
                        f"{name} is {actual[name]!r} but the log says {logged.get(name)!r} "
                        "(row edited)",
                    )
    for hop_id, logged in unseen.items():
        if logged["call_id"] in in_scope:
            report.add(
                f"hops {hop_id} (call {logged['call_id']})",
                "in the log but not in the table (row deleted)",
            )


# What the transitions table and the log disagree on: ("inserted" | "edited" | "deleted",
# (call_id, seq), the field edited or ""), in table order, then log order.
TransitionDiff = tuple[str, tuple[str, int], str]
TransitionsCompared = tuple[int, list[TransitionDiff]]  # (rows read, what differs)


def compare_transitions(
    conn: Connection, logged: dict[tuple[str, int], tuple[Any, ...]], scopes: Iterable[Any]
) -> TransitionsCompared:
    """The call_transitions rows (of `scopes`, see `_scopes`) against the `logged`
    ones (emptied as they are met). Needs only the log's call.state records, so
    the chain's child can do it during its own pass; `_report_transitions` then
    says which differences are findings."""
    table = call_transitions_table
    columns = [table.c.call_id, table.c.seq, *(table.c[name] for name in _TRANSITION_FIELDS)]
    rows, diffs = 0, []
    for where in scopes:
        for row in _raw_rows(conn, columns, *where):
            rows += 1
            key = (row[0], int(row[1]))
            values = logged.pop(key, None)
            if values == row[2:]:  # the usual case, in one C-level comparison
                continue
            row = _iso_row(row, columns)
            if values == row[2:]:
                continue
            if values is None:
                diffs.append(("inserted", key, ""))
                continue
            for name, actual, expected in zip(_TRANSITION_FIELDS, row[2:], values, strict=True):
                if actual != expected:
                    diffs.append(("edited", key, name))
    diffs.extend(("deleted", key, "") for key in logged)  # logged, not in the table
    return rows, diffs


def _report_transitions(
    report: VerifyReport, compared: TransitionsCompared, pre_chain: set[str], in_scope: set[str]
) -> None:
    rows, diffs = compared
    report.transitions += rows
    for what, key, name in diffs:
        if what == "edited":
            report.add(_transition_where(key), f"{name} differs from the log (row edited)")
        elif what == "inserted":
            if key[0] not in pre_chain:
                report.add(_transition_where(key), "not in the audit log (row inserted)")
        elif key[0] in in_scope:
            report.add(_transition_where(key), "in the log but not in the table (row deleted)")


def _hop_where(row: dict[str, Any]) -> str:
    return f"hops {row['id']} (call {row['call_id']})"


def _transition_where(key: tuple[str, int]) -> str:
    return f"call_transitions {key[0]} #{key[1]}"
