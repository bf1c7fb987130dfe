"""A small index of the calls still open, for the reconciliation with the PBX.

After every gap (restart, ARI reconnect, database back) and periodically, the
service looks for open calls that nobody handles any more; a partial index
keeps that a read of a handful of rows however large the trail grows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("ended_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_calls_open",
        "calls",
        ["channel_id"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_calls_open", table_name="calls")
