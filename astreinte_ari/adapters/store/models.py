"""Audit trail tables: one row per call, per hop (agent leg) and per state change.

The schema itself is created by the Alembic migrations in <repo>/migrations;
these tables must stay in step with them (a test compares the two).
Free text columns hold `safe_text` output (escaped, bounded), hence `Text`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

ID_LEN = 64  # call/hop ids are uuids; room for other generated ids
SHORT_LEN = 64


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so we store naive
    UTC there and re-attach UTC on read. A naive value from the caller is taken
    as UTC (the call flow always emits aware datetimes; this is a safety net).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Stable constraint names so that later migrations can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every table lives on this one MetaData (Alembic env, the models-vs-migrations test).
# Plain Core tables, no ORM: importing sqlalchemy.orm costs the service ~5.6 MB RSS.
# Nullability is spelled out on every column because Core defaults to nullable.
metadata = MetaData(naming_convention=NAMING)

calls_table = Table(
    "calls",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("did", String(SHORT_LEN), nullable=False),
    Column("line_name", Text, nullable=False),
    Column("period", String(SHORT_LEN), nullable=False),
    Column("caller_number", Text, nullable=False),
    Column("caller_name", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("outcome", String(SHORT_LEN), nullable=True),
    Column("outcome_detail", Text, nullable=True),
    Column("accepted_hop_id", String(ID_LEN), nullable=True),
    Column("accepted_person_id", Text, nullable=True),
    Column("talk_seconds", Float, nullable=True),
    Column("voicemail_path", Text, nullable=True),
    Column("voicemail_seconds", Float, nullable=True),
    # The node whose Asterisk carried the call (0010); NULL on older rows.
    Column("node", String(SHORT_LEN), nullable=True),
    # The bridged conversation's recording (lines with record_calls; migration 0011).
    Column("recording_path", Text, nullable=True),
    Column("recording_seconds", Float, nullable=True),
    # What auditors ask: "last night's calls", "calls on line X", "unanswered".
    # Reports read calls by start time and need only these columns (0005).
    Index("ix_calls_report", "started_at", "outcome", "answered_at", "talk_seconds", "id"),
    Index("ix_calls_did_started_at", "did", "started_at"),
    Index("ix_calls_outcome_started_at", "outcome", "started_at"),
    # The calls still open, for the reconciliation with the PBX. Migration 0006 makes
    # it partial (WHERE ended_at IS NULL); spelled out here with sqlite_where /
    # postgresql_where it would make SQLAlchemy import both dialects in the service
    # (+3.5 MB RSS), and Alembic does not compare index predicates anyway.
    Index("ix_calls_open", "channel_id"),
    Index("ix_calls_node_open", "node", "ended_at"),
)

hops_table = Table(
    "hops",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("call_id", String(ID_LEN), ForeignKey("calls.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("label", Text, nullable=False),
    Column("person_id", Text, nullable=False),
    Column("person_name", Text, nullable=False),
    Column("number", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ringing_at", UTCDateTime, nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("accepted_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("outcome", String(SHORT_LEN), nullable=True),
    Column("cause_code", Integer, nullable=True),
    Column("cause_text", Text, nullable=True),
    Column("dtmf", Text, nullable=True),
    # How the target was reached ("trunk", "sip") and what was dialled (0009); NULL on
    # older rows. `number` holds the target as people read it ("sip:desk-101").
    Column("target_kind", String(SHORT_LEN), nullable=True),
    Column("target", Text, nullable=True),
    # Per-hop report counts come from this index alone (0005); also "hops of a call".
    Index("ix_hops_report", "call_id", "seq", "person_id", "outcome"),
)

call_transitions_table = Table(
    "call_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(ID_LEN), ForeignKey("calls.id"), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("from_state", String(SHORT_LEN), nullable=False),
    Column("to_state", String(SHORT_LEN), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    UniqueConstraint("call_id", "seq"),
)

# One row per service (node) sharing this database (0010): its heartbeat, whether
# its Asterisk is connected, whether it leads (docs/cluster.md).
cluster_nodes_table = Table(
    "cluster_nodes",
    metadata,
    Column("node", String(SHORT_LEN), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("ari_connected", Boolean, nullable=False),
    Column("ari_connected_since", UTCDateTime, nullable=True),
    Column("ari_lost_at", UTCDateTime, nullable=True),
    Column("is_leader", Boolean, nullable=False),
    Column("pid", Text, nullable=True),
    Column("host", Text, nullable=True),
)

# Self-service swaps and covers (0012, schedule/changes.py): one row per request, its
# state changed in place; every step is also in the audit chain (same transaction).
rota_changes_table = Table(
    "rota_changes",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("team", Text, nullable=False),
    Column("rota", Text, nullable=False),
    Column("kind", String(SHORT_LEN), nullable=False),
    Column("requester", Text, nullable=False),
    Column("counterpart", Text, nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("swap_start_at", UTCDateTime, nullable=True),
    Column("swap_end_at", UTCDateTime, nullable=True),
    Column("reason", Text, nullable=False),
    Column("status", String(SHORT_LEN), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("consented_at", UTCDateTime, nullable=True),
    Column("decided_by", Text, nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("decision_note", Text, nullable=False),
    # The service polls the approved ones of every team; lists filter by status.
    Index("ix_rota_changes_status_team", "status", "team"),
)
