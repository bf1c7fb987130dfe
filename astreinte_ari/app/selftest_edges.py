"""Test calls' edges (part of the composition root): when they run, whom a failure
alerts, what the metrics say, and the authenticated on-demand trigger.

Scheduled test calls are jobs of the service's scheduler (the alerting's
PersistentScheduler, in-memory chores: a test missed while the service was down
is not replayed, the next one runs at its time), so whatever decides which node
runs jobs decides for them too. A failed result opens a `test_call_failed` alert
through the alert engine; every result updates the test call metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any

from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.alerting.engine import AlertEngine
from astreinte_ari.alerting.ports import Scheduler
from astreinte_ari.callflow.selftest import LineSelfTester, SelfTestResult
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

JOB_PREFIX = "test-call-"
_TOKEN_PURPOSE = b"astreinte test-call v1"


def metrics_listener(metrics: ServiceMetrics) -> Callable[[SelfTestResult], None]:
    def on_result(result: SelfTestResult) -> None:
        metrics.on_test_call(result.line_name, result.passed, result.ended_at)

    return on_result


def alert_listener(engine: Callable[[], AlertEngine]) -> Callable[[SelfTestResult], None]:
    """A failed test call opens a test_call_failed alert (the engine in force)."""
    tasks: set[asyncio.Task[Any]] = set()

    def on_result(result: SelfTestResult) -> None:
        if result.passed:
            return
        task = asyncio.ensure_future(
            engine().open_test_call_failed(did=result.did, call_id=result.call_id)
        )
        tasks.add(task)
        task.add_done_callback(_logged(tasks))

    return on_result


def _logged(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("test call alert not opened: %r", task.exception())

    return done


def schedule_test_calls(scheduler: Scheduler, config: AppConfig, tester: LineSelfTester) -> int:
    """(Re)plan the test calls of every line at its `test_call.at` times, in the
    configuration's time zone; returns how many daily times are planned."""
    scheduler.cancel_chores(JOB_PREFIX)
    planned = 0
    for did, line in config.lines.items():
        if line.test_call is None:
            continue
        for minute in line.test_call.minutes():

            async def run(did: str = did) -> None:
                try:
                    await tester.run(did)
                except Exception:  # a test already running, a line removed meanwhile
                    log.exception("scheduled test call on %s not run", did)

            name = f"{JOB_PREFIX}{did}-{minute // 60:02d}{minute % 60:02d}"
            scheduler.daily(name, minute // 60, minute % 60, config.timezone, run)
            planned += 1
    if planned:
        log.info("test calls planned: %d a day", planned)
    return planned


def trigger_token(ari_password: str) -> str:
    """What `astreinte test-call` shows the service: derived from the ARI password
    (both already read it), never the password itself."""
    return hmac.new(ari_password.encode(), _TOKEN_PURPOSE, hashlib.sha256).hexdigest()


def token_matches(presented: str, ari_password: str) -> bool:
    return hmac.compare_digest(presented.encode(), trigger_token(ari_password).encode())
