"""A node that went silent, or whose Asterisk is gone: its open calls are closed (pure).

The leader sweeps cluster_nodes every heartbeat. A node is lost when its row
has not been written for `node_lost_after_seconds` (its service died or froze),
or when it reports its Asterisk disconnected for that long (the service is fine,
its PBX is not). A service that merely reconnects to its Asterisk within that
time loses nothing. The calls the trail still has open on a lost node are closed
with outcome `node_lost`, at the last moment the node was known well: nobody
can say more about them, and a caller who was still waiting is a missed call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.callflow.audit_events import AuditEvent, CallEnded, HopEnded, StateChanged
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.reconcile import OpenCall


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One row of cluster_nodes."""

    node: str
    started_at: datetime
    last_seen: datetime
    ari_connected: bool
    ari_connected_since: datetime | None
    ari_lost_at: datetime | None
    is_leader: bool


@dataclass(frozen=True, slots=True)
class NodeLoss:
    node: str
    since: datetime  # last moment the node was known alive and connected
    why: str


def node_loss(row: NodeRow, now: datetime, lost_after_s: float) -> NodeLoss | None:
    """Is `row`'s node lost at `now`? None while it heartbeats with its Asterisk (or
    has been without it for less than `lost_after_s`)."""
    silent = (now - row.last_seen).total_seconds()
    if silent > lost_after_s:
        return NodeLoss(row.node, row.last_seen, f"no heartbeat for {silent:.0f} s")
    if not row.ari_connected:
        since = row.ari_lost_at or row.started_at
        cut = (now - since).total_seconds()
        if cut > lost_after_s:
            return NodeLoss(row.node, since, f"its Asterisk unreachable for {cut:.0f} s")
    return None


def alive(row: NodeRow, now: datetime, lost_after_s: float) -> bool:
    """Heartbeating (whatever its Asterisk): for the alive-nodes gauge."""
    return (now - row.last_seen).total_seconds() <= lost_after_s


def was_waiting(call: OpenCall) -> bool:
    """The caller had not been bridged to an agent: a missed call."""
    return call.answered_at is None


def settle_lost_call(call: OpenCall, loss: NodeLoss) -> list[AuditEvent]:
    """The events that close `call`, carried by the lost node."""
    end_at = max(loss.since, call.started_at)
    events: list[AuditEvent] = []
    for hop in call.open_hops:
        if hop.hop_id == call.accepted_hop_id:
            events.append(
                HopEnded(hop.hop_id, HopOutcome.ACCEPTED, end_at, None, f"node {loss.node} lost")
            )
        else:
            events.append(
                HopEnded(hop.hop_id, HopOutcome.CANCELLED, end_at, None, f"node {loss.node} lost")
            )
    talk: float | None = None
    if call.answered_at is not None:
        talk = round(max(0.0, (end_at - call.answered_at).total_seconds()), 1)
        detail = (
            f"node {loss.node} lost ({loss.why}) while talking with "
            f"{call.accepted_person_id}; at least {talk}s"
        )
    else:
        state = call.last_state.value if call.last_state else "received"
        detail = f"node {loss.node} lost ({loss.why}) with the caller waiting at {state}"
    from_state = call.last_state or CallState.RECEIVED
    events.append(
        StateChanged(call.call_id, call.last_seq + 1, from_state, CallState.ENDED, detail, end_at)
    )
    events.append(CallEnded(call.call_id, CallOutcome.NODE_LOST, end_at, detail, talk_seconds=talk))
    return events
