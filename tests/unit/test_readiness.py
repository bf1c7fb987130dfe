"""Readiness against a real local HTTP server standing in for ARI, a real UDP SIP
server, a real SQLite file: the checks, /readyz and /healthz over HTTP, and what
systemd and the log are told."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from sqlalchemy import create_engine

from astreinte_ari.adapters.ari.client import AriClient
from astreinte_ari.adapters.http.metrics_server import MetricsServer
from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.adapters.pbx.checks import Check
from astreinte_ari.adapters.systemd import SystemdNotifier
from astreinte_ari.app.readiness import Readiness, ReadyReport, keep_readiness
from astreinte_ari.config.loader import load_config
from astreinte_ari.config.model import AppConfig, MetricsConfig
from astreinte_ari.devtools.localpbx import free_port
from tests.rig.systemd import FakeSystemd
from tests.unit.test_sip_probe import sip_server


@dataclass
class FakeAri:
    """/asterisk/info, /applications/<app> (registered while a websocket is open),
    /endpoints/PJSIP/<name> and /events."""

    version: str = "22.10.1"
    endpoints: dict[str, str] = field(default_factory=lambda: {"operator": "online"})
    registered: set[str] = field(default_factory=set)

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response({"system": {"version": self.version}})

    async def application(self, request: web.Request) -> web.Response:
        name = request.match_info["app"]
        if name not in self.registered:
            return web.json_response({"message": "Application not found"}, status=404)
        return web.json_response({"name": name})

    async def endpoint(self, request: web.Request) -> web.Response:
        state = self.endpoints.get(request.match_info["name"])
        if state is None:
            return web.json_response({"message": "Endpoint not found"}, status=404)
        return web.json_response({"technology": "PJSIP", "state": state})

    async def events(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        app = request.query["app"]
        self.registered.add(app)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.CLOSE:
                    break
        finally:
            self.registered.discard(app)
        return ws


@contextlib.asynccontextmanager
async def fake_ari() -> AsyncIterator[tuple[FakeAri, str]]:
    fake = FakeAri()
    app = web.Application()
    app.router.add_get("/ari/asterisk/info", fake.info)
    app.router.add_get("/ari/applications/{app}", fake.application)
    app.router.add_get("/ari/endpoints/PJSIP/{name}", fake.endpoint)
    app.router.add_get("/ari/events", fake.events)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _config(tmp_path: Path, ari_url: str, sip: str) -> AppConfig:
    path = tmp_path / "astreinte.yaml"
    path.write_text(
        "timezone: Europe/Paris\n"
        f"ari: {{url: {ari_url}, username: astreinte}}\n"
        f'pbx: {{sip: "{sip}"}}\n'
        'trunk: {dial: "PJSIP/{number}@operator", caller_id: "+33180000000", '
        'allowed_prefixes: ["+336"]}\n'
        'lines: {"+33180000000": {name: M, team: t, after_hours: '
        "{hops: [{person: a, timeout: 20}]}}}\n"
        'teams: {t: {people: {a: {name: A, mobile: "+33612345678"}}}}\n'
    )
    return load_config(path)


@dataclass
class Setup:
    ari: FakeAri
    client: AriClient
    readiness: Readiness
    journal: Path


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    db = tmp_path / "audit.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('head')")
        conn.commit()
    engine = create_engine(f"sqlite:///{db}")
    journal = tmp_path / "journal"
    journal.mkdir()
    async with fake_ari() as (ari, url), sip_server() as (_, address):
        config = _config(tmp_path, url, str(address))
        client = AriClient(url, "astreinte", "secret", "astreinte")

        async def nothing(*_: object) -> None:
            return None

        events = asyncio.create_task(client.run_events(nothing, nothing))
        await asyncio.wait_for(client.connected.wait(), 5)
        try:
            yield Setup(ari, client, Readiness(client, lambda: config, engine, journal), journal)
        finally:
            client.stop()
            events.cancel()
            await asyncio.gather(events, return_exceptions=True)
            await client.close()
            engine.dispose()


def _by_name(report: ReadyReport) -> dict[str, dict[str, object]]:
    return {str(c["name"]): c for c in report.as_json()["checks"]}  # type: ignore[union-attr]


async def test_ready_when_every_check_passes(setup: Setup) -> None:
    report = await setup.readiness.report()
    data = report.as_json()
    assert data["ready"] is True, data
    assert [c["name"] for c in data["checks"]] == [  # type: ignore[union-attr]
        "ari",
        "application",
        "sip_transport",
        "trunk",
        "storage",
    ]
    checks = _by_name(report)
    assert "Asterisk 22.10.1" in str(checks["ari"]["detail"])
    assert "answered by 'Asterisk PBX 22.10.1' (200 OK)" in str(checks["sip_transport"]["detail"])
    assert checks["trunk"]["detail"] == "PJSIP/operator online"
    assert "writable" in str(checks["storage"]["detail"])
    assert report.summary().startswith("ready: ari: connected")


async def test_each_failure_is_named_with_its_fix(setup: Setup) -> None:
    setup.ari.version = "22.11.0"  # the SIP port answers for another Asterisk
    setup.ari.endpoints["operator"] = "offline"
    setup.ari.registered.clear()
    report = await setup.readiness.report()
    checks = _by_name(report)
    assert report.as_json()["ready"] is False
    assert checks["ari"]["ok"] is True
    assert checks["application"]["ok"] is False and "not registered" in str(
        checks["application"]["detail"]
    )
    assert "not by this Asterisk 22.11.0" in str(checks["sip_transport"]["detail"])
    assert "ss -lunp" in str(checks["sip_transport"]["fix"])
    assert "PJSIP/operator is offline" in str(checks["trunk"]["detail"])
    assert "pjsip show endpoint operator" in str(checks["trunk"]["fix"])
    assert not report.taking_calls
    assert report.summary().startswith("NOT ready: application: ")
    setup.ari.endpoints.clear()
    trunk = _by_name(await setup.readiness.report(max_age_s=0))["trunk"]
    assert "does not exist on this Asterisk" in str(trunk["detail"])


async def test_storage_is_ready_while_either_the_database_or_the_journal_writes(
    setup: Setup, tmp_path: Path
) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no schema: writes fail
    config = setup.readiness._config
    journalled = Readiness(setup.client, config, broken, setup.journal)
    storage = _by_name(await journalled.report())["storage"]
    assert storage["ok"] is True and "calls are journalled in" in str(storage["detail"])
    neither = Readiness(setup.client, config, broken, tmp_path / "no-such-dir")
    storage = _by_name(await neither.report())["storage"]
    assert storage["ok"] is False and "no audit record can be kept" in str(storage["detail"])
    broken.dispose()


async def test_without_ari_the_pbx_checks_are_not_claimed(setup: Setup) -> None:
    setup.client.stop()
    await setup.client.close()
    while setup.client.connected.is_set():
        await asyncio.sleep(0.01)
    checks = _by_name(await setup.readiness.report())
    assert checks["ari"]["ok"] is False and "not connected" in str(checks["ari"]["detail"])
    assert checks["application"] == {
        "name": "application",
        "ok": False,
        "detail": "not checked: ARI not connected",
    }


async def test_concurrent_askers_share_one_evaluation(setup: Setup) -> None:
    reports = await asyncio.gather(*(setup.readiness.report() for _ in range(5)))
    assert all(r is reports[0] for r in reports)
    assert await setup.readiness.report() is reports[0]  # cached
    assert await setup.readiness.report(max_age_s=0) is not reports[0]


async def test_healthz_and_readyz_over_http(setup: Setup) -> None:
    port = free_port()
    server = MetricsServer(
        MetricsConfig(listen=f"127.0.0.1:{port}"), ServiceMetrics(), setup.readiness.report
    )
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
                health = await resp.json()
            assert health["alive"] is True and health["loop_lag_ms"] >= 0
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 200 and (await resp.json())["ready"] is True
            setup.ari.endpoints["operator"] = "offline"
            await setup.readiness.report(max_age_s=0)
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 503
                body = await resp.json()
            assert body["ready"] is False
            assert [c["name"] for c in body["checks"] if not c["ok"]] == ["trunk"]
    finally:
        await server.close()


class ScriptedReadiness:
    def __init__(self, *reports: ReadyReport) -> None:
        self.reports = list(reports)

    async def report(self, max_age_s: float = 0) -> ReadyReport:
        return self.reports.pop(0) if len(self.reports) > 1 else self.reports[0]


def _report(*failing: str) -> ReadyReport:
    names = ("ari", "application", "SIP transport", "trunk", "storage")
    checks = tuple(Check(n, n not in failing, "bad" if n in failing else "fine") for n in names)
    return ReadyReport(checks, datetime.now(UTC))


async def test_systemd_hears_ready_once_calls_are_taken_and_the_log_each_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeSystemd()
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": fake.env_value})
    scripted = ScriptedReadiness(
        _report("ari", "application", "SIP transport"),  # before the websocket is up
        _report("SIP transport"),  # taking calls, but deaf
        _report("SIP transport"),
        _report(),
    )
    wake = asyncio.Event()
    caplog.set_level(logging.INFO, logger="astreinte_ari.app.compose")
    task = asyncio.create_task(keep_readiness(scripted, notifier, wake, every_s=60))  # type: ignore[arg-type]
    try:
        for expected in (1, 2, 3, 4):
            wake.set()
            while len(fake.received) < expected:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        fake.close()
    messages = fake.messages()
    assert messages[0] == "STATUS=NOT ready: ari: bad; application: bad; SIP transport: bad"
    assert messages[1] == "READY=1\nSTATUS=NOT ready: SIP transport: bad"
    assert messages[2] == "STATUS=NOT ready: SIP transport: bad"
    assert messages[3].startswith("STATUS=ready: ari: fine;")
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert logged == [
        ("ERROR", "astreinte NOT ready: ari: bad; application: bad; SIP transport: bad"),
        ("ERROR", "astreinte NOT ready: SIP transport: bad"),  # the same verdict is not repeated
        ("INFO", messages[3].removeprefix("STATUS=").replace("ready", "astreinte ready", 1)),
    ]


async def test_readyz_carries_the_cluster_view_current_even_from_a_cached_report(
    setup: Setup,
) -> None:
    view: dict[str, object] = {
        "node": "pbx-a",
        "role": "follower",
        "nodes": [
            {"node": "pbx-a", "last_seen_age_s": 0.4, "ari_connected": True, "leader": False}
        ],
    }
    readiness = Readiness(
        setup.client,
        setup.readiness._config,
        setup.readiness._engine,
        setup.journal,
        cluster_view=lambda: dict(view),
    )
    metrics = ServiceMetrics()
    metrics.set_cluster("pbx-a", True, 2)
    port = free_port()
    server = MetricsServer(MetricsConfig(listen=f"127.0.0.1:{port}"), metrics, readiness.report)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                first = (await resp.json())["cluster"]
            view["role"] = "leader"  # leadership moved; the checks' report is still cached
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                second = (await resp.json())["cluster"]
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                exposition = await resp.text()
        assert first["role"] == "follower" and second["role"] == "leader"
        assert second["nodes"] == view["nodes"] and second["node"] == "pbx-a"
        assert 'astreinte_cluster_leader{node="pbx-a"} 1.0' in exposition
        assert "astreinte_cluster_nodes_alive 2.0" in exposition
    finally:
        await server.close()
