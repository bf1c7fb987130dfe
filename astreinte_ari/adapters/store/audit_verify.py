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

import contextlib
import gc
import hashlib
import multiprocessing
import operator
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.pool import StaticPool

from astreinte_ari.adapters.store.audit_checkpoints_verify import (
    CheckpointPolicy,
    verify_checkpoints,
)
from astreinte_ari.adapters.store.audit_domain import (
    ExpectedRows,
    TransitionsCompared,
    compare_transitions,
    cross_check,
)
from astreinte_ari.adapters.store.audit_log import (
    GENESIS_HASH,
    audit_log_table,
    json_quote,
    read_head,
    select_times_as_text,
    stored_iso,
)
from astreinte_ari.adapters.store.audit_report import VerifyReport
from astreinte_ari.adapters.store.driver_scan import driver_batches
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.models import calls_table
from astreinte_ari.callflow.audit_events import AuditKind

# A call that has not ended this long after it started is a finding: the trail
# does not say what became of it (the service reconciles within minutes).
DEFAULT_OPEN_AFTER = timedelta(hours=1)

_replayed_fields = operator.itemgetter(2, 3, 4)  # kind, subject_id, payload of a chain row
_CALL_STATE = AuditKind.CALL_STATE.value


def verify(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    check_domain: bool = True,
    open_after: timedelta | None = DEFAULT_OPEN_AFTER,
    now: datetime | None = None,
    checkpoints: CheckpointPolicy | None = None,
    second_process: bool = True,
) -> VerifyReport:
    """Check the chain over records appended in [since, until) and the domain rows
    of calls started in that range; the whole database when both are None. Calls
    still open `open_after` their start are findings too (None: not checked).
    `checkpoints`: check the signed checkpoints against the chain (and a witness).
    `second_process`: check the chain in a forked child meanwhile (where it can: a
    file or server database, two cores, and no other thread in this process)."""
    # A child checks the chain while this process replays the log onto the domain rows.
    # Whole database, to even out the halves: the child also compares the transitions
    # (with the call.state records it reads anyway), this process the checkpoints.
    now = now or datetime.now(UTC)
    child = None
    whole = since is None and until is None
    signs_here = False
    if check_domain and second_process:
        signs_here = whole and checkpoints is not None
        job = (since, until, None if signs_here else checkpoints, now, whole)
        child = _ChainChild.start(engine, job)
    report, signed = VerifyReport(), VerifyReport()
    try:
        with _cyclic_gc_paused(), engine.connect() as conn:
            if child is not None and signs_here:
                verify_checkpoints(conn, signed, checkpoints, now)  # type: ignore[arg-type]
            replay = None
            if child is None:  # one pass: the replay rides on the chain's (whole database)
                if check_domain and whole:
                    replay = ExpectedRows()
                _verify_chain(conn, report, since, until, replay)
            if check_domain:
                transitions = None
                if child is not None and whole:
                    transitions = lambda: child.reports(conn)[2]  # noqa: E731
                cross_check(conn, report, since, until, replay, transitions)
            # Freed while the collector is still off: alive when it resumes, the replay's
            # million objects would be scanned by the full collection that follows (~1 s).
            replay = None
            if open_after is not None:
                _never_ended(conn, report, now - open_after, since, until)
            if child is None:
                if checkpoints is not None:
                    verify_checkpoints(conn, report, checkpoints, now)
                return report
            chain, from_child, _ = child.reports(conn)
            return _merged(chain, report, signed if signs_here else from_child)
    finally:
        if child is not None:
            child.close()


# since, until, checkpoint policy, now, and whether to compare the transitions too
_ChainJob = tuple[datetime | None, datetime | None, CheckpointPolicy | None, datetime, bool]
_ChainOutcome = tuple[VerifyReport, VerifyReport, TransitionsCompared | None]


def _chain_and_checkpoints(conn: Connection, job: _ChainJob) -> _ChainOutcome:
    """The chain's findings, the signed checkpoints', and (whole database) the
    transitions compared with the log's call.state records: the child's half."""
    since, until, checkpoints, now, transitions = job
    chain, signed = VerifyReport(), VerifyReport()
    states = ExpectedRows() if transitions else None
    _verify_chain(conn, chain, since, until, states, only_kind=_CALL_STATE)
    compared = None
    if states is not None:
        compared = compare_transitions(conn, states.transitions, [()])  # every row
    if checkpoints is not None:
        verify_checkpoints(conn, signed, checkpoints, now)
    return chain, signed, compared


