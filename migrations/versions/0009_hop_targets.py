"""Hops say how their target was reached: kind (trunk, sip) and the dial string.

A hop may ring a SIP endpoint of the PBX (a desk phone) as well as a number
through the trunk (issue 14). `number` keeps the target as people read it
("+33612345678", "sip:desk-101"); `target_kind` and `target` record how it was
reached and what Asterisk was asked to dial. Rows written before this revision
keep NULL there: their kind was not recorded (it was always the trunk).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("hops", sa.Column("target_kind", sa.String(64), nullable=True))
    op.add_column("hops", sa.Column("target", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hops") as batch:
        batch.drop_column("target")
        batch.drop_column("target_kind")
