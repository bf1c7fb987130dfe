"""`driver_batches` (the big scans of `audit verify`) must give exactly the rows
SQLAlchemy gives for the same statement, on each backend: same bound values
(datetimes, IN lists), same column values, same order, in batches."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Select, select

from astreinte_ari.adapters.store.audit_log import audit_log_table, select_times_as_text
from astreinte_ari.adapters.store.driver_scan import driver_batches
from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from tests.unit.test_audit_log import CALL_ID, SECOND_CALL, engine, filled  # noqa: F401

LOG = audit_log_table.c


def _statements(dialect: str, since: datetime, until: datetime) -> list[Select[Any]]:
    chain = select_times_as_text(list(audit_log_table.columns)[:7], dialect).order_by(LOG.seq)
    return [
        chain,
        chain.where(LOG.at >= since).where(LOG.at < until),
        select(LOG.kind, LOG.subject_id, LOG.payload)
        .where(LOG.kind.in_(["call.state", "hop.started", "call.ended"]))
        .order_by(LOG.seq),
        select_times_as_text(list(calls_table.columns), dialect).order_by(calls_table.c.id),
        select_times_as_text(list(hops_table.columns), dialect)
        .where(hops_table.c.call_id.in_([CALL_ID, SECOND_CALL]))
        .order_by(hops_table.c.id),
        select_times_as_text(list(call_transitions_table.columns), dialect)
        .where(call_transitions_table.c.call_id.in_([SECOND_CALL]))
        .order_by(call_transitions_table.c.id),
    ]


@pytest.mark.parametrize("batch_rows", [1, 4, 10_000])
def test_rows_are_those_sqlalchemy_gives(filled: Engine, batch_rows: int) -> None:  # noqa: F811
    with filled.connect() as conn:
        times = conn.scalars(select(LOG.at).order_by(LOG.seq)).all()  # as appended: now
        since, until = times[3], times[-3] + timedelta(microseconds=1)
        assert until - since > timedelta(0)
        for stmt in _statements(conn.dialect.name, since, until):
            expected = [tuple(row) for row in conn.execute(stmt)]
            batches = list(driver_batches(conn, stmt, batch_rows))
            assert [tuple(row) for batch in batches for row in batch] == expected
            assert expected, stmt  # each statement selects something: the test can fail
            assert all(0 < len(batch) <= batch_rows for batch in batches)


def test_other_queries_run_while_a_scan_is_open(filled: Engine) -> None:  # noqa: F811
    """The chain check looks a record up (the one before a gap) mid-scan."""
    with filled.connect() as conn:
        stmt = select(LOG.seq).order_by(LOG.seq)
        seen = []
        for batch in driver_batches(conn, stmt, 2):
            for (seq,) in batch:
                seen.append(seq)
                assert conn.scalar(select(LOG.seq).where(LOG.seq == seq)) == seq
        assert seen == list(range(1, len(seen) + 1)) and len(seen) > 10
