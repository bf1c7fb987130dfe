"""Who runs the scheduled work when several services share one database (pure).

On PostgreSQL the leader is the service holding one advisory lock on a dedicated
connection; followers try to take it every tick. The lock alone is not enough:
a frozen leader (SIGSTOP, a stalled VM) keeps its connection, hence the lock,
while doing nothing. Its heartbeat row goes stale, and once it is older than
`node_lost_after_seconds` a follower has the server end the holder's session
(pg_terminate_backend) and takes the lock. A leader that thaws finds its lock
connection dead and steps down; until it has confirmed the lock again (the
lease below), it runs nothing.

This module decides; adapters/store/leader_lock.py and app/cluster.py act.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"


@dataclass(frozen=True, slots=True)
class LockProbe:
    """What one tick saw. Leader: did the lock connection answer and still hold the
    lock (`held`)? Follower: did pg_try_advisory_lock succeed (`acquired`)?"""

    held: bool = False
    acquired: bool = False
    # The freshest heartbeat age (s) of a node marked leader in cluster_nodes, None if
    # no node is; `holder_is_me`: that row is ours (a stale row of our own past).
    holder_age_s: float | None = None
    holder_is_me: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    role: Role
    changed: bool = False  # leadership acquired or lost at this tick
    terminate_holder: bool = False  # end the lock holder's session: it is frozen


def decide(role: Role, probe: LockProbe, lost_after_s: float) -> Decision:
    """The next role, and whether a frozen holder's session must be ended."""
    if role is Role.LEADER:
        if probe.held:
            return Decision(Role.LEADER)
        return Decision(Role.FOLLOWER, changed=True)
    if probe.acquired:
        return Decision(Role.LEADER, changed=True)
    frozen = (
        probe.holder_age_s is not None
        and probe.holder_age_s > lost_after_s
        and not probe.holder_is_me
    )
    return Decision(Role.FOLLOWER, terminate_holder=frozen)


def lease_s(tick_s: float, lost_after_s: float) -> float:
    """How long a confirmation of the lock lets the leader run jobs. Shorter than
    node_lost_after_seconds by far: a leader frozen long enough to be replaced
    always finds its lease expired when it thaws, before its timers fire."""
    return max(1.5 * tick_s, min(3.0, lost_after_s / 3))


def leading(
    role: Role,
    confirmed_at: float | None,
    now: float,
    lease: float,
    acquired_at: float | None = None,
) -> bool:
    """May this process run a job now? `confirmed_at`/`now`: monotonic seconds (the
    monotonic clock keeps counting while a process is stopped).

    `acquired_at`: when this process took the lock. For a lease after that it runs
    nothing: the previous holder, whose session ended while it ran (a cut
    connection), learns so only at its next tick and runs on its own lease until
    then; two leaders at once would both pick up a due wake-up (docs/cluster.md)."""
    if acquired_at is not None and now - acquired_at < lease:
        return False
    return role is Role.LEADER and confirmed_at is not None and now - confirmed_at <= lease
