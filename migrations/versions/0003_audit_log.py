"""Hash-chained audit log (audit_log) and its head row (audit_log_head).

Revision ID: 0003
Revises: 0001
Create Date: 2026-02-01
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
GENESIS_HASH = "0" * 64  # same as astreinte_ari.adapters.store.audit_log.GENESIS_HASH


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
        sa.UniqueConstraint("dedup_key", name="uq_audit_log_dedup_key"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_subject_id", "audit_log", ["subject_id"])
    head = op.create_table(
        "audit_log_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log_head"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    _baseline()


def _iso(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def _baseline() -> None:
    """Calls already in the database cannot be chained after the fact: record which
    ones they are (count + digest of their ids) as the chain's first record, so
    that `audit verify` accepts exactly those and no row inserted later.
    Hash and canonical JSON as in astreinte_ari/adapters/store/audit_log.py (copied:
    a migration must not change when the code does)."""
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, started_at FROM calls ORDER BY id")).all()
    if not rows:
        return
    ids = [str(r[0]) for r in rows]
    latest = max(r[1] if isinstance(r[1], datetime) else datetime.fromisoformat(r[1])
                 for r in rows)  # fmt: skip
    payload = json.dumps(
        {"calls": len(ids), "ids_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
         "last_started_at": _iso(latest)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True,
    )  # fmt: skip
    at = datetime.now(UTC).replace(microsecond=0)
    material = "|".join(("1", _iso(at), json.dumps("audit.baseline"), json.dumps("calls"),
                         payload, GENESIS_HASH))  # fmt: skip
    digest = hashlib.sha256(material.encode("ascii", "backslashreplace")).hexdigest()
    bind.execute(
        sa.text("INSERT INTO audit_log (seq, at, kind, subject_id, payload, prev_hash, hash) "
                "VALUES (1, :at, 'audit.baseline', 'calls', :payload, :prev, :hash)"),
        {"at": at if bind.dialect.name != "sqlite" else at.replace(tzinfo=None)
         .isoformat(sep=" ", timespec="microseconds"),
         "payload": payload, "prev": GENESIS_HASH, "hash": digest},
    )  # fmt: skip
    bind.execute(sa.text("UPDATE audit_log_head SET seq = 1, hash = :hash WHERE id = 1"),
                 {"hash": digest})  # fmt: skip


def downgrade() -> None:
    op.drop_table("audit_log_head")
    op.drop_table("audit_log")
