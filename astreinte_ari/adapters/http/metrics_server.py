"""The HTTP endpoint of the running service's metrics and health (wired by app/compose.py);
what feeds the metrics is adapters/metrics/."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from astreinte_ari.adapters.metrics.prometheus import METRICS_KEY, ServiceMetrics, metrics_handler
from astreinte_ari.callflow.selftest import SelfTestResult
from astreinte_ari.config.model import MetricsConfig

log = logging.getLogger(__name__)


class ReadinessReport(Protocol):
    """What /readyz serves (app/readiness.py ReadyReport builds it)."""

    @property
    def ready(self) -> bool: ...

    def as_json(self) -> dict[str, object]: ...


Readiness = Callable[[], Awaitable[ReadinessReport]]


@dataclass(frozen=True, slots=True)
class SelfTestTrigger:
    """POST /test-call/<did>: `astreinte test-call` asks the running service (which
    owns the ARI application) for a test call; `authorized` checks its bearer token."""

    run: Callable[[str], Awaitable[SelfTestResult]]
    authorized: Callable[[str], bool]


class MetricsServer:
    """/metrics, and the health a supervisor or load balancer asks for:
    /healthz (alive: the event loop answers) and /readyz (200 when every readiness
    check passes, else 503; the JSON body lists each check, readiness.py)."""

    def __init__(
        self,
        config: MetricsConfig,
        metrics: ServiceMetrics,
        ready: Readiness | None = None,
        test_call: SelfTestTrigger | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._ready = ready
        self._test_call = test_call
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

    async def _run_test_call(self, request: web.Request) -> web.Response:
        trigger = self._test_call
        auth = request.headers.get("Authorization", "")
        if trigger is None:
            return web.json_response({"error": "test calls are not available"}, status=404)
        if not auth.startswith("Bearer ") or not trigger.authorized(auth[len("Bearer ") :]):
            return web.json_response({"error": "not authorized"}, status=403)
        did = request.match_info["did"]
        try:
            result = await trigger.run(did)
        except KeyError as exc:
            return web.json_response({"error": str(exc.args[0])}, status=404)
        except RuntimeError as exc:  # one already running on this line
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response(
            {
                "line": result.line_name,
                "did": result.did,
                "passed": result.passed,
                "detail": result.detail,
                "call_id": result.call_id,
                "decision": result.decision,
            }
        )

    async def start(self) -> None:
        app = web.Application()
        app[METRICS_KEY] = self.metrics
        app.router.add_get("/metrics", metrics_handler)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_post("/test-call/{did}", self._run_test_call)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.config.host, self.config.port).start()
        log.info("metrics on http://%s/metrics", self.config.listen)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
