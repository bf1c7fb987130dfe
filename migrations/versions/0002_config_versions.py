"""Accepted configuration versions (config_versions): hash, time, source, diff, text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out by hand, like 0001: this revision stays what it was when models change.
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "config_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("accepted_at", TS, nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("diff_summary", sa.Text(), nullable=False),
        sa.Column("config_text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_config_versions"),
        sa.UniqueConstraint("content_hash", name="uq_config_versions_content_hash"),
    )
    op.create_index("ix_config_versions_accepted_at", "config_versions", ["accepted_at"])


def downgrade() -> None:
    op.drop_table("config_versions")
