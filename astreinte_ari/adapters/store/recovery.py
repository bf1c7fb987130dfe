"""Read back where calls stand: restart recovery and the reconciliation sweep."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Row, and_, func, or_, select

from astreinte_ari.adapters.store.models import call_transitions_table, calls_table, hops_table
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.callflow.reconcile import OpenCall, OpenHop
from astreinte_ari.callflow.recovery import ResumePoint


def resume_point_for_channel(engine: Engine, channel_id: str) -> ResumePoint | None:
    """The unfinished call whose caller is on `channel_id`, if the trail has one."""
    call_id = call_id_for_channel(channel_id)
    with engine.connect() as conn:
        call = conn.execute(
            select(
                calls_table.c.id,
                calls_table.c.accepted_hop_id,
                calls_table.c.accepted_person_id,
                calls_table.c.answered_at,
            ).where(calls_table.c.id == call_id, calls_table.c.ended_at.is_(None))
        ).first()
        if call is None:
            return None
        last_seq = conn.execute(
            select(func.coalesce(func.max(call_transitions_table.c.seq), 0)).where(
                call_transitions_table.c.call_id == call.id
            )
        ).scalar_one()
        menu_reason = conn.execute(  # the caller's choice, if the call had a menu
            select(call_transitions_table.c.reason)
            .where(
                call_transitions_table.c.call_id == call.id,
                call_transitions_table.c.from_state == CallState.MENU.value,
            )
            .order_by(call_transitions_table.c.seq)
            .limit(1)
        ).scalar()
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
        menu_reason=menu_reason,
    )


def next_hop_seq(engine: Engine, call_id: str) -> int:
    """The number a new hop of `call_id` takes: a voice alert's call-back is audited
    as one more hop of the call it answers, after those already on record."""
    with engine.connect() as conn:
        current = conn.scalar(
            select(func.max(hops_table.c.seq)).where(hops_table.c.call_id == call_id)
        )
    return int(current or 0) + 1


def open_calls(engine: Engine, node: str | None = None) -> list[OpenCall]:
    """Every call of the trail without an ending (index ix_calls_open), with what the
    reconciliation needs to close it: last state, open hops, latest known time.
    `node`: only the calls that node's Asterisk carries, and those of no known node
    (written before 0010): another node's calls are not on this node's PBX."""
    where = [calls_table.c.ended_at.is_(None)]
    if node is not None:
        where.append(or_(calls_table.c.node == node, calls_table.c.node.is_(None)))
    with engine.connect() as conn:
        calls = conn.execute(
            select(
                calls_table.c.id,
                calls_table.c.channel_id,
                calls_table.c.started_at,
                calls_table.c.answered_at,
                calls_table.c.accepted_hop_id,
                calls_table.c.accepted_person_id,
            ).where(*where)
        ).all()
        if not calls:
            return []
        ids = [c.id for c in calls]
        last = (
            select(
                call_transitions_table.c.call_id,
                func.max(call_transitions_table.c.seq).label("seq"),
            )
            .where(call_transitions_table.c.call_id.in_(ids))
            .group_by(call_transitions_table.c.call_id)
            .subquery()
        )
        transitions = conn.execute(
            select(
                call_transitions_table.c.call_id,
                call_transitions_table.c.seq,
                call_transitions_table.c.to_state,
                call_transitions_table.c.at,
            ).join(
                last,
                and_(
                    call_transitions_table.c.call_id == last.c.call_id,
                    call_transitions_table.c.seq == last.c.seq,
                ),
            )
        ).all()
        hops = conn.execute(
            select(
                hops_table.c.id,
                hops_table.c.call_id,
                hops_table.c.seq,
                hops_table.c.person_id,
                hops_table.c.started_at,
                hops_table.c.answered_at,
                hops_table.c.ended_at,
            ).where(hops_table.c.call_id.in_(ids))
        ).all()
    last_of = {t.call_id: t for t in transitions}
    hops_of: dict[str, list[Row[Any]]] = {}
    for hop in hops:
        hops_of.setdefault(hop.call_id, []).append(hop)
    result = []
    for call in calls:
        transition = last_of.get(call.id)
        call_hops = hops_of.get(call.id, [])
        times = [call.started_at, call.answered_at]
        times.append(transition.at if transition else None)
        times.extend(h.started_at for h in call_hops)
        times.extend(h.answered_at for h in call_hops)
        result.append(
            OpenCall(
                call_id=call.id,
                channel_id=call.channel_id,
                started_at=call.started_at,
                last_seq=transition.seq if transition else 0,
                last_state=CallState(transition.to_state) if transition else None,
                last_event_at=max(t for t in times if t is not None),
                answered_at=call.answered_at,
                accepted_hop_id=call.accepted_hop_id,
                accepted_person_id=call.accepted_person_id,
                open_hops=tuple(
                    OpenHop(h.id, h.seq, h.person_id, h.answered_at)
                    for h in sorted(call_hops, key=lambda h: h.seq)
                    if h.ended_at is None
                ),
            )
        )
    return result


def open_calls_of_node(engine: Engine, node: str) -> list[OpenCall]:
    """The open calls a (lost) node's Asterisk carried: only that node's, never the
    unattributed ones."""
    ids = _ids_of_node(engine, node)
    return [c for c in open_calls(engine, node) if c.call_id in ids] if ids else []


def _ids_of_node(engine: Engine, node: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(calls_table.c.id).where(
                calls_table.c.node == node, calls_table.c.ended_at.is_(None)
            )
        ).all()
    return {r.id for r in rows}
