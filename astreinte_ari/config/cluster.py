"""Several nodes (one Asterisk + one service each) sharing one database: `cluster:`.

    cluster:
      node: pbx-a              # default: the host name; env ASTREINTE_NODE_NAME wins
      heartbeat_seconds: 2     # each service writes its row of cluster_nodes this often
      node_lost_after_seconds: 10  # a silent (or ARI-less) node's calls are closed after this

The section is optional: a single node needs none of it (docs/cluster.md).
"""

from __future__ import annotations

import os
import re
import socket

from pydantic import Field, field_validator, model_validator

from astreinte_ari.config.fields import Frozen

NODE_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
NODE_ENV = "ASTREINTE_NODE_NAME"


class ClusterConfig(Frozen):
    node: str | None = None
    heartbeat_seconds: float = Field(2.0, gt=0, le=60)
    node_lost_after_seconds: float = Field(10.0, gt=0, le=3600)

    @field_validator("node")
    @classmethod
    def _node_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(NODE_NAME_PATTERN, value):
            raise ValueError(f"{value[:80]!r} is not a node name: 1-64 of A-Z a-z 0-9 _ . -")
        return value

    @model_validator(mode="after")
    def _lost_after_beats(self) -> ClusterConfig:
        # A node must miss a few heartbeats before it counts as lost: a single late
        # write (a busy database, a GC pause) must never close live calls.
        if self.node_lost_after_seconds < 3 * self.heartbeat_seconds:
            raise ValueError(
                f"node_lost_after_seconds ({self.node_lost_after_seconds:g}) must be at least "
                f"3 x heartbeat_seconds ({self.heartbeat_seconds:g})"
            )
        return self


def node_name(cluster: ClusterConfig, environ: dict[str, str] | None = None) -> str:
    """This node's name: env ASTREINTE_NODE_NAME, then cluster.node, then the host name
    (its first label, cut to what a node name may hold). Raises ValueError on a bad env."""
    env = (os.environ if environ is None else environ).get(NODE_ENV, "").strip()
    if env:
        if not re.fullmatch(NODE_NAME_PATTERN, env):
            raise ValueError(f"{NODE_ENV}={env[:80]!r}: a node name is 1-64 of A-Z a-z 0-9 _ . -")
        return env
    if cluster.node:
        return cluster.node
    host = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname().split(".")[0])[:64]
    return host or "node"
