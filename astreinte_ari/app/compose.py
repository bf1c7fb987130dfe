"""The one place where real edges (ARI, database, files) are built and injected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from astreinte_ari.adapters.ari.client import AriAuthError, AriClient
from astreinte_ari.adapters.ari.events import bridge_from_json, channel_from_json, event_from_json
from astreinte_ari.adapters.ari.telephony import AriTelephony
from astreinte_ari.adapters.fallback.lastresort import keep_fallback_published
from astreinte_ari.adapters.fallback.live import FallbackLink
from astreinte_ari.adapters.http.metrics_server import MeteredAudit, MetricsServer
from astreinte_ari.adapters.metrics import ServiceMetrics
from astreinte_ari.adapters.pbx.cel import CelFile
from astreinte_ari.adapters.store.config_versions import record_config_version
from astreinte_ari.adapters.store.journal import JournaledAuditWriter
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.recovery import open_calls, resume_point_for_channel
from astreinte_ari.adapters.store.retention import keep_retention
from astreinte_ari.adapters.store.voicemail_files import (
    FileVoicemailStore,
    keep_voicemails_stored,
)
from astreinte_ari.adapters.systemd import SystemdNotifier
from astreinte_ari.alerting.feed import AlertFeed
from astreinte_ari.alerting.runtime import Alerting, start_alerting
from astreinte_ari.app.readiness import Readiness, keep_readiness
from astreinte_ari.app.startup import (
    EXIT_APP_REPLACED,
    EXIT_ARI_REFUSED,
    StartupError,
    check_ari_url,
    database_ready,
    is_loopback,
    refused_message,
    wait_for_ari,
)
from astreinte_ari.callflow.dispatch import OnCallService
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.reconcile import Reconciler
from astreinte_ari.callflow.recovery import UNKNOWN_SEQ_GAP, ResumePoint, resume_point_from_events
from astreinte_ari.callflow.runtime import SoundLibrary
from astreinte_ari.callflow.telephony import DialRefused, Resynced
from astreinte_ari.config.loader import ConfigError
from astreinte_ari.config.model import AppConfig, NumberNotAllowed
from astreinte_ari.config.watcher import ConfigWatcher
from astreinte_ari.routing.plan import CallPlan
from astreinte_ari.routing.ratelimit import CallerRateLimiter
from astreinte_ari.routing.router import build_plan
from astreinte_ari.schedule.validate import load_checked_config

__all__ = ["StartupError", "check_ari_url", "run_service"]

if TYPE_CHECKING:
    from astreinte_ari.adapters.store.checkpointing import Checkpointer

log = logging.getLogger(__name__)

GRACEFUL_STOP_S = 600.0  # bridged calls finish; a second signal stops at once
SWEEP_EVERY_S = 15.0  # open calls nobody handles: closed from the PBX's records
DATABASE_RETRY_S = 2.0


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    alerting: Callable[[], Alerting | None],
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
        running = alerting()
        if running is not None:
            try:
                await running.use_config(new_config)
            except Exception:  # the calls already follow the new version; alerts keep the old
                log.exception("alerting could not follow the configuration change")

    def on_error(error: ConfigError) -> None:
        for issue in error.issues:
            log.error("configuration refused: %s", issue)

    watcher = ConfigWatcher(
        config.source_path, config, on_change, on_error=on_error, load=load_checked_config
    )
    await record(watcher.text, None)
    metrics.set_config_version(watcher.version, str(config.source_path))
    watcher.start()
    return watcher


def _resume_lookup(
    engine: Engine, writer: JournaledAuditWriter
) -> Callable[[str], asyncio.Future[ResumePoint | None]]:
    """Where an earlier process left a call: the database, completed by the journal
    (the only record while the database is down)."""

    async def lookup(channel_id: str) -> ResumePoint | None:
        call_id = call_id_for_channel(channel_id)
        try:
            base = await asyncio.wait_for(
                asyncio.to_thread(resume_point_for_channel, engine, channel_id), 3.0
            )
        except Exception as exc:
            log.warning("trail unreadable to resume %s (%s): using the journal", channel_id, exc)
            point = resume_point_from_events(call_id, writer.replayed_events)
            if point is None:  # the database may know more than the journal: skip past it
                point = ResumePoint(call_id, UNKNOWN_SEQ_GAP, 0, ())
            return point
        if base is None:
            return resume_point_from_events(call_id, writer.replayed_events)
        return resume_point_from_events(call_id, writer.replayed_events, base)

    return lookup  # type: ignore[return-value]


def _checkpointer(engine: Engine, config: AppConfig) -> Checkpointer | None:
    """Signed checkpoints of the audit chain, when a signing key is configured."""
    if config.audit.signing_key_file is None:
        return None
    # Imported only when used: the cryptography package costs memory nobody else needs.
    from astreinte_ari.adapters.store.checkpointing import Checkpointer

    try:
        return Checkpointer(engine, config.audit, utcnow)
    except (OSError, ValueError) as exc:
        raise StartupError(
            f"audit.signing_key_file: {exc}; create one with `astreinte audit keygen --out "
            f"{config.audit.signing_key_file}` (readable by the service user only)"
        ) from exc


def _override_of(alerting_box: list[Alerting]) -> Callable[[str, str, datetime], str | None]:
    """The alerting's runtime replacements (shift starts), once alerting runs."""

    def override(team: str, rota: str, at: datetime) -> str | None:
        return alerting_box[0].on_call_override(team, rota, at) if alerting_box else None

    return override


