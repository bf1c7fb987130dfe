"""What test_cluster_nodes.py and test_cluster_sqlite.py share: short cluster timings
and the wall clock the nodes read."""

from __future__ import annotations

from datetime import UTC, datetime

from astreinte_ari.config.cluster import ClusterConfig

CONFIG = ClusterConfig(heartbeat_seconds=0.5, node_lost_after_seconds=3.0)


def utcnow() -> datetime:
    return datetime.now(UTC)
