"""Acknowledging an alert: the rule (alerting/model.py) and its one-transaction write
(adapters/store/alerts.py); persisted wake-ups run on the engine they were given."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, MetaData, Table, select, update

from astreinte_ari.adapters.scheduler.apscheduler_jobs import PersistentScheduler, job_id
from astreinte_ari.adapters.store.alerts import AlertStore
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.alerting.engine import ack_alert
from astreinte_ari.alerting.model import ShiftOverride, acknowledgement

T0 = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
SHIFT_START, SHIFT_END = T0 + timedelta(hours=2), T0 + timedelta(days=7)


def _engine(tmp_path: Path) -> Engine:
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    upgrade(url)
    return create_db_engine(url)


def _open(
    store: AlertStore, alert_id: str, kind: str, chain: tuple[str, ...], parent: str | None
) -> None:
    store.insert_alert(
        dict(
            id=alert_id,
            kind=kind,
            state="open",
            policy="shift_start",
            chain=chain,
            opened_at=T0,
            next_step=0,
            team="t",
            rota="primary",
            shift_start=SHIFT_START,
            shift_end=SHIFT_END,
            parent_id=parent,
        )
    )


def test_acknowledging_a_cover_routes_the_replacement_and_answers_the_supervisor(
    tmp_path: Path,
) -> None:
    store = AlertStore(_engine(tmp_path))
    # p1 missed the deadline: p3 is asked to cover, the supervisor is told.
    _open(store, "start0000001", "shift_start", ("p1",), None)
    _open(store, "cover0000001", "shift_cover", ("p3",), "start0000001")
    _open(store, "missed000001", "shift_missed", ("sup",), "start0000001")

    cover = store.get("cover0000001")
    assert cover is not None
    ack = acknowledgement(cover, by="p3", via="link", now=T0)
    assert ack.override == ShiftOverride("t", "primary", "p3", SHIFT_START, SHIFT_END, cover.id)
    assert ack.settles is not None and ack.settles.kind == "shift_missed"

    acked = ack_alert(store, "cover0", by="p3", via="link", now=T0)  # a CLI short id
    assert acked is not None and (acked.state, acked.acked_by, acked.ack_via) == (
        "acked",
        "p3",
        "link",
    )
    assert store.overrides(T0) == [ack.override]
    missed = store.get("missed000001")
    assert missed is not None and missed.state == "closed"
    assert [e[1] for e in store.events("cover0000001")] == ["acked", "override"]
    assert store.events("missed000001")[-1][1:4] == ("closed", "p3", "link")
    assert ack_alert(store, "cover0000001", by="p3", via="sms", now=T0) is None  # once only


def test_acknowledging_a_missed_call_writes_nothing_else(tmp_path: Path) -> None:
    store = AlertStore(_engine(tmp_path))
    _open(store, "call00000001", "missed_call", ("p1", "p2"), None)
    alert = store.get("call00000001")
    assert alert is not None
    ack = acknowledgement(alert, by="p2", via="voice-dtmf", now=T0)
    assert (ack.override, ack.settles) == (None, None)
    assert ack_alert(store, alert.id, by="p2", via="voice-dtmf", now=T0) is not None
    assert store.overrides(T0 - timedelta(days=30)) == []


async def test_a_wake_up_written_by_an_earlier_release_runs_on_the_engine(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path)
    first = PersistentScheduler(engine, paused=True)
    first.start(_never)
    first.wake_at("abc", T0)
    first.stop()
    # Earlier releases named their own module-level job function in the job store.
    jobs = Table("apscheduler_jobs", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        state = pickle.loads(conn.scalar(select(jobs.c.job_state)))
        assert state["func"] == "astreinte_ari.adapters.scheduler.apscheduler_jobs:wake_up"
        state["func"] = "astreinte_ari.alerting.runtime:run_alert_job"
        conn.execute(update(jobs).values(job_state=pickle.dumps(state)))

    woken: list[str] = []

    async def wake(alert_id: str) -> None:
        woken.append(alert_id)

    second = PersistentScheduler(engine, paused=True)
    second.start(wake)
    try:
        assert [j.id for j in second.apscheduler.get_jobs()] == [job_id("abc")]
        assert await second.fire_due(T0 - timedelta(seconds=1)) == 0
        assert await second.fire_due(T0) == 1
        assert woken == ["abc"] and second.pending() == 0
    finally:
        second.stop()
    engine.dispose()


async def _never(alert_id: str) -> None:
    raise AssertionError(f"{alert_id} woken by a stopped scheduler")


async def test_the_open_alerts_gauge_counts_due_alerts_in_the_database(tmp_path: Path) -> None:
    """astreinte_open_alerts: what is due and unacknowledged, as the database says
    (acks come from other processes), not the shift starts still scheduled."""
    import asyncio
    import contextlib
    from types import SimpleNamespace
    from typing import Any

    from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
    from astreinte_ari.app.features import DatabaseFeatures

    engine = _engine(tmp_path)
    store = AlertStore(engine)
    _open(store, "a1", "shift_start", ("p1",), None)
    _open(store, "a2", "shift_start", ("p1",), None)
    store.update("a2", state="scheduled")
    metrics = ServiceMetrics()
    kwargs: dict[str, Any] = dict(live=None, service=None, alert_feed=None, clock=None)
    features = DatabaseFeatures(config=None, engine=engine, metrics=metrics, **kwargs)  # type: ignore[arg-type]
    features.alerting = SimpleNamespace()  # type: ignore[assignment]
    task = asyncio.create_task(features.keep_counting_open_alerts(every=0.01))
    try:
        for _ in range(500):
            await asyncio.sleep(0.01)
            if "astreinte_open_alerts 1.0" in metrics.render().decode():
                break
        else:
            raise AssertionError(metrics.render().decode())
        store.update("a1", state="acked")  # acknowledged elsewhere (a link, the CLI)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if "astreinte_open_alerts 0.0" in metrics.render().decode():
                break
        else:
            raise AssertionError(metrics.render().decode())
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        engine.dispose()
