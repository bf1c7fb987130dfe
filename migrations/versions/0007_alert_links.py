"""Short link ids for the links sent by SMS and email.

A signed token carried alert, person, purpose and expiry in the URL itself:
about 140 characters per link, two per SMS. A random 12-character id that the
service looks up keeps an SMS to one or two segments and makes a link revocable.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_links",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_alert_links_alert_id_alerts"),
        sa.PrimaryKeyConstraint("id", name="pk_alert_links"),
    )
    op.create_index("ix_alert_links_alert_id", "alert_links", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_links_alert_id", table_name="alert_links")
    op.drop_table("alert_links")
