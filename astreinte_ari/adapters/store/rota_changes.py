"""The rota_changes table: self-service swaps and covers, and their audit records.

Every step (requested, consented, approved, refused, cancelled) changes the row and
appends "rota_change.<step>" to the hash chain in ONE transaction: the trail says who
asked, who agreed, who decided, when and why, or nothing happened. A step only
applies to a request still in the state it was read in (compare-and-set on status
and consent), so two approvals racing from two processes cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update

from astreinte_ari.adapters.store.audit_log import append_audit_record, iso
from astreinte_ari.adapters.store.models import rota_changes_table
from astreinte_ari.adapters.store.safe_text import safe_text
from astreinte_ari.schedule.changes import ChangeNotFound, ChangeRefused, ChangeRequest

KIND_PREFIX = "rota_change."
_T = rota_changes_table.c
TEXT_LEN = 600


def _row_values(request: ChangeRequest) -> dict[str, Any]:
    return {
        "team": request.team,
        "rota": request.rota,
        "kind": request.kind,
        "requester": request.requester,
        "counterpart": request.counterpart,
        "start_at": request.start,
        "end_at": request.end,
        "swap_start_at": request.swap_start,
        "swap_end_at": request.swap_end,
        "reason": safe_text(request.reason, TEXT_LEN),
        "status": request.status,
        "requested_at": request.requested_at,
        "consented_at": request.consented_at,
        "decided_by": request.decided_by,
        "decided_at": request.decided_at,
        "decision_note": safe_text(request.decision_note, TEXT_LEN),
    }


def _from_row(row: Mapping[str, Any]) -> ChangeRequest:
    return ChangeRequest(
        id=row["id"],
        team=row["team"],
        rota=row["rota"],
        kind=row["kind"],
        requester=row["requester"],
        counterpart=row["counterpart"],
        start=row["start_at"],
        end=row["end_at"],
        reason=row["reason"],
        status=row["status"],
        requested_at=row["requested_at"],
        swap_start=row["swap_start_at"],
        swap_end=row["swap_end_at"],
        consented_at=row["consented_at"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        decision_note=row["decision_note"],
    )


def _payload(request: ChangeRequest, actor: str, step: str) -> dict[str, Any]:
    """What the chain keeps of a step: enough to rebuild the request's story."""
    return {
        "step": step,
        "by": safe_text(actor, 128),
        "team": request.team,
        "rota": request.rota,
        "kind": request.kind,
        "requester": request.requester,
        "counterpart": request.counterpart,
        "from": iso(request.start),
        "to": iso(request.end),
        "swap_from": iso(request.swap_start),
        "swap_to": iso(request.swap_end),
        "reason": safe_text(request.reason, TEXT_LEN),
        "status": request.status,
        "note": safe_text(request.decision_note, TEXT_LEN),
        "message": safe_text(f"{request.kind} {request.id} {step} by {actor}", 256),
    }


class RotaChangeStore:
    """Reads and writes change requests; each write is one audited transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, request: ChangeRequest, *, actor: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(rota_changes_table).values(id=request.id, **_row_values(request)))
            append_audit_record(
                conn,
                f"{KIND_PREFIX}requested",
                request.id,
                _payload(request, actor, "requested"),
                at=request.requested_at,
            )

    def update(self, before: ChangeRequest, after: ChangeRequest, *, actor: str, step: str) -> None:
        """Store `after` if the row is still `before` (status and consent), with its
        audit record; ChangeRefused("state") when another process got there first."""
        at = after.decided_at or after.consented_at or after.requested_at
        consent_now = _T.consented_at.is_(None)
        if before.consented_at is not None:
            consent_now = _T.consented_at.is_not(None)
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(rota_changes_table)
                .where(and_(_T.id == before.id, _T.status == before.status, consent_now))
                .values(_row_values(after))
            ).rowcount
            if changed != 1:
                raise ChangeRefused("state", f"change {before.id} was changed meanwhile: reload it")
            append_audit_record(
                conn, f"{KIND_PREFIX}{step}", after.id, _payload(after, actor, step), at=at
            )

    def get(self, request_id: str) -> ChangeRequest:
        with self.engine.connect() as conn:
            row = conn.execute(select(rota_changes_table).where(_T.id == request_id)).mappings()
            found = row.first()
        if found is None:
            raise ChangeNotFound(request_id)
        return _from_row(found)

    def list(
        self,
        *,
        team: str | None = None,
        person: str | None = None,
        status: str | None = None,
    ) -> list[ChangeRequest]:
        """Oldest request first."""
        query = select(rota_changes_table)
        if team is not None:
            query = query.where(_T.team == team)
        if status is not None:
            query = query.where(_T.status == status)
        if person is not None:
            query = query.where((_T.requester == person) | (_T.counterpart == person))
        query = query.order_by(_T.requested_at, _T.id)
        with self.engine.connect() as conn:
            return [_from_row(r) for r in conn.execute(query).mappings()]

    def approved(self, team: str | None = None) -> list[ChangeRequest]:
        return self.list(team=team, status="approved")