class _ChainChild:
    """`_chain_and_checkpoints` in a forked process, over a connection of its own."""

    def __init__(self, process: Any, receive: Any, job: _ChainJob) -> None:
        self._process, self._receive, self._job = process, receive, job
        self._outcome: _ChainOutcome | None = None

    @classmethod
    def start(cls, engine: Engine, job: _ChainJob) -> _ChainChild | None:
        """None where a child cannot help or work: one core, no fork, or one shared
        connection (StaticPool: an in-memory database lives in it)."""
        if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return None
        if not only_thread():
            return None
        if isinstance(engine.pool, StaticPool):
            return None
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_chain_child, args=(engine.url, job, send), daemon=True)
        process.start()
        send.close()
        return cls(process, receive, job)

    def reports(self, conn: Connection) -> _ChainOutcome:
        """The child's reports (waited for once); if it failed, the work is done here
        instead, so an error surfaces exactly as without a child."""
        if self._outcome is None:
            try:
                outcome = self._receive.recv()
            except EOFError:  # the child died without a word
                outcome = None
            self._outcome = outcome or _chain_and_checkpoints(conn, self._job)
        return self._outcome

    def close(self) -> None:
        self._receive.close()
        if self._process.is_alive():  # verify failed before reading the reports
            self._process.terminate()
        self._process.join()


def only_thread() -> bool:
    """Is this process's calling thread its only one? fork() copies that thread alone:
    a lock another thread held at that instant (logging's, the allocator's, a
    driver's) stays held in the child for ever, and the parent waits for it for ever
    (seen: `audit verify` run inside a process whose SMTP and HTTP test servers had
    threads). Linux says exactly in /proc (native threads too); elsewhere: no child."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _chain_child(url: Any, job: _ChainJob, send: Any) -> None:
    """In the forked child. Its own engine: the inherited one's connections are the
    parent's (left untouched and unfreed until the child's os._exit)."""
    engine = create_db_engine(url)
    try:
        # A million batch rows allocated and freed: the cyclic collector would run
        # thousands of times for nothing (~0.5 s); the process ends right after.
        with _cyclic_gc_paused(), engine.connect() as conn:
            send.send(_chain_and_checkpoints(conn, job))
    except Exception:  # the parent does the work itself and raises the error
        send.send(None)
    finally:
        send.close()
        engine.dispose()


def _merged(chain: VerifyReport, domain: VerifyReport, signed: VerifyReport) -> VerifyReport:
    """One report, its findings in the order one pass reports them: the chain's, the
    domain's (and calls never ended), the signed checkpoints'."""
    for part in (domain, signed):
        for problem in part.problems:
            chain.add(problem.where, problem.what)
        chain.problem_count += part.problem_count - len(part.problems)
    for name in ("calls", "hops", "transitions", "pre_chain_calls", "open_calls"):
        setattr(chain, name, getattr(domain, name))
    chain.checkpoints, chain.witnessed = signed.checkpoints, signed.witnessed
    return chain


def _never_ended(
    conn: Connection,
    report: VerifyReport,
    started_before: datetime,
    since: datetime | None,
    until: datetime | None,
) -> None:
    calls = calls_table.c
    stmt = select(calls.id, calls.started_at).where(
        calls.ended_at.is_(None), calls.started_at < started_before
    )
    if since is not None:
        stmt = stmt.where(calls.started_at >= since)
    if until is not None:
        stmt = stmt.where(calls.started_at < until)
    for call_id, started_at in conn.execute(stmt.order_by(calls.started_at)):
        report.open_calls += 1
        report.add(
            f"calls {call_id}",
            f"never ended: started {started_at:%Y-%m-%d %H:%M:%S} UTC and still open "
            "(nothing says what became of the caller; a running service closes such calls "
            "from the PBX's records)",
        )


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """The replay keeps about a million acyclic dicts and tuples alive, and Python's
    cyclic collector re-scans them over and over as they pile up: 5 of 12 s over a
    million records. Reference counting still frees everything; the collector
    resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- the chain ----------------------------------------------------------------------


def iter_records(conn: Connection, since: datetime | None, until: datetime | None) -> Iterator[Any]:
    stmt = select(audit_log_table).order_by(audit_log_table.c.seq)
    if since is not None:
        stmt = stmt.where(audit_log_table.c.at >= since)
    if until is not None:
        stmt = stmt.where(audit_log_table.c.at < until)
    result = conn.execution_options(stream_results=True, yield_per=5000).execute(stmt)
    yield from result


