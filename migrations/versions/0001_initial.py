"""Initial audit trail: calls, hops, call_transitions.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out by hand (not imported from models.py) so that this revision stays
# what it was when models change later. tests/unit/test_store.py checks that
# models and migrations agree.
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("did", sa.String(64), nullable=False),
        sa.Column("line_name", sa.Text(), nullable=False),
        sa.Column("period", sa.String(64), nullable=False),
        sa.Column("caller_number", sa.Text(), nullable=False),
        sa.Column("caller_name", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("outcome_detail", sa.Text(), nullable=True),
        sa.Column("accepted_hop_id", sa.String(64), nullable=True),
        sa.Column("accepted_person_id", sa.Text(), nullable=True),
        sa.Column("talk_seconds", sa.Float(), nullable=True),
        sa.Column("voicemail_path", sa.Text(), nullable=True),
        sa.Column("voicemail_seconds", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_did_started_at", "calls", ["did", "started_at"])
    op.create_index("ix_calls_outcome_started_at", "calls", ["outcome", "started_at"])

    op.create_table(
        "hops",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Text(), nullable=False),
        sa.Column("person_name", sa.Text(), nullable=False),
        sa.Column("number", sa.Text(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ringing_at", TS, nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("accepted_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("outcome", sa.String(64), nullable=True),
        sa.Column("cause_code", sa.Integer(), nullable=True),
        sa.Column("cause_text", sa.Text(), nullable=True),
        sa.Column("dtmf", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name="fk_hops_call_id_calls"),
        sa.PrimaryKeyConstraint("id", name="pk_hops"),
    )
    op.create_index("ix_hops_call_id", "hops", ["call_id"])

    op.create_table(
        "call_transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(64), nullable=False),
        sa.Column("to_state", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name="fk_call_transitions_call_id_calls"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_call_transitions"),
        sa.UniqueConstraint("call_id", "seq", name="uq_call_transitions_call_id_seq"),
    )
    op.create_index("ix_call_transitions_call_id", "call_transitions", ["call_id"])


def downgrade() -> None:
    op.drop_table("call_transitions")
    op.drop_table("hops")
    op.drop_table("calls")
