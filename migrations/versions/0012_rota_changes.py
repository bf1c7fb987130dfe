"""Self-service rota changes: swaps and covers asked for, agreed, approved or refused.

One row per request (schedule/changes.py); its status changes in place
(requested -> approved | refused | cancelled) and every step is also appended to
the audit chain in the same transaction. The service overlays the approved ones on
the YAML's overrides (docs/rotas.md).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rota_changes",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("team", sa.Text(), nullable=False),
        sa.Column("rota", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("requester", sa.Text(), nullable=False),
        sa.Column("counterpart", sa.Text(), nullable=False),
        sa.Column("start_at", TS, nullable=False),
        sa.Column("end_at", TS, nullable=False),
        sa.Column("swap_start_at", TS, nullable=True),
        sa.Column("swap_end_at", TS, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(64), nullable=False),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("consented_at", TS, nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rota_changes"),
    )
    op.create_index("ix_rota_changes_status_team", "rota_changes", ["status", "team"])


def downgrade() -> None:
    op.drop_index("ix_rota_changes_status_team", table_name="rota_changes")
    op.drop_table("rota_changes")
