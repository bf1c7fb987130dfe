"""One cluster node on SQLite, in this process: alone it always leads; a daily chore
runs on the leader only; a database outage is warned once, judges no node until the
heartbeats are steady again, and an election round during it is no error.
Several nodes on PostgreSQL: test_cluster_nodes.py."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from astreinte_ari.adapters.scheduler.apscheduler_jobs import PersistentScheduler
from astreinte_ari.adapters.store.migrate import create_db_engine, upgrade
from astreinte_ari.adapters.store.models import cluster_nodes_table
from astreinte_ari.app.cluster import ClusterNode
from astreinte_ari.cluster.election import Role
from astreinte_ari.config.cluster import ClusterConfig
from tests.unit.cluster_helpers import CONFIG, utcnow


async def test_a_sqlite_single_node_always_leads(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/one.db"
    upgrade(url)
    engine = create_db_engine(url)
    node = ClusterNode(
        node="solo", config=ClusterConfig(), engine=engine, lock=None,
        ari_connected=lambda: False, clock=utcnow,
    )  # fmt: skip
    try:
        assert node.leading() and node.role is Role.LEADER
        await node.tick()
        await node.beat()
        with engine.connect() as conn:
            row = conn.execute(select(cluster_nodes_table)).one()
        assert (row.node, row.is_leader, row.ari_connected) == ("solo", True, False)
        assert node.view()["role"] == "leader"
    finally:
        await node.close()
        engine.dispose()


async def test_a_daily_chore_runs_on_the_leader_only(tmp_path: object) -> None:
    """A line's daily test call is one call for the cluster, not one per node."""
    engine = create_db_engine(f"sqlite:///{tmp_path}/chores.db")
    upgrade(str(engine.url))
    leading = {"now": False}
    scheduler = PersistentScheduler(engine, gate=lambda: leading["now"])
    ran: list[str] = []

    async def chore() -> None:
        ran.append("test call")

    try:
        scheduler.daily("testcall-+33180000001-0330", 3, 30, "Europe/Paris", chore)
        job = scheduler.apscheduler.get_job("testcall-+33180000001-0330")
        assert job is not None
        await job.func()  # what APScheduler runs at 03:30 on a follower
        assert ran == []
        leading["now"] = True
        await job.func()
        assert ran == ["test call"]
    finally:
        engine.dispose()


class _Sweeps:
    def __init__(self) -> None:
        self.rows: list[list[object]] = []

    async def sweep(self, rows: list[object]) -> object:
        self.rows.append(rows)
        return None


async def test_a_database_outage_is_warned_once_and_judges_no_node_until_steady(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every node's row goes stale during an outage: right after it, a leader must not
    close the others' calls as node_lost (nor a follower end a 'frozen' leader) before
    they have had node_lost_after_seconds to beat again; and a 60 s outage is one
    warning, not one ERROR a second (the load test's database outage found both)."""
    import astreinte_ari.app.cluster as cluster_module

    url = f"sqlite:///{tmp_path}/outage.db"
    upgrade(url)
    engine = create_db_engine(url)
    mono = {"now": 1000.0}
    node = ClusterNode(
        node="solo", config=ClusterConfig(heartbeat_seconds=1, node_lost_after_seconds=10),
        engine=engine, lock=None, ari_connected=lambda: True, clock=utcnow,
        monotonic=lambda: mono["now"],
    )  # fmt: skip
    sweeps = _Sweeps()
    node.sweeper = sweeps
    real_write = cluster_module.write_heartbeat

    def down(*_: object) -> None:
        raise cluster_module.SQLAlchemyError("connection refused")

    try:
        await node.beat()
        assert sweeps.rows == [] and not node.db_steady()  # just started: not yet
        mono["now"] += 10
        await node.beat()
        assert len(sweeps.rows) == 1 and node.db_steady()
        monkeypatch.setattr(cluster_module, "write_heartbeat", down)
        caplog.clear()
        for _ in range(30):  # 30 s of outage, a beat a second
            mono["now"] += 1
            await node.beat()
        warnings = [r for r in caplog.records if r.name == "astreinte_ari.cluster"]
        assert [r.levelname for r in warnings] == ["WARNING"], warnings
        assert not node.db_steady()
        monkeypatch.setattr(cluster_module, "write_heartbeat", real_write)
        mono["now"] += 1
        await node.beat()  # back: the others' rows are still stale, nobody judged
        assert len(sweeps.rows) == 1
        assert "database reachable again after 30 s" in caplog.text
        mono["now"] += 10
        await node.beat()
        assert len(sweeps.rows) == 2
    finally:
        await node.close()
        engine.dispose()


class _BusyLock:
    """Another node holds the lock: try_acquire fails, the holder is then looked up."""

    def try_acquire(self) -> bool:
        return False

    def still_held(self) -> bool:
        return False

    def holder_pids(self) -> list[int]:
        return [4242]

    def terminate_holder(self) -> list[int]:
        raise AssertionError("a leader must not be ended over a database outage")

    def close(self) -> None:
        return None


async def test_an_election_round_during_a_database_outage_is_no_error(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import astreinte_ari.app.cluster as cluster_module

    url = f"sqlite:///{tmp_path}/election.db"
    upgrade(url)
    engine = create_db_engine(url)
    node = ClusterNode(
        node="pbx-b", config=CONFIG, engine=engine, lock=_BusyLock(),
        ari_connected=lambda: True, clock=utcnow,
    )  # fmt: skip

    def down(*_: object) -> list[object]:
        raise cluster_module.SQLAlchemyError("connection refused")

    monkeypatch.setattr(cluster_module, "read_nodes", down)
    try:
        for _ in range(5):
            await node.tick()
        levels = [r.levelname for r in caplog.records if r.name == "astreinte_ari.cluster"]
        assert levels == ["WARNING"], caplog.text
        assert node.role is Role.FOLLOWER
    finally:
        await node.close()
        engine.dispose()
