"""The Prometheus endpoint of the running service (wired by wiring.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from astreinte_ari.adapters.metrics import METRICS_KEY, ServiceMetrics, metrics_handler
from astreinte_ari.callflow.audit_events import AuditEvent
from astreinte_ari.callflow.runtime import AuditSink
from astreinte_ari.config.model import MetricsConfig

log = logging.getLogger(__name__)


class MeteredAudit:
    """Audit sink that also feeds the metrics (hop outcomes, time to answer)."""

    def __init__(self, sink: AuditSink, metrics: ServiceMetrics) -> None:
        self._sink = sink
        self._metrics = metrics

    def emit(self, event: AuditEvent) -> None:
        self._sink.emit(event)  # the trail first: metrics must never cost an audit record
        try:
            self._metrics.on_audit_event(event)
        except Exception:
            log.exception("metrics update failed for %s", type(event).__name__)


Readiness = Callable[[], tuple[bool, str]]


class MetricsServer:
    """/metrics, and the health a supervisor or load balancer asks for:
    /healthz (the event loop answers) and /readyz (503 unless calls can be taken)."""

    def __init__(
        self, config: MetricsConfig, metrics: ServiceMetrics, ready: Readiness | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._ready = ready or (lambda: (True, "ready"))
        self._runner: web.AppRunner | None = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ok, why = self._ready()
        return web.Response(text=why + "\n", status=200 if ok else 503)

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