def _chain_batches(
    conn: Connection, since: datetime | None, until: datetime | None
) -> Iterator[Sequence[Sequence[Any]]]:
    """Batches of (seq, at, kind, subject_id, payload, prev_hash, hash) in seq order,
    `at` as `select_times_as_text` reads it: `iso()` text, or on SQLite bytes for
    an unusual stored form, which `_verify_chain` reads while it builds the hashed
    text."""
    table = audit_log_table.c
    columns = [
        table.seq, table.at, table.kind, table.subject_id, table.payload, table.prev_hash,
        table.hash,
    ]  # fmt: skip
    stmt = select_times_as_text(columns, conn.dialect.name).order_by(table.seq)
    if since is not None:
        stmt = stmt.where(table.at >= since)
    if until is not None:
        stmt = stmt.where(table.at < until)
    # Batches of plain tuples from the driver: the loop over a list runs in C, no
    # generator resumes and no SQLAlchemy Row per record.
    yield from driver_batches(conn, stmt)


def _verify_chain(
    conn: Connection,
    report: VerifyReport,
    since: datetime | None,
    until: datetime | None,
    replay: ExpectedRows | None = None,
    only_kind: str | None = None,
) -> None:
    """Each record's hash recomputed and its link to the one before checked; the
    records (of `only_kind`, if given) replayed onto `replay` too.

    The loop is `record_hash` inlined (a million records: every
    call, attribute lookup and intermediate tuple shows); the unit tests hold it to
    `record_hash` byte for byte."""
    prev_seq: int | None = None
    prev_hash: str | None = None
    records = 0
    # Both databases send iso() text (`select_times_as_text`), but SQLite sends bytes
    # for a time stored in another form than SQLAlchemy's: `stored_iso` reads it.
    times_to_iso = conn.dialect.name != "postgresql"
    quote, sha256 = json_quote, hashlib.sha256
    quoted_kinds: dict[str, str] = {}  # a few dozen kinds over a million records
    for batch in _chain_batches(conn, since, until):
        for seq, at, kind, subject_id, payload, stored_prev, stored_hash in batch:
            if prev_seq is None or seq != prev_seq + 1:
                where = (seq, kind, subject_id)
                prev_hash = _first_or_after_gap(
                    conn, report, where, prev_seq, prev_hash, stored_prev
                )
            if stored_prev != prev_hash:
                report.add(
                    _where(seq, kind, subject_id),
                    "prev_hash is not the previous record's hash (inserted or removed)",
                )
            if times_to_iso and at.__class__ is not str:  # SQLite sent an unusual form
                at = stored_iso(at.decode() if at.__class__ is bytes else at)
            # record_hash(seq, at, kind, subject_id, payload, stored_prev)
            quoted_kind = quoted_kinds.get(kind)
            if quoted_kind is None:
                quoted_kind = quoted_kinds[kind] = quote(kind)
            material = f"{seq}|{at}|{quoted_kind}|{quote(subject_id)}|{payload}|{stored_prev}"
            if sha256(material.encode("ascii", "backslashreplace")).hexdigest() != stored_hash:
                report.add(
                    _where(seq, kind, subject_id), "content does not match its hash (record edited)"
                )
            prev_seq, prev_hash = seq, stored_hash
            records += 1
        if replay is not None:  # the batch's (kind, subject_id, payload), in seq order
            rows = map(_replayed_fields, batch)
            if only_kind is not None:
                rows = (row for row in rows if row[0] == only_kind)
            replay.add_rows(rows)
    report.records += records
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


def _first_or_after_gap(
    conn: Connection,
    report: VerifyReport,
    where: tuple[int, str, str],
    prev_seq: int | None,
    prev_hash: str | None,
    stored_prev: str,
) -> str | None:
    """The first record checked, or one after a gap: report what is missing before
    it. Returns the hash it must link to."""
    seq = where[0]
    if prev_seq is not None:
        report.add(_where(*where), f"records seq {prev_seq + 1}..{seq - 1} are missing (deleted)")
        return prev_hash
    report.first_seq = seq
    found = hash_before(conn, seq)
    if found is None:
        report.add(_where(*where), f"record seq {seq - 1} before it is missing (deleted)")
        return stored_prev
    return found


def _where(seq: int, kind: str, subject_id: str) -> str:
    return f"audit_log seq {seq} ({kind} {subject_id})"


def hash_before(conn: Connection, seq: int) -> str | None:
    if seq == 1:
        return GENESIS_HASH
    found = conn.scalar(select(audit_log_table.c.hash).where(audit_log_table.c.seq == seq - 1))
    return None if found is None else str(found)
