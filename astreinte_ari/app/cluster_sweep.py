"""The leader's node-lost sweep: the open calls of a lost node are closed `node_lost`.

Decisions are cluster/node_lost.py's; this reads the trail, emits the closing
events through the service's audit writer (the same path, dedup keys and chain
as every other close: a node that comes back and reconciles the same call adds
nothing), announces each closed call to the listeners (the alerting engine
raises a missed call for a caller who was still waiting), and audits the sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from astreinte_ari.adapters.store.cluster_nodes import CallParty, call_parties, record_node_lost
from astreinte_ari.adapters.store.recovery import open_calls_of_node
from astreinte_ari.callflow.audit_events import CallEnded
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.callflow.reconcile import AuditSink, OpenCall
from astreinte_ari.cluster.node_lost import NodeLoss, NodeRow, node_loss, settle_lost_call
from astreinte_ari.routing.plan import CallPlan

log = logging.getLogger("astreinte_ari.cluster")

_CLOSED_MEMORY = 10_000  # call ids closed by this process, while the writer catches up


class NodeLostSweeper:
    def __init__(
        self,
        *,
        engine: Engine,
        node: str,
        lost_after_s: float,
        audit: AuditSink,
        announce: Callable[[CallClosed], None],
        plan_for: Callable[[str, datetime], CallPlan | None],
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._node = node
        self._lost_after_s = lost_after_s
        self._audit = audit
        self._announce = announce
        self._plan_for = plan_for
        self._clock = clock
        self._lost: set[str] = set()  # nodes seen lost (one log line per loss)
        self._closed: set[str] = set()

    async def sweep(self, rows: list[NodeRow]) -> list[str]:
        """Close the open calls of every lost node; returns their ids."""
        now = self._clock()
        closed: list[str] = []
        for row in rows:
            loss = node_loss(row, now, self._lost_after_s)
            if loss is None:
                if row.node in self._lost:
                    log.warning("node %s is back", row.node)
                    self._lost.discard(row.node)
                continue
            if row.node not in self._lost:
                log.warning("node %s lost: %s", row.node, loss.why)
                self._lost.add(row.node)
            closed += await self._close_calls_of(loss)
        return closed

    async def _close_calls_of(self, loss: NodeLoss) -> list[str]:
        calls = await asyncio.to_thread(open_calls_of_node, self._engine, loss.node)
        calls = [c for c in calls if c.call_id not in self._closed]
        if not calls:
            return []
        parties = await asyncio.to_thread(call_parties, self._engine, [c.call_id for c in calls])
        for call in calls:
            events = settle_lost_call(call, loss)
            for event in events:
                self._audit.emit(event)
            if len(self._closed) >= _CLOSED_MEMORY:
                self._closed.clear()  # long since written: the trail says they are closed
            self._closed.add(call.call_id)
            ended = events[-1]
            assert isinstance(ended, CallEnded)
            self._tell(call, ended, parties.get(call.call_id))
        ids = [c.call_id for c in calls]
        log.warning(
            "node %s lost (%s): %d open call(s) closed as node_lost", loss.node, loss.why, len(ids)
        )
        try:
            await asyncio.to_thread(
                record_node_lost, self._engine, loss.node, loss.since, loss.why, ids, self._node
            )
        except Exception:
            log.exception("could not audit the node-lost sweep of node %s", loss.node)
        return ids

    def _tell(self, call: OpenCall, ended: CallEnded, party: CallParty | None) -> None:
        """Alerts and metrics learn of the close like of any other."""
        if party is None:
            return
        plan = self._plan_for(party.did, call.started_at)
        if plan is None:
            log.error("call %s (node_lost): no plan for its line any more", call.call_id[:8])
            return
        self._announce(
            CallClosed(
                call_id=call.call_id,
                plan=plan,
                caller_number=party.caller_number,
                caller_name=party.caller_name,
                outcome=CallOutcome.NODE_LOST,
                detail=ended.detail,
                started_at=call.started_at,
                ended_at=ended.at,
                last_state=call.last_state or CallState.RECEIVED,
                accepted_person_id=call.accepted_person_id,
            )
        )
