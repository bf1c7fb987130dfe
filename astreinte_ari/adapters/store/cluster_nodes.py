"""The cluster_nodes table: each service's heartbeat, and the leader's reads of it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from astreinte_ari.adapters.store.audit_log import append_audit_record, iso
from astreinte_ari.adapters.store.models import calls_table, cluster_nodes_table
from astreinte_ari.cluster.node_lost import NodeRow

_NODES = cluster_nodes_table.c


@dataclass(frozen=True, slots=True)
class Heartbeat:
    node: str
    started_at: datetime
    at: datetime
    ari_connected: bool
    ari_connected_since: datetime | None
    ari_lost_at: datetime | None
    is_leader: bool


def write_heartbeat(engine: Engine, beat: Heartbeat) -> None:
    """Create or refresh this node's row (one statement, one short transaction)."""
    values: dict[str, Any] = {
        "started_at": beat.started_at,
        "last_seen": beat.at,
        "ari_connected": beat.ari_connected,
        "ari_connected_since": beat.ari_connected_since,
        "ari_lost_at": beat.ari_lost_at,
        "is_leader": beat.is_leader,
        "pid": str(os.getpid()),
        "host": socket.gethostname()[:255],
    }
    with engine.begin() as conn:
        updated = conn.execute(
            update(cluster_nodes_table).where(_NODES.node == beat.node).values(values)
        ).rowcount
        if not updated:  # only this node writes its row: no race with another writer
            conn.execute(insert(cluster_nodes_table).values(node=beat.node, **values))


def claim_leadership(engine: Engine, node: str, at: datetime) -> None:
    """The new leader's row says so at once, every other row stops saying it (a frozen
    leader's row would otherwise still name it), and the change is audited."""
    with engine.begin() as conn:
        conn.execute(
            update(cluster_nodes_table)
            .where(_NODES.node != node, _NODES.is_leader.is_(True))
            .values(is_leader=False)
        )
        conn.execute(
            update(cluster_nodes_table)
            .where(_NODES.node == node)
            .values(is_leader=True, last_seen=at)
        )
        append_audit_record(
            conn, "cluster.leadership", node, {"event": "acquired", "node": node, "at": iso(at)}
        )


def record_step_down(engine: Engine, node: str, at: datetime, why: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(cluster_nodes_table).where(_NODES.node == node).values(is_leader=False))
        append_audit_record(
            conn,
            "cluster.leadership",
            node,
            {"event": "lost", "node": node, "why": why[:200], "at": iso(at)},
        )


def record_node_lost(
    engine: Engine, node: str, since: datetime, why: str, call_ids: list[str], by: str
) -> None:
    with engine.begin() as conn:
        append_audit_record(
            conn,
            "cluster.node_lost",
            node,
            {
                "node": node,
                "since": iso(since),
                "why": why[:200],
                "closed_calls": sorted(call_ids),
                "by": by,
            },
        )


def read_nodes(engine: Engine) -> list[NodeRow]:
    with engine.connect() as conn:
        rows = conn.execute(select(cluster_nodes_table).order_by(_NODES.node)).all()
    return [
        NodeRow(
            node=r.node,
            started_at=r.started_at,
            last_seen=r.last_seen,
            ari_connected=bool(r.ari_connected),
            ari_connected_since=r.ari_connected_since,
            ari_lost_at=r.ari_lost_at,
            is_leader=bool(r.is_leader),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class CallParty:
    """What a missed-call alert needs of a call beyond its state."""

    did: str
    caller_number: str
    caller_name: str


def call_parties(engine: Engine, call_ids: list[str]) -> dict[str, CallParty]:
    if not call_ids:
        return {}
    c = calls_table.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.id, c.did, c.caller_number, c.caller_name).where(c.id.in_(call_ids))
        ).all()
    return {r.id: CallParty(r.did, r.caller_number, r.caller_name) for r in rows}
