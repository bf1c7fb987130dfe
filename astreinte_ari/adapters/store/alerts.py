"""Alert tables (alerts, alert_events, shift_overrides) and their queries.

The alert itself, and what acknowledging it means, are alerting's
(alerting/model.py); this module keeps them (alerting.ports.AlertRepository).
"""

from __future__ import annotations

import json
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
    exists,
    func,
    insert,
    select,
    update,
)

from astreinte_ari.adapters.store.models import ID_LEN, SHORT_LEN, UTCDateTime, metadata
from astreinte_ari.adapters.store.safe_text import safe_text
from astreinte_ari.alerting.model import OPEN_STATES, Acknowledgement, Alert, ShiftOverride

try:  # another feature's hash-chained audit log; alerts are logged there when present
    from astreinte_ari.adapters.store.audit_log import append_audit_record
except ImportError:  # pragma: no cover - older trees without migration 0003
    append_audit_record = None  # type: ignore[assignment]

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

    def find_for_call(self, kind: str, call_id: str) -> Alert | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(alerts_table)
                .where(alerts_table.c.kind == kind, alerts_table.c.call_id == call_id)
                .limit(1)
            ).first()
            return None if row is None else _alert(row)

    def list(self, *, open_only: bool = True, limit: int | None = 100) -> list[Alert]:
        """Newest first; limit None: all of them."""
        stmt = select(alerts_table).order_by(alerts_table.c.opened_at.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        if open_only:
            stmt = stmt.where(alerts_table.c.state.in_(OPEN_STATES))
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(stmt)]

    def count(self, *, open_only: bool = True) -> int:
        """How many alerts list() would give without a limit."""
        stmt = select(func.count()).select_from(alerts_table)
        if open_only:
            stmt = stmt.where(alerts_table.c.state.in_(OPEN_STATES))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def count_in(self, states: tuple[str, ...]) -> int:
        """Alerts in these states (e.g. ("open",): due and not acknowledged)."""
        stmt = select(func.count()).select_from(alerts_table)
        stmt = stmt.where(alerts_table.c.state.in_(states))
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

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
            _insert_override(conn, override, at)

    def acknowledge(self, ack: Acknowledgement) -> bool:
        """Write `ack` in one transaction if the alert is still open; False otherwise."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(alerts_table)
                .where(alerts_table.c.id == ack.alert_id, alerts_table.c.state.in_(OPEN_STATES))
                .values(
                    state="acked", acked_at=ack.at, acked_by=safe_text(ack.by, 128), ack_via=ack.via
                )
            ).rowcount
            if not done:
                return False
            _add_event(conn, ack.alert_id, ack.at, "acked", ack.by, ack.via, ack.detail)
            if ack.override is not None:
                _insert_override(conn, ack.override, ack.at)
                person = ack.override.person_id
                _add_event(
                    conn, ack.alert_id, ack.at, "override", person, None, "routed this shift"
                )
            if ack.settles is not None:
                settled = conn.execute(
                    update(alerts_table)
                    .where(
                        alerts_table.c.parent_id == ack.settles.parent_id,
                        alerts_table.c.kind == ack.settles.kind,
                        alerts_table.c.state.in_(OPEN_STATES),
                    )
                    .values(state="closed")
                    .returning(alerts_table.c.id)
                ).all()
                for (settled_id,) in settled:
                    who, detail = ack.settles.person_id, ack.settles.detail
                    _add_event(conn, settled_id, ack.at, "closed", who, ack.via, detail)
        return True

    def open_alerts_notified_to(self, team: str, person_id: str) -> list[Alert]:
        """Open alerts of `team` that were sent to `person_id` (by any channel), oldest
        first: what a plain "OK" by SMS reply acknowledges."""
        events = alert_events_table.c
        told = exists().where(  # correlated: the few open alerts, each by its index
            events.alert_id == alerts_table.c.id,
            events.person_id == person_id,
            events.event == "notified",
        )
        stmt = (
            select(alerts_table)
            .where(alerts_table.c.state == "open", alerts_table.c.team == team, told)
            .order_by(alerts_table.c.opened_at)
        )
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(stmt)]

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


def _insert_override(conn: Connection, override: ShiftOverride, at: datetime) -> None:
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
