"""The HTTP endpoint of the running service's metrics and health (wired by app/compose.py);
what feeds the metrics is adapters/metrics/."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from astreinte_ari.adapters.metrics.prometheus import METRICS_KEY, ServiceMetrics, metrics_handler
from astreinte_ari.config.model import MetricsConfig

log = logging.getLogger(__name__)


class ReadinessReport(Protocol):
    """What /readyz serves (app/readiness.py ReadyReport builds it)."""

    @property
    def ready(self) -> bool: ...

    def as_json(self) -> dict[str, object]: ...


Readiness = Callable[[], Awaitable[ReadinessReport]]


class MetricsServer:
    """/metrics, and the health a supervisor or load balancer asks for:
    /healthz (alive: the event loop answers) and /readyz (200 when every readiness
    check passes, else 503; the JSON body lists each check, readiness.py)."""

    def __init__(
        self, config: MetricsConfig, metrics: ServiceMetrics, ready: Readiness | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._ready = ready
        self._runner: web.AppRunner | None = None

    async def _healthz(self, request: web.Request) -> web.Response:
        # Answered by the event loop itself (a frozen loop answers nothing); the lag is
        # how long a callback queued now waits for its turn.
        loop = asyncio.get_running_loop()
        queued = loop.time()
        turn: asyncio.Future[None] = loop.create_future()
        loop.call_soon(turn.set_result, None)
        await turn
        lag_ms = round((loop.time() - queued) * 1000, 3)
        return web.json_response({"alive": True, "pid": os.getpid(), "loop_lag_ms": lag_ms})

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._ready is None:
            return web.json_response({"ready": True, "checks": []})
        report = await self._ready()
        return web.json_response(report.as_json(), status=200 if report.ready else 503)

    async def start(self) -> None:
        app = web.Application()
        app[METRICS_KEY] = self.metrics
        app.router.add_get("/metrics", metrics_handler)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.config.host, self.config.port).start()
        log.info("metrics on http://%s/metrics", self.config.listen)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
