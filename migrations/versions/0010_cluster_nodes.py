"""Several nodes share one database: who is alive, who leads, which node took a call.

Each service (one per Asterisk) heartbeats its row of `cluster_nodes`; the
leader (PostgreSQL advisory lock) runs the scheduled work and closes the calls
of a node that went silent or lost its Asterisk. `calls.node` names the node
whose Asterisk carried the call; NULL on rows written before this revision.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cluster_nodes",
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("ari_connected", sa.Boolean(), nullable=False),
        sa.Column("ari_connected_since", TS, nullable=True),
        sa.Column("ari_lost_at", TS, nullable=True),
        sa.Column("is_leader", sa.Boolean(), nullable=False),
        sa.Column("pid", sa.Text(), nullable=True),
        sa.Column("host", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("node", name="pk_cluster_nodes"),
    )
    op.add_column("calls", sa.Column("node", sa.String(64), nullable=True))
    # The node-lost sweep reads the open calls of one node.
    op.create_index("ix_calls_node_open", "calls", ["node", "ended_at"])


def downgrade() -> None:
    op.drop_index("ix_calls_node_open", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("node")
    op.drop_table("cluster_nodes")
