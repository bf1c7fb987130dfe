"""The one place where real edges (ARI, database, files) are built and injected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from sqlalchemy import Engine

from astreinte_ari.adapters.ari.client import AriClient
from astreinte_ari.adapters.ari.events import bridge_from_json, channel_from_json, event_from_json
from astreinte_ari.adapters.ari.telephony import AriTelephony
from astreinte_ari.adapters.fallback.importer import import_fallback_spool
from astreinte_ari.adapters.fallback.lastresort import keep_fallback_published
from astreinte_ari.adapters.metrics import ServiceMetrics
from astreinte_ari.adapters.store.config_versions import record_config_version
from astreinte_ari.adapters.store.journal import JournaledAuditWriter
from astreinte_ari.adapters.store.migrate import create_db_engine, ensure_migrated
from astreinte_ari.adapters.store.recovery import resume_point_for_channel
from astreinte_ari.adapters.store.retention import keep_retention
from astreinte_ari.alerting.runtime import Alerting, start_alerting
from astreinte_ari.callflow.recovery import ResumePoint
from astreinte_ari.callflow.runtime import SoundLibrary
from astreinte_ari.callflow.telephony import DialRefused, Resynced
from astreinte_ari.config.loader import ConfigError
from astreinte_ari.config.model import AppConfig, NumberNotAllowed
from astreinte_ari.config.watcher import ConfigWatcher
from astreinte_ari.metrics_server import MeteredAudit, MetricsServer
from astreinte_ari.routing.plan import CallPlan
from astreinte_ari.routing.ratelimit import CallerRateLimiter
from astreinte_ari.routing.router import build_plan
from astreinte_ari.service import OnCallService

log = logging.getLogger(__name__)

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
GRACEFUL_STOP_S = 600.0  # bridged calls finish; a second signal stops at once


class StartupError(Exception):
    """The service cannot start; the message says how to fix it."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class FileVoicemailStore:
    """Voicemail messages as WAV files under recordings_dir/YYYY/MM/<call>.wav."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, call_id: str, data: bytes, at: datetime) -> str:
        folder = self.root / f"{at:%Y}" / f"{at:%m}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{call_id}.wav"
        tmp = final.with_suffix(".part")
        # Write, fsync, rename: a crash never leaves half a message under the final name.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        return str(final)


def check_ari_url(url: str) -> None:
    """The ARI login is PBX-admin: plain HTTP only to this machine."""
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise StartupError(
            f"ari.url {url!r} sends the PBX admin password in clear over the network: "
            "use https:// or run the service on the Asterisk host (127.0.0.1)"
        )


class LiveConfig:
    """The configuration in force now; swapped whole, never mutated."""

    def __init__(self, config: AppConfig) -> None:
        self.current = config


def dial_guard(live: LiveConfig) -> Callable[[str], str]:
    def dial_string_for(number: str) -> str:
        try:
            return live.current.trunk.dial_string(number)
        except NumberNotAllowed as exc:
            log.error("refused to dial %r: %s", number, exc)
            raise DialRefused(str(exc)) from exc

    return dial_string_for


def _rate_limiter(config: AppConfig) -> CallerRateLimiter | None:
    limit = config.defaults.caller_rate_limit
    if limit is None:
        return None
    return CallerRateLimiter(
        limit.max_calls, timedelta(minutes=limit.window_minutes), limit.include_anonymous
    )


async def _watch_config(
    config: AppConfig,
    live: LiveConfig,
    engine: Engine,
    metrics: ServiceMetrics,
    alerting: Alerting | None,
) -> ConfigWatcher:
    """Pick up YAML edits within seconds; every accepted version goes to the trail."""

    async def record(text: str, previous: str | None) -> None:
        try:
            await asyncio.to_thread(
                record_config_version, engine, text, str(config.source_path), previous
            )
        except Exception:
            log.exception("could not record the configuration version in the audit trail")

    async def on_change(new_config: AppConfig, version: str) -> None:
        live.current = new_config
        metrics.set_config_version(version, str(config.source_path))
        await record(watcher.text, watcher.previous_text)
        if alerting is not None:
            try:
                await alerting.use_config(new_config)
            except Exception:  # the calls already follow the new version; alerts keep the old
                log.exception("alerting could not follow the configuration change")

    def on_error(error: ConfigError) -> None:
        for issue in error.issues:
            log.error("configuration refused: %s", issue)

    watcher = ConfigWatcher(config.source_path, config, on_change, on_error=on_error)
    await record(watcher.text, None)
    metrics.set_config_version(watcher.version, str(config.source_path))
    watcher.start()
    return watcher


async def run_service(config: AppConfig, stop: asyncio.Event | None = None) -> int:
    check_ari_url(config.ari.url)
    engine = create_db_engine(config.database_url())
    ensure_migrated(engine)  # raises DatabaseNotMigrated with the fix command
    config.recordings_dir.mkdir(parents=True, exist_ok=True)
    # Journal first: audit events survive a database outage and a crash during it.
    writer = JournaledAuditWriter(engine, config.journal_dir)
    client = AriClient(config.ari.url, config.ari.username, config.ari_password(), config.ari.app)
    # The live configuration: replaced by the watcher when a valid edit lands.
    # A call in progress keeps the plan it started with.
    live = LiveConfig(config)
    telephony = AriTelephony(client, dial_guard(live))

    alerting: Alerting | None = None  # started below; its override hook is read per call

    def plan_for(did: str, now: datetime) -> CallPlan | None:
        hook = alerting.on_call_override if alerting is not None else None
        return build_plan(live.current, did, now, on_call_override=hook)

    async def resume_lookup(channel_id: str) -> ResumePoint | None:
        return await asyncio.to_thread(resume_point_for_channel, engine, channel_id)

    metrics = ServiceMetrics()
    service = OnCallService(
        port=telephony,
        audit=MeteredAudit(writer, metrics),
        sounds=SoundLibrary(PurePosixPath(config.sounds_dir)),
        voicemail=FileVoicemailStore(config.recordings_dir),
        plan_for=plan_for,
        clock=utcnow,
        app=config.ari.app,
        resume_lookup=resume_lookup,
        rate_limiter=_rate_limiter(config),
        max_parallel_cascades=config.defaults.max_parallel_cascades,
    )

    async def on_message(data: dict[str, object]) -> None:
        event = event_from_json(data)
        if event is not None:
            await service.handle(event)

    async def on_connect() -> None:
        channels = tuple(channel_from_json(c) for c in await client.list_channels())
        bridges = tuple(bridge_from_json(b) for b in await client.list_bridges())
        await service.handle(Resynced(channels=channels, bridges=bridges))
        metrics.set_ari_connected(True)
        log.info(
            "astreinte ready: app %r, %d line(s), %d channel(s) on the PBX",
            config.ari.app,
            len(config.lines),
            len(channels),
        )

    # -- feature hooks (alerting, metrics, live reload) are wired below this line --
    service.add_call_listener(metrics.on_call_closed)
    metrics_server = MetricsServer(config.metrics, metrics) if config.metrics else None
    if metrics_server is not None:
        await metrics_server.start()
    alerting = await start_alerting(
        config=config, engine=engine, service=service, port=telephony, audit=writer, clock=utcnow
    )

    watcher = await _watch_config(config, live, engine, metrics, alerting)
    # Calls the dialplan fallback took while we were away join the audit trail.
    try:
        imported = await asyncio.to_thread(import_fallback_spool, config, writer)
        if imported:
            log.info("imported %d call(s) handled by the dialplan fallback", imported)
    except Exception:
        log.exception("could not import the fallback spool (kept for the next start)")
    fallback_task = asyncio.create_task(
        keep_fallback_published(client, lambda: live.current, utcnow)
    )
    retention_task = asyncio.create_task(
        keep_retention(engine, lambda: (live.current.retention, live.current.recordings_dir))
    )

    # Events journaled before a crash are written before calls are resumed from them.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(writer.flush(), timeout=5.0)

    stop = stop or asyncio.Event()
    hard_stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        # First signal: drain (calls in progress finish). Second: stop now.
        (hard_stop if stop.is_set() else stop).set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    await client.open()

    async def on_disconnect() -> None:
        metrics.set_ari_connected(False)

    events = asyncio.create_task(client.run_events(on_message, on_connect, on_disconnect))
    stopper = asyncio.create_task(stop.wait())
    fatal = asyncio.create_task(service.fatal.wait())
    await asyncio.wait({events, stopper, fatal}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        service.draining = True  # new calls go to the dialplan fallback
        if service.active_calls:
            log.info("stopping: waiting for %d call(s) in progress", service.active_calls)
            idle = asyncio.create_task(service.wait_idle(GRACEFUL_STOP_S))
            hard = asyncio.create_task(hard_stop.wait())
            await asyncio.wait({idle, hard}, return_when=asyncio.FIRST_COMPLETED)
            for task in (idle, hard):
                task.cancel()
    client.stop()
    for task in (events, stopper, fatal):
        task.cancel()
    await asyncio.gather(events, stopper, fatal, return_exceptions=True)
    if alerting is not None:
        await alerting.close()
    await watcher.stop()
    if metrics_server is not None:
        await metrics_server.close()
    for task in (fallback_task, retention_task):
        task.cancel()
    await asyncio.gather(fallback_task, retention_task, return_exceptions=True)
    await client.close()
    await writer.flush()
    writer.close()
    engine.dispose()
    log.info("astreinte stopped")
    return 3 if service.fatal.is_set() else 0
