"""Calls say where the recording of their bridged conversation is, and how long.

Lines with `record_calls: true` record the conversation between the caller and the
agent (docs/recording.md). The file's path and length are set by the audit event
"call.recording" (step "stored"); retention deletes the file after
`retention.call_recordings_days` (6 months by default) and records it in the chain.
Rows written before this revision keep NULL: nothing was recorded then.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("recording_path", sa.Text(), nullable=True))
    op.add_column("calls", sa.Column("recording_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("recording_seconds")
        batch.drop_column("recording_path")
