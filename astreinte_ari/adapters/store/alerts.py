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
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    insert,
    select,
    update,
)

from astreinte_ari.adapters.store.models import ID_LEN, SHORT_LEN, UTCDateTime, metadata
from astreinte_ari.adapters.store.safe_text import safe_text

try:  # another feature's hash-chained audit log; alerts are logged there when present
    from astreinte_ari.adapters.store.audit_log import append_audit_record
except ImportError:  # pragma: no cover - older trees without migration 0003
    append_audit_record = None  # type: ignore[assignment]

# Alert states: scheduled (shift start not yet due), open, acked, expired
# (shift start deadline passed), exhausted (max rounds), closed.
OPEN_STATES = ("scheduled", "open")


alerts_table = Table(
    "alerts",
    metadata,
    Column("id", String(ID_LEN), primary_key=True),
    Column("kind", String(SHORT_LEN), nullable=False),  # missed_call|shift_start|shift_cover
    Column("state", String(SHORT_LEN), nullable=False),
    Column("policy", String(SHORT_LEN), nullable=False),
    Column("chain", Text, nullable=False),  # JSON list of person ids, in escalation order
    Column("opened_at", UTCDateTime, nullable=False),  # base of the schedule
    Column("next_step", Integer, nullable=False, default=0),
    Column("next_at", UTCDateTime, nullable=True),
    Column("deadline_at", UTCDateTime, nullable=True),
    Column("call_id", String(ID_LEN), nullable=True),
    Column("line_did", String(SHORT_LEN), nullable=True),
    Column("line_name", Text, nullable=True),
    Column("language", String(16), nullable=True),
    Column("caller_number", Text, nullable=True),  # safe_text of untrusted input
    Column("voicemail_path", Text, nullable=True),
    Column("team", String(SHORT_LEN), nullable=True),
    Column("rota", String(SHORT_LEN), nullable=True),
    Column("shift_start", UTCDateTime, nullable=True),
    Column("shift_end", UTCDateTime, nullable=True),
    Column("parent_id", String(ID_LEN), nullable=True),
    Column("acked_at", UTCDateTime, nullable=True),
    Column("acked_by", Text, nullable=True),
    Column("ack_via", String(SHORT_LEN), nullable=True),
    Index("ix_alerts_state_opened_at", "state", "opened_at"),
    Index("ix_alerts_kind_team_rota_shift_start", "kind", "team", "rota", "shift_start"),
)

alert_events_table = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(ID_LEN), ForeignKey("alerts.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(SHORT_LEN), nullable=False),  # opened, notified, failed, acked...
    Column("person_id", Text, nullable=True),
    Column("channel", String(SHORT_LEN), nullable=True),
    Column("detail", Text, nullable=True),
)

# A person routed calls instead of the rota for [start, end): a recorded replacement.
shift_overrides_table = Table(
    "shift_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("team", String(SHORT_LEN), nullable=False),
    Column("rota", String(SHORT_LEN), nullable=False),
    Column("person_id", Text, nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("alert_id", String(ID_LEN), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_shift_overrides_team_rota_end", "team", "rota", "end"),
)


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
            conn.execute(insert(alerts_table).values(**values))

    def get(self, alert_id: str) -> Alert | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(alerts_table).where(alerts_table.c.id == alert_id)).first()
            if row is None:
                rows = conn.execute(
                    select(alerts_table).where(alerts_table.c.id.startswith(alert_id)).limit(2)
                ).all()
                row = rows[0] if len(rows) == 1 and len(alert_id) >= 4 else None
            return None if row is None else _alert(row)

    def find_shift(self, kind: str, team: str, rota: str, start: datetime) -> Alert | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(alerts_table).where(
                    alerts_table.c.kind == kind,
                    alerts_table.c.team == team,
                    alerts_table.c.rota == rota,
                    alerts_table.c.shift_start == start,
                )
            ).first()
            return None if row is None else _alert(row)

    def list(self, *, open_only: bool = True, limit: int = 100) -> list[Alert]:
        stmt = select(alerts_table).order_by(alerts_table.c.opened_at.desc()).limit(limit)
        if open_only:
            stmt = stmt.where(alerts_table.c.state.in_(OPEN_STATES))
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(stmt)]

    def update(self, alert_id: str, *, only_if_open: bool = False, **values: object) -> bool:
        """Returns False when nothing was updated (e.g. already acknowledged)."""
        stmt = update(alerts_table).where(alerts_table.c.id == alert_id).values(**values)
        if only_if_open:
            stmt = stmt.where(alerts_table.c.state.in_(OPEN_STATES))
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
            select(alert_events_table)
            .where(alert_events_table.c.alert_id == alert_id)
            .order_by(alert_events_table.c.id)
        )
        with self.engine.connect() as conn:
            return [
                (e.at, e.event, e.person_id, e.channel, e.detail or "") for e in conn.execute(stmt)
            ]

    def add_override(self, override: ShiftOverride, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(shift_overrides_table).values(
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
            select(shift_overrides_table)
            .where(and_(shift_overrides_table.c.end > since))
            .order_by(shift_overrides_table.c.id)
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
        insert(alert_events_table).values(
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
            update(alerts_table)
            .where(alerts_table.c.id == alert.id, alerts_table.c.state.in_(OPEN_STATES))
            .values(state="acked", acked_at=now, acked_by=safe_text(by, 128), ack_via=via)
        ).rowcount
        if not done:
            return None
        _add_event(conn, alert.id, now, "acked", by, via, None)
        if alert.kind == "shift_cover" and alert.team and alert.rota and alert.shift_end:
            start = max(now, alert.shift_start or now)
            conn.execute(
                insert(shift_overrides_table).values(
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
            # The supervisor's "shift not confirmed" alert has its answer: the shift is
            # covered. It stops reminding (closed, with who covered it).
            missed = conn.execute(
                update(alerts_table)
                .where(
                    alerts_table.c.parent_id == alert.parent_id,
                    alerts_table.c.kind == "shift_missed",
                    alerts_table.c.state.in_(OPEN_STATES),
                )
                .values(state="closed")
                .returning(alerts_table.c.id)
            ).all()
            for (missed_id,) in missed:
                detail = f"shift covered: {alert.chain[0]} acknowledged the cover"
                _add_event(conn, missed_id, now, "closed", alert.chain[0], via, detail)
    return store.get(alert.id)
