"""Alert tables (alerts, alert_events, shift_overrides) and their queries.

An alert is a tracked obligation: it stays `open` (re-notified, escalated)
until someone acknowledges it. `next_step` is the index of the next
notification in the policy's sequence (alerting/policy.py), so a restart
resumes exactly where the previous process stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from astreinte_ari.adapters.store.models import ID_LEN, SHORT_LEN, Base, UTCDateTime
from astreinte_ari.adapters.store.safe_text import safe_text

try:  # another feature's hash-chained audit log; alerts are logged there when present
    from astreinte_ari.adapters.store.audit_log import append_audit_record
except ImportError:  # pragma: no cover - older trees without migration 0003
    append_audit_record = None  # type: ignore[assignment]

# Alert states: scheduled (shift start not yet due), open, acked, expired
# (shift start deadline passed), exhausted (max rounds), closed.
OPEN_STATES = ("scheduled", "open")


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(SHORT_LEN))  # missed_call|shift_start|shift_cover
    state: Mapped[str] = mapped_column(String(SHORT_LEN))
    policy: Mapped[str] = mapped_column(String(SHORT_LEN))
    chain: Mapped[str] = mapped_column(Text)  # JSON list of person ids, in escalation order
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)  # base of the schedule
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    call_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    line_did: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    line_name: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    caller_number: Mapped[str | None] = mapped_column(Text)  # safe_text of untrusted input
    voicemail_path: Mapped[str | None] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    rota: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    shift_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shift_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parent_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_by: Mapped[str | None] = mapped_column(Text)
    ack_via: Mapped[str | None] = mapped_column(String(SHORT_LEN))

    __table_args__ = (
        Index("ix_alerts_state_opened_at", "state", "opened_at"),
        Index("ix_alerts_kind_team_rota_shift_start", "kind", "team", "rota", "shift_start"),
    )


class AlertEventRow(Base):
    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(ID_LEN), ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(SHORT_LEN))  # opened, notified, failed, acked...
    person_id: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(SHORT_LEN))
    detail: Mapped[str | None] = mapped_column(Text)


class ShiftOverrideRow(Base):
    """A person routed calls instead of the rota for [start, end): a recorded replacement."""

    __tablename__ = "shift_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team: Mapped[str] = mapped_column(String(SHORT_LEN))
    rota: Mapped[str] = mapped_column(String(SHORT_LEN))
    person_id: Mapped[str] = mapped_column(Text)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    alert_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_shift_overrides_team_rota_end", "team", "rota", "end"),)


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    kind: str
    state: str
    policy: str
    chain: tuple[str, ...]
    opened_at: datetime
    next_step: int
    next_at: datetime | None
    deadline_at: datetime | None
    call_id: str | None
    line_did: str | None
    line_name: str | None
    language: str | None
    caller_number: str | None
    voicemail_path: str | None
    team: str | None
    rota: str | None
    shift_start: datetime | None
    shift_end: datetime | None
    parent_id: str | None
    acked_at: datetime | None
    acked_by: str | None
    ack_via: str | None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class ShiftOverride:
    team: str
    rota: str
    person_id: str
    start: datetime
    end: datetime
    alert_id: str | None


def _alert(row: Any) -> Alert:
    return Alert(
        id=row.id,
        kind=row.kind,
        state=row.state,
        policy=row.policy,
        chain=tuple(json.loads(row.chain)),
        opened_at=row.opened_at,
        next_step=row.next_step,
        next_at=row.next_at,
        deadline_at=row.deadline_at,
        call_id=row.call_id,
        line_did=row.line_did,
        line_name=row.line_name,
        language=row.language,
        caller_number=row.caller_number,
        voicemail_path=row.voicemail_path,
        team=row.team,
        rota=row.rota,
        shift_start=row.shift_start,
        shift_end=row.shift_end,
        parent_id=row.parent_id,
        acked_at=row.acked_at,
        acked_by=row.acked_by,
        ack_via=row.ack_via,
    )


class AlertStore:
    """Synchronous queries; the service calls them through asyncio.to_thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert_alert(self, values: dict[str, object]) -> None:
        values = dict(values)
        values["chain"] = json.dumps(list(values["chain"]))  # type: ignore[arg-type]
        if values.get("caller_number") is not None:
            values["caller_number"] = safe_text(str(values["caller_number"]), 64)
        with self.engine.begin() as conn:
            conn.execute(insert(AlertRow).values(**values))

    def get(self, alert_id: str) -> Alert | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(AlertRow.__table__).where(AlertRow.id == alert_id)).first()
            if row is None:
                rows = conn.execute(
                    select(AlertRow.__table__).where(AlertRow.id.startswith(alert_id)).limit(2)
                ).all()
                row = rows[0] if len(rows) == 1 and len(alert_id) >= 4 else None
            return None if row is None else _alert(row)

    def find_shift(self, kind: str, team: str, rota: str, start: datetime) -> Alert | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(AlertRow.__table__).where(
                    AlertRow.kind == kind,
                    AlertRow.team == team,
                    AlertRow.rota == rota,
                    AlertRow.shift_start == start,
                )
            ).first()
            return None if row is None else _alert(row)

    def list(self, *, open_only: bool = True, limit: int = 100) -> list[Alert]:
        stmt = select(AlertRow.__table__).order_by(AlertRow.opened_at.desc()).limit(limit)
        if open_only:
            stmt = stmt.where(AlertRow.state.in_(OPEN_STATES))
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(stmt)]

    def update(self, alert_id: str, *, only_if_open: bool = False, **values: object) -> bool:
        """Returns False when nothing was updated (e.g. already acknowledged)."""
        stmt = update(AlertRow).where(AlertRow.id == alert_id).values(**values)
        if only_if_open:
            stmt = stmt.where(AlertRow.state.in_(OPEN_STATES))
        with self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)

    def add_event(
        self,
        alert_id: str,
        at: datetime,
        event: str,
        *,
        person_id: str | None = None,
        channel: str | None = None,
        detail: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            _add_event(conn, alert_id, at, event, person_id, channel, detail)

    def events(self, alert_id: str) -> list[tuple[datetime, str, str | None, str | None, str]]:
        stmt = (
            select(AlertEventRow.__table__)
            .where(AlertEventRow.alert_id == alert_id)
            .order_by(AlertEventRow.id)
        )
        with self.engine.connect() as conn:
            return [
                (e.at, e.event, e.person_id, e.channel, e.detail or "") for e in conn.execute(stmt)
            ]

    def add_override(self, override: ShiftOverride, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(ShiftOverrideRow).values(
                    team=override.team,
                    rota=override.rota,
                    person_id=override.person_id,
                    start=override.start,
                    end=override.end,
                    alert_id=override.alert_id,
                    created_at=at,
                )
            )

    def overrides(self, since: datetime) -> list[ShiftOverride]:
        stmt = (
            select(ShiftOverrideRow.__table__)
            .where(and_(ShiftOverrideRow.end > since))
            .order_by(ShiftOverrideRow.id)
        )
        with self.engine.connect() as conn:
            return [
                ShiftOverride(r.team, r.rota, r.person_id, r.start, r.end, r.alert_id)
                for r in conn.execute(stmt)
            ]


def _add_event(
    conn: Connection,
    alert_id: str,
    at: datetime,
    event: str,
    person_id: str | None,
    channel: str | None,
    detail: str | None,
) -> None:
    text = None if detail is None else safe_text(detail, 1024)
    conn.execute(
        insert(AlertEventRow).values(
            alert_id=alert_id, at=at, event=event, person_id=person_id, channel=channel, detail=text
        )
    )
    if append_audit_record is not None:  # the tamper-evident log (migration 0003), same commit
        payload = {"person": person_id, "channel": channel, "detail": text, "at": at.isoformat()}
        append_audit_record(conn, f"alert.{event}"[:64], alert_id, payload, at=at)


def ack_alert(
    store: AlertStore, alert_id: str, *, by: str, via: str, now: datetime
) -> Alert | None:
    """Acknowledge an open alert (any process: service, CLI). None if not open/unknown.

    Acknowledging a shift_cover alert records the replacement as on call for the
    rest of that shift (a row in shift_overrides, which the router honours).
    """
    alert = store.get(alert_id)
    if alert is None or not alert.is_open:
        return None
    with store.engine.begin() as conn:
        done = conn.execute(
            update(AlertRow)
            .where(AlertRow.id == alert.id, AlertRow.state.in_(OPEN_STATES))
            .values(state="acked", acked_at=now, acked_by=safe_text(by, 128), ack_via=via)
        ).rowcount
        if not done:
            return None
        _add_event(conn, alert.id, now, "acked", by, via, None)
        if alert.kind == "shift_cover" and alert.team and alert.rota and alert.shift_end:
            start = max(now, alert.shift_start or now)
            conn.execute(
                insert(ShiftOverrideRow).values(
                    team=alert.team,
                    rota=alert.rota,
                    person_id=alert.chain[0],
                    start=start,
                    end=alert.shift_end,
                    alert_id=alert.id,
                    created_at=now,
                )
            )
            _add_event(conn, alert.id, now, "override", alert.chain[0], None, "routed this shift")
    return store.get(alert.id)
