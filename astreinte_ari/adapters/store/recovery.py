"""Read back where an earlier process left a call (restart recovery)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.callflow.recovery import ResumePoint


def resume_point_for_channel(engine: Engine, channel_id: str) -> ResumePoint | None:
    """The unfinished call whose caller is on `channel_id`, if the trail has one."""
    with engine.connect() as conn:
        call = conn.execute(
            select(
                calls_table.c.id,
                calls_table.c.accepted_hop_id,
                calls_table.c.accepted_person_id,
                calls_table.c.answered_at,
            )
            .where(calls_table.c.channel_id == channel_id, calls_table.c.ended_at.is_(None))
            .order_by(calls_table.c.started_at.desc())
            .limit(1)
        ).first()
        if call is None:
            return None
        last_seq = conn.execute(
            select(func.coalesce(func.max(call_transitions_table.c.seq), 0)).where(
                call_transitions_table.c.call_id == call.id
            )
        ).scalar_one()
        hops = conn.execute(
            select(hops_table.c.id, hops_table.c.seq, hops_table.c.ended_at)
            .where(hops_table.c.call_id == call.id)
            .order_by(hops_table.c.seq)
        ).all()
    return ResumePoint(
        call_id=call.id,
        last_seq=int(last_seq),
        hops_tried=max((h.seq for h in hops), default=0),
        open_hop_ids=tuple(
            h.id for h in hops if h.ended_at is None and h.id != call.accepted_hop_id
        ),
        accepted_hop_id=call.accepted_hop_id,
        accepted_person_id=call.accepted_person_id,
        answered_at=call.answered_at,
    )
