"""Running the service that compose.py built, and stopping it.

Start what was built (the metrics endpoint, the features that need the
database, the background loops), take calls until told to stop or until the
PBX refuses us, let the calls in progress finish, then close every part in
the order that loses nothing: the trail is flushed and signed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from astreinte_ari.adapters.ari.client import AriAuthError, AriClient
from astreinte_ari.adapters.http.metrics_server import MetricsServer
from astreinte_ari.adapters.store.journal import JournaledAuditWriter
from astreinte_ari.adapters.systemd import SystemdNotifier
from astreinte_ari.aio import within
from astreinte_ari.app.features import DatabaseFeatures
from astreinte_ari.app.startup import EXIT_APP_REPLACED, EXIT_ARI_REFUSED, refused_message
from astreinte_ari.callflow.dispatch import OnCallService
from astreinte_ari.config.model import AppConfig

if TYPE_CHECKING:
    from astreinte_ari.adapters.http.web_server import WebServer
    from astreinte_ari.adapters.store.checkpointing import Checkpointer
    from astreinte_ari.app.cluster import ClusterNode
    from astreinte_ari.app.rota_changes import RotaChanges

log = logging.getLogger("astreinte_ari.app.compose")

GRACEFUL_STOP_S = 600.0  # bridged calls finish; a second signal stops at once

Loop = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class AriHandlers:
    """What the ARI client calls: each event, each (re)connection, each loss."""

    on_message: Callable[[dict[str, object]], Awaitable[None]]
    on_connect: Callable[[], Awaitable[None]]
    on_disconnect: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ServiceParts:
    """Everything compose.build_service() made; run() starts and stops it."""

    config: AppConfig
    engine: Engine
    writer: JournaledAuditWriter
    client: AriClient
    ari: AriHandlers
    service: OnCallService
    notifier: SystemdNotifier
    features: DatabaseFeatures
    db_ready: bool  # at start: then alerting runs before the first call
    metrics_server: MetricsServer | None
    checkpointer: Checkpointer | None
    cluster: ClusterNode  # heartbeat and leader election (app/cluster.py)
    loops: tuple[Loop, ...]  # background work until the service stops
    rota_changes: RotaChanges | None = None  # self-service swaps and covers (the web's API)
    web_server: WebServer | None = None  # the planning in a browser (`web:`)


async def run(parts: ServiceParts, stop: asyncio.Event) -> int:
    """Serve calls until `stop` (or a signal), then stop; returns the exit code."""
    started = await _start(parts)
    hard_stop = _on_signals(stop)
    client = parts.client
    await client.open()
    events = asyncio.create_task(
        client.run_events(parts.ari.on_message, parts.ari.on_connect, parts.ari.on_disconnect)
    )
    stopper = asyncio.create_task(stop.wait())
    fatal = asyncio.create_task(parts.service.fatal.wait())
    await asyncio.wait({events, stopper, fatal}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if events.done() and isinstance(events.exception(), AriAuthError):
        log.critical("%s", refused_message(parts.config))
        code = EXIT_ARI_REFUSED
    elif parts.service.fatal.is_set():
        code = EXIT_APP_REPLACED
    if stop.is_set():
        await _drain(parts, hard_stop)
    client.stop()
    tasks = (events, stopper, fatal, *started)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await _close(parts)
    return code


async def _start(parts: ServiceParts) -> list[asyncio.Task[None]]:
    if parts.metrics_server is not None:
        await parts.metrics_server.start()
    web_cfg = parts.config.web
    if parts.web_server is not None and web_cfg is not None:
        await parts.web_server.start(web_cfg.host, web_cfg.port)
    features = asyncio.create_task(parts.features.start())
    if parts.db_ready:
        await features  # alerting runs before the first call, as it always has
    background = [asyncio.create_task(loop()) for loop in parts.loops]
    # Events journaled before a crash are written before calls are resumed from them.
    with contextlib.suppress(TimeoutError):
        await within(parts.writer.flush(), 5.0)
    return [features, *background]


def _on_signals(stop: asyncio.Event) -> asyncio.Event:
    """First SIGTERM/SIGINT: drain (calls in progress finish). Second: stop now."""
    hard_stop = asyncio.Event()

    def on_signal() -> None:
        (hard_stop if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    return hard_stop


async def _drain(parts: ServiceParts, hard_stop: asyncio.Event) -> None:
    service = parts.service
    service.draining = True  # new calls go to the dialplan fallback
    parts.notifier.stopping(f"draining: {service.active_calls} call(s) in progress")
    if not service.active_calls:
        return
    log.info("stopping: waiting for %d call(s) in progress", service.active_calls)
    idle = asyncio.create_task(service.wait_idle(GRACEFUL_STOP_S))
    hard = asyncio.create_task(hard_stop.wait())
    await asyncio.wait({idle, hard}, return_when=asyncio.FIRST_COMPLETED)
    for task in (idle, hard):
        task.cancel()


async def _close(parts: ServiceParts) -> None:
    await parts.features.close()
    await parts.cluster.close()  # another node leads from its next tick
    if parts.metrics_server is not None:
        await parts.metrics_server.close()
    if parts.web_server is not None:
        await parts.web_server.close()
    await parts.client.close()
    with contextlib.suppress(Exception):
        await within(parts.writer.flush(), 5.0)
        if parts.checkpointer is not None:
            await parts.checkpointer.sign()  # what this run wrote last is signed too
    parts.writer.close()
    parts.engine.dispose()
    log.info("astreinte stopped")