async def _keep_sweeping(service: OnCallService, writer: JournaledAuditWriter) -> None:
    """Reconcile with the PBX periodically too: a database that comes back, a call
    the watchdog handed over whose fallback left no record."""
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        if writer.pending == 0:  # the trail is complete enough to compare
            await service.sweep()


async def run_service(
    config: AppConfig,
    stop: asyncio.Event | None = None,
    notifier: SystemdNotifier | None = None,
) -> int:
    check_ari_url(config.ari.url)
    notifier = notifier or SystemdNotifier(None)  # systemd's: READY=1, STATUS=, STOPPING=1
    engine = create_db_engine(config.database_url())
    db_ready = database_ready(engine, config)  # raises DatabaseNotMigrated with the fix
    # Journal first: audit events survive a database outage and a crash during it.
    writer = JournaledAuditWriter(engine, config.journal_dir)
    client = AriClient(
        config.ari.url,
        config.ari.username,
        config.ari_password(),
        config.ari.app,
        max_backoff_s=1.0 if is_loopback(config.ari.url) else 5.0,
    )
    try:
        checkpointer = _checkpointer(engine, config)
        info = await wait_for_ari(client, config, on_wait=notifier.status)
    except StartupError:
        await client.close()
        writer.close()
        engine.dispose()
        raise
    # The live configuration: replaced by the watcher when a valid edit lands.
    # A call in progress keeps the plan it started with.
    live = LiveConfig(config)
    telephony = AriTelephony(client, dial_guard(live))
    metrics = ServiceMetrics()
    audit = MeteredAudit(writer, metrics)
    alerting_box: list[Alerting] = []  # started once the database answers

    def plan_for(did: str, now: datetime) -> CallPlan | None:
        return build_plan(live.current, did, now, on_call_override=_override_of(alerting_box))

    records = CelFile(config.cel.file)
    if not records.available:
        log.warning(
            "no readable CEL file (cel.file): calls that end while the service is away "
            "are closed without the PBX's time and cause; see dialplan/cel_custom_astreinte.conf"
        )
    service = OnCallService(
        port=telephony,
        audit=audit,
        sounds=SoundLibrary(PurePosixPath(config.sounds_dir)),
        voicemail=FileVoicemailStore(config.recordings_dir),
        plan_for=plan_for,
        clock=utcnow,
        app=config.ari.app,
        resume_lookup=_resume_lookup(engine, writer),
        rate_limiter=_rate_limiter(config),
        max_parallel_cascades=config.defaults.max_parallel_cascades,
        pbx_records=records,
        reconciler=Reconciler(
            open_calls=lambda: asyncio.to_thread(open_calls, engine),
            records=records,
            fallback_pending=lambda channel_id: fallback.pending_for(channel_id),
            audit=audit,
            clock=utcnow,
        ),
    )
    fallback = FallbackLink(lambda: live.current, writer, engine, plan_for, service.announce_closed)
    alert_feed = AlertFeed()  # holds ended calls until alerting runs
    service.add_call_listener(metrics.on_call_closed)
    service.add_call_listener(alert_feed.on_call_closed)

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
            "ARI connected: app %r, %d line(s), %d channel(s) on the PBX",
            config.ari.app,
            len(config.lines),
            len(channels),
        )
        recheck.set()  # "astreinte ready" only once the PBX checks pass (readiness.py)

    async def on_disconnect() -> None:
        service.ready.clear()
        metrics.set_ari_connected(False)
        recheck.set()

    recheck = asyncio.Event()
    version = str((info.get("system") or {}).get("version") or "") or None
    readiness = Readiness(client, lambda: live.current, engine, config.journal_dir, version=version)
    metrics_server = (
        MetricsServer(config.metrics, metrics, readiness.report) if config.metrics else None
    )
    if metrics_server is not None:
        await metrics_server.start()

    async def start_features() -> None:
        """What needs the database: alerting (its job store), config versions."""
        nonlocal watcher
        while not await asyncio.to_thread(database_ready, engine, config, quiet=True):
            await asyncio.sleep(DATABASE_RETRY_S)
        alerting = await start_alerting(
            config=config,
            engine=engine,
            service=service,
            port=telephony,
            audit=writer,
            clock=utcnow,
        )
        if alerting is not None:
            alerting_box.append(alerting)
            alert_feed.attach(alerting.engine.on_call_closed)
        watcher = await _watch_config(
            config, live, engine, metrics, lambda: alerting_box[0] if alerting_box else None
        )

    watcher: ConfigWatcher | None = None
    features = asyncio.create_task(start_features())
    if db_ready:
        await features  # alerting runs before the first call, as it always has
    background = [
        asyncio.create_task(fallback.keep_importing(asyncio.Event())),  # cancelled at stop
        asyncio.create_task(
            keep_fallback_published(
                client, lambda: live.current, utcnow, on_call_override=_override_of(alerting_box)
            )
        ),
        asyncio.create_task(
            keep_retention(
                engine,
                lambda: (live.current.retention, live.current.recordings_dir),
                after_run=checkpointer.sign if checkpointer else None,
            )
        ),
        asyncio.create_task(_keep_sweeping(service, writer)),
        asyncio.create_task(keep_readiness(readiness, notifier, recheck)),
        asyncio.create_task(
            keep_voicemails_stored(
                engine, telephony.fetch_recording, telephony.delete_recording, utcnow
            )
        ),
    ]
    if checkpointer is not None:
        background.append(asyncio.create_task(checkpointer.keep_signing()))
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
    events = asyncio.create_task(client.run_events(on_message, on_connect, on_disconnect))
    stopper = asyncio.create_task(stop.wait())
    fatal = asyncio.create_task(service.fatal.wait())
    await asyncio.wait({events, stopper, fatal}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if events.done() and isinstance(events.exception(), AriAuthError):
        log.critical("%s", refused_message(config))
        code = EXIT_ARI_REFUSED
    elif service.fatal.is_set():
        code = EXIT_APP_REPLACED
    if stop.is_set():
        service.draining = True  # new calls go to the dialplan fallback
        notifier.stopping(f"draining: {service.active_calls} call(s) in progress")
        if service.active_calls:
            log.info("stopping: waiting for %d call(s) in progress", service.active_calls)
            idle = asyncio.create_task(service.wait_idle(GRACEFUL_STOP_S))
            hard = asyncio.create_task(hard_stop.wait())
            await asyncio.wait({idle, hard}, return_when=asyncio.FIRST_COMPLETED)
            for task in (idle, hard):
                task.cancel()
    client.stop()
    for task in (events, stopper, fatal, features, *background):
        task.cancel()
    await asyncio.gather(events, stopper, fatal, features, *background, return_exceptions=True)
    for alerting in alerting_box:
        await alerting.close()
    if watcher is not None:
        await watcher.stop()
    if metrics_server is not None:
        await metrics_server.close()
    await client.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.flush(), timeout=5.0)
        if checkpointer is not None:
            await checkpointer.sign()  # what this run wrote last is signed too
    writer.close()
    engine.dispose()
    log.info("astreinte stopped")
    return code
