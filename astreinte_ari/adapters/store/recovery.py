"""Read back where an earlier process left a call (restart recovery)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from astreinte_ari.adapters.store.models import Call, CallTransition, Hop
from astreinte_ari.callflow.recovery import ResumePoint


def resume_point_for_channel(engine: Engine, channel_id: str) -> ResumePoint | None:
    """The unfinished call whose caller is on `channel_id`, if the trail has one."""
    with engine.connect() as conn:
        call = conn.execute(
            select(Call.id, Call.accepted_hop_id, Call.accepted_person_id, Call.answered_at)
            .where(Call.channel_id == channel_id, Call.ended_at.is_(None))
            .order_by(Call.started_at.desc())
            .limit(1)
        ).first()
        if call is None:
            return None
        last_seq = conn.execute(
            select(func.coalesce(func.max(CallTransition.seq), 0)).where(
                CallTransition.call_id == call.id
            )
        ).scalar_one()
        hops = conn.execute(
            select(Hop.id, Hop.seq, Hop.ended_at).where(Hop.call_id == call.id).order_by(Hop.seq)
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
