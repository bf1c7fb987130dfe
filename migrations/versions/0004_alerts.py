"""Alerts: alerts, alert_events, shift_overrides.

APScheduler's own `apscheduler_jobs` table (persistent reminders) is created by
APScheduler's SQLAlchemyJobStore on first start, in the same database.

Revision ID: 0004
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("next_step", sa.Integer(), nullable=False),
        sa.Column("next_at", TS, nullable=True),
        sa.Column("deadline_at", TS, nullable=True),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("line_did", sa.String(64), nullable=True),
        sa.Column("line_name", sa.Text(), nullable=True),
        sa.Column("language", sa.String(16), nullable=True),
        sa.Column("caller_number", sa.Text(), nullable=True),
        sa.Column("voicemail_path", sa.Text(), nullable=True),
        sa.Column("team", sa.String(64), nullable=True),
        sa.Column("rota", sa.String(64), nullable=True),
        sa.Column("shift_start", TS, nullable=True),
        sa.Column("shift_end", TS, nullable=True),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("acked_at", TS, nullable=True),
        sa.Column("acked_by", sa.Text(), nullable=True),
        sa.Column("ack_via", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_state_opened_at", "alerts", ["state", "opened_at"])
    op.create_index(
        "ix_alerts_kind_team_rota_shift_start", "alerts", ["kind", "team", "rota", "shift_start"]
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_alert_events_alert_id_alerts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_events"),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])
    op.create_table(
        "shift_overrides",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team", sa.String(64), nullable=False),
        sa.Column("rota", sa.String(64), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("start", TS, nullable=False),
        sa.Column("end", TS, nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_shift_overrides"),
    )
    op.create_index("ix_shift_overrides_team_rota_end", "shift_overrides", ["team", "rota", "end"])


def downgrade() -> None:
    op.drop_table("shift_overrides")
    op.drop_table("alert_events")
    op.drop_table("alerts")
