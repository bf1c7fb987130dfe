"""Covering indexes for reports: the KPI queries read only index pages.

Measured on SQLite with 1 M calls / 2 M hops (bench/bench_reports.py): the
volume, time-to-answer and per-hop queries went from 18.6 s to about 3.5 s,
because each call and hop was otherwise a random table-page read. The new
indexes start with the columns of the ones they replace, so nothing that used
those loses its index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CALLS_REPORT = ["started_at", "outcome", "answered_at", "talk_seconds", "id"]
HOPS_REPORT = ["call_id", "seq", "person_id", "outcome"]


def upgrade() -> None:
    op.create_index("ix_calls_report", "calls", CALLS_REPORT)
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.create_index("ix_hops_report", "hops", HOPS_REPORT)
    op.drop_index("ix_hops_call_id", table_name="hops")


def downgrade() -> None:
    op.create_index("ix_hops_call_id", "hops", ["call_id"])
    op.drop_index("ix_hops_report", table_name="hops")
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.drop_index("ix_calls_report", table_name="calls")
