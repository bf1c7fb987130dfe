"""`astreinte doctor`'s cluster line: this node's name and role, every node's heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime

from astreinte_ari.adapters.pbx.checks import Check
from astreinte_ari.cluster.node_lost import NodeRow, node_loss
from astreinte_ari.config.model import AppConfig


def describe_nodes(
    node: str, rows: list[NodeRow], now: datetime, lost_after_s: float
) -> tuple[bool, str, str]:
    """(ok, detail, fix) of the cluster view `rows` seen from `node` (pure)."""
    mine = next((r for r in rows if r.node == node), None)
    if mine is None:
        role = "not running (no heartbeat in cluster_nodes)"
    elif node_loss(mine, now, lost_after_s) is not None:
        # This node's own service is stopped (doctor often runs then): not a failure.
        role = f"not running (last heartbeat {(now - mine.last_seen).total_seconds():.0f}s ago)"
    else:
        role = "leader" if mine.is_leader else "follower"
    parts = []
    lost = []
    for r in rows:
        age = (now - r.last_seen).total_seconds()
        flags = ["ARI up" if r.ari_connected else "ARI down"]
        if r.is_leader:
            flags.append("leader")
        if node_loss(r, now, lost_after_s) is not None:
            flags.append("LOST")
            if r.node != node:
                lost.append(r.node)
        parts.append(f"{r.node} seen {age:.0f}s ago ({', '.join(flags)})")
    detail = f"node {node}: {role}; {len(rows)} node(s): " + ("; ".join(parts) or "none")
    fix = ""
    if lost:
        names = ", ".join(lost)
        fix = (
            f"start the service on {names}, or if a node is gone for good: "
            f"DELETE FROM cluster_nodes WHERE node = '<name>'"
        )
    return not lost, detail, fix


def check_cluster(config: AppConfig) -> Check:
    from sqlalchemy.exc import SQLAlchemyError

    from astreinte_ari.adapters.store.cluster_nodes import read_nodes
    from astreinte_ari.adapters.store.migrate import create_db_engine

    try:
        node = config.node_name()
    except ValueError as exc:
        return Check("cluster", False, str(exc), "fix ASTREINTE_NODE_NAME")
    try:
        engine = create_db_engine(config.database_url())
    except Exception as exc:  # the database check above says why
        return Check("cluster", False, f"node {node}: database unusable ({exc})", "")
    try:
        rows = read_nodes(engine)
    except SQLAlchemyError:
        return Check("cluster", False, f"node {node}: cluster_nodes unreadable", "")
    finally:
        engine.dispose()
    ok, detail, fix = describe_nodes(
        node, rows, datetime.now(UTC), config.cluster.node_lost_after_seconds
    )
    return Check("cluster", ok, detail, fix)
