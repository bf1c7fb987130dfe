"""Audit trail tables: one row per call, per hop (agent leg) and per state change.

The schema itself is created by the Alembic migrations in <repo>/migrations;
these models must stay in step with them (a test compares the two).
Free text columns hold `safe_text` output (escaped, bounded), hence `Text`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Call(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    did: Mapped[str] = mapped_column(String(SHORT_LEN))
    line_name: Mapped[str] = mapped_column(Text)
    period: Mapped[str] = mapped_column(String(SHORT_LEN))
    caller_number: Mapped[str] = mapped_column(Text)
    caller_name: Mapped[str] = mapped_column(Text)
    channel_id: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    outcome_detail: Mapped[str | None] = mapped_column(Text)
    accepted_hop_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    accepted_person_id: Mapped[str | None] = mapped_column(Text)
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    voicemail_path: Mapped[str | None] = mapped_column(Text)
    voicemail_seconds: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        # What auditors ask: "last night's calls", "calls on line X", "unanswered".
        # Reports read calls by start time and need only these columns (0005).
        Index("ix_calls_report", "started_at", "outcome", "answered_at", "talk_seconds", "id"),
        Index("ix_calls_did_started_at", "did", "started_at"),
        Index("ix_calls_outcome_started_at", "outcome", "started_at"),
    )


class Hop(Base):
    __tablename__ = "hops"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(ID_LEN), ForeignKey("calls.id"))
    seq: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)
    person_id: Mapped[str] = mapped_column(Text)
    person_name: Mapped[str] = mapped_column(Text)
    number: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ringing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    cause_code: Mapped[int | None] = mapped_column(Integer)
    cause_text: Mapped[str | None] = mapped_column(Text)
    dtmf: Mapped[str | None] = mapped_column(Text)

    # Per-hop report counts come from this index alone (0005); also "hops of a call".
    __table_args__ = (Index("ix_hops_report", "call_id", "seq", "person_id", "outcome"),)


class CallTransition(Base):
    __tablename__ = "call_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(ID_LEN), ForeignKey("calls.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    from_state: Mapped[str] = mapped_column(String(SHORT_LEN))
    to_state: Mapped[str] = mapped_column(String(SHORT_LEN))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("call_id", "seq"),)
