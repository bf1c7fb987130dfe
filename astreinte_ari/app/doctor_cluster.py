"""`astreinte doctor`'s cluster line: this node's name and role, every node's heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

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


def system_name_problem(
    node: str, system_name: str, shared_with: list[str]
) -> tuple[str, str] | None:
    """(problem, fix) with this node's Asterisk `systemname` in a cluster, or None (pure).
    Call ids derive from the channel's UNIQUEID, which only the systemname prefix makes
    unique across nodes: `shared_with` are the other nodes whose calls carry it too."""
    fix = (
        f"set systemname = {node} in asterisk.conf [options] (distinct per node), restart Asterisk"
    )
    if not system_name:
        return (
            "Asterisk has no systemname: two nodes' channels can get the same UNIQUEID, "
            "hence the same call id in the shared trail",
            fix,
        )
    if system_name.startswith("astreinte-"):
        return (f"systemname {system_name!r}: the astreinte- prefix is the service's own", fix)
    if shared_with:
        return (f"systemname {system_name!r} is also used by node(s) {', '.join(shared_with)}", fix)
    return None


def _nodes_sharing(engine: Engine, node: str, system_name: str) -> list[str]:
    """Other nodes whose calls' channel ids carry this systemname prefix."""
    from sqlalchemy import select

    from astreinte_ari.adapters.store.models import calls_table

    calls = calls_table.c
    query = (
        select(calls.node)
        .where(calls.node.is_not(None), calls.node != node)
        .where(calls.channel_id.startswith(f"{system_name}-", autoescape=True))
        .distinct()
        .limit(3)
    )
    with engine.connect() as conn:
        return sorted(str(n) for n in conn.scalars(query))


def check_cluster(config: AppConfig, system_name: str | None = None) -> Check:
    """`system_name`: this node's Asterisk systemname as ARI reported it (None: not
    reached, not checked)."""
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
        clustered = len({r.node for r in rows} | {node}) > 1
        shared = _nodes_sharing(engine, node, system_name) if clustered and system_name else []
    except SQLAlchemyError:
        return Check("cluster", False, f"node {node}: cluster_nodes unreadable", "")
    finally:
        engine.dispose()
    ok, detail, fix = describe_nodes(
        node, rows, datetime.now(UTC), config.cluster.node_lost_after_seconds
    )
    problem = system_name_problem(node, system_name, shared) if clustered else None
    if system_name is not None and problem is not None:
        return Check("cluster", False, f"{detail}; {problem[0]}", problem[1])
    return Check("cluster", ok, detail, fix)
