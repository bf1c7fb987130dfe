"""The leader's node-lost sweep on a shared database (SQLite and PostgreSQL): the
open calls of a node that went silent, or lost its Asterisk, are closed
`node_lost` in the trail; a caller who was still waiting raises a missed-call
alert through the usual engine; a node merely reconnecting keeps its calls; the
node's own service reconciling the same call later adds nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select

from astreinte_ari.adapters.store.audit_log import audit_log_table
from astreinte_ari.adapters.store.audit_verify import verify
from astreinte_ari.adapters.store.cluster_nodes import Heartbeat, read_nodes, write_heartbeat
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.queries import get_call
from astreinte_ari.adapters.store.recovery import open_calls
from astreinte_ari.adapters.store.writer import AuditWriter
from astreinte_ari.app.cluster_sweep import NodeLostSweeper
from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallStarted,
    HopProgress,
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.callflow.reconcile import OpenCall, OpenHop, settle_open_call
from astreinte_ari.devtools.localpbx import free_port
from astreinte_ari.routing.router import build_plan
from tests.alerts.conftest import FakeClock, SmsGateway
from tests.alerts.helpers import CALLER, LINE, start_without_telephony, write_config

ST = CallState


def waiting_call(call_id: str, at: datetime) -> list[AuditEvent]:
    hop = f"{call_id}-h1"
    return [
        CallStarted(call_id, LINE, "Maintenance", "after_hours", CALLER, "Client", call_id, at),
        StateChanged(call_id, 1, ST.RECEIVED, ST.ANNOUNCING, "after hours", at),
        StateChanged(call_id, 2, ST.ANNOUNCING, ST.DIALING, "announced", at),
        HopStarted(call_id, hop, 1, "primary", "p1", "Agent One", "+33610000001", at),
    ]


def bridged_call(call_id: str, at: datetime) -> list[AuditEvent]:
    hop = f"{call_id}-h1"
    return [
        *waiting_call(call_id, at),
        HopProgress(hop, "answered", at + timedelta(seconds=5)),
        HopProgress(hop, "accepted", at + timedelta(seconds=7)),
        CallAnswered(call_id, hop, "p1", at + timedelta(seconds=7)),
        StateChanged(call_id, 3, ST.DIALING, ST.BRIDGED, "accepted", at + timedelta(seconds=7)),
    ]


async def write(engine: Engine, node: str, events: list[AuditEvent]) -> None:
    writer = AuditWriter(engine, node=node)
    try:
        for event in events:
            writer.emit(event)
        await asyncio.wait_for(writer.flush(), 30)
    finally:
        writer.close()


def beat(engine: Engine, node: str, seen: datetime, ari_lost_at: datetime | None = None) -> None:
    write_heartbeat(
        engine,
        Heartbeat(
            node=node,
            started_at=seen - timedelta(hours=1),
            at=seen,
            ari_connected=ari_lost_at is None,
            ari_connected_since=seen - timedelta(hours=1),
            ari_lost_at=ari_lost_at,
            is_leader=node == "pbx-a",
        ),
    )


def records(engine: Engine, kind: str, subject: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count()).where(
                    audit_log_table.c.kind == kind, audit_log_table.c.subject_id == subject
                )
            )
            or 0
        )


async def test_lost_nodes_calls_are_closed_and_waiting_callers_alerted_once(
    tmp_path: Path, db_url: str, sms_gateway: SmsGateway
) -> None:
    config = write_config(tmp_path, db_url=db_url, sms_url=sms_gateway.url, links_port=free_port())
    engine = create_db_engine(db_url)
    now = datetime.now(UTC).replace(microsecond=0)
    started = now - timedelta(minutes=1)
    # pbx-b went silent 30 s ago with a caller waiting and a caller talking to p1;
    # pbx-c lost its Asterisk 2 s ago (reconnecting); pbx-a (the leader) is fine.
    await write(engine, "pbx-b", waiting_call("call-wait", started))
    await write(engine, "pbx-b", bridged_call("call-talk", started))
    await write(engine, "pbx-c", waiting_call("call-c", started))
    await write(engine, "pbx-a", waiting_call("call-a", started))
    silent_since = now - timedelta(seconds=30)
    beat(engine, "pbx-a", now)
    beat(engine, "pbx-b", silent_since)
    beat(engine, "pbx-c", now, ari_lost_at=now - timedelta(seconds=2))

    alerting = await start_without_telephony(config, FakeClock())
    leader_trail = AuditWriter(engine, node="pbx-a")
    announced: list[CallClosed] = []

    def announce(closed: CallClosed) -> None:
        announced.append(closed)
        alerting.engine.on_call_closed(closed)

    sweeper = NodeLostSweeper(
        engine=engine,
        node="pbx-a",
        lost_after_s=config.cluster.node_lost_after_seconds,
        audit=leader_trail,
        announce=announce,
        plan_for=lambda did, at: build_plan(config, did, at),
        clock=lambda: now,  # the heartbeats' ages do not grow with the machine's load
    )
    try:
        closed = await sweeper.sweep(read_nodes(engine))
        assert sorted(closed) == ["call-talk", "call-wait"]
        await leader_trail.flush()
        await alerting.engine.drain()
        wait, talk = get_call(engine, "call-wait"), get_call(engine, "call-talk")
        assert wait is not None and talk is not None
        assert (wait.outcome, wait.ended_at, wait.node) == ("node_lost", silent_since, "pbx-b")
        assert "waiting at dialing" in (wait.outcome_detail or "")
        assert (talk.outcome, talk.talk_seconds) == ("node_lost", 23.0)
        assert [h.outcome for h in wait.hops] == ["cancelled"]
        assert [h.outcome for h in talk.hops] == ["accepted"]
        for call_id in ("call-c", "call-a"):  # reconnecting, or alive: untouched
            other = get_call(engine, call_id)
            assert other is not None and other.ended_at is None
        alerts = [a for a in alerting.engine.store.list(open_only=False) if a.kind == "missed_call"]
        assert [a.call_id for a in alerts] == ["call-wait"]  # not the bridged caller
        assert records(engine, "cluster.node_lost", "pbx-b") == 1

        # Nothing more at the next heartbeat.
        assert await sweeper.sweep(read_nodes(engine)) == []

        # pbx-b's service comes back and reconciles the call from its PBX's records:
        # the trail keeps node_lost, one ending, one alert.
        before = {c.call_id: c for c in open_calls(engine)}
        assert "call-wait" not in before  # its own sweep does not even see it
        late = settle_open_call(_as_open("call-wait", started), {})  # what it would emit
        await write(engine, "pbx-b", late)
        announce(
            CallClosed(
                call_id="call-wait",
                plan=announced[0].plan,
                caller_number=CALLER,
                caller_name="Client",
                outcome=CallOutcome.ABANDONED,
                detail="caller hung up while the service was away",
                started_at=started,
                ended_at=now,
                last_state=ST.DIALING,
            )
        )
        await alerting.engine.drain()
        wait = get_call(engine, "call-wait")
        assert wait is not None and wait.outcome == "node_lost"
        assert records(engine, "call.ended", "call-wait") == 1
        alerts = [a for a in alerting.engine.store.list(open_only=False) if a.kind == "missed_call"]
        assert len(alerts) == 1

        # pbx-c has now been without its Asterisk for longer than the limit.
        beat(engine, "pbx-c", now, ari_lost_at=now - timedelta(seconds=12))
        assert await sweeper.sweep(read_nodes(engine)) == ["call-c"]
        await leader_trail.flush()
        call_c = get_call(engine, "call-c")
        assert call_c is not None and call_c.ended_at == now - timedelta(seconds=12)

        report = verify(engine, open_after=None)
        assert report.ok, report.problems
    finally:
        leader_trail.close()
        await alerting.close()
        engine.dispose()


def _as_open(call_id: str, started: datetime) -> OpenCall:
    """The call as its own node last knew it (dialing p1)."""
    return OpenCall(
        call_id=call_id,
        channel_id=call_id,
        started_at=started,
        last_seq=2,
        last_state=ST.DIALING,
        last_event_at=started,
        open_hops=(OpenHop(f"{call_id}-h1", 1, "p1", None),),
    )
