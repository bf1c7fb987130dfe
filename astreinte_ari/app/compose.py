"""The one place where real edges (ARI, database, files) are built and injected.

build_service() builds the running service's parts (with app/features.py for
what waits for the database, app/store_edges.py for the database's edges and
app/alerting_edges.py for alerting's edges);
app/lifecycle.py runs and stops them. run_service() is both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from sqlalchemy import Engine

from astreinte_ari.adapters.ari.client import AriClient
from astreinte_ari.adapters.ari.events import bridge_from_json, channel_from_json, event_from_json
from astreinte_ari.adapters.ari.telephony import AriTelephony
from astreinte_ari.adapters.fallback.lastresort import keep_fallback_published
from astreinte_ari.adapters.fallback.live import FallbackLink
from astreinte_ari.adapters.http.metrics_server import MetricsServer, SelfTestTrigger
from astreinte_ari.adapters.metrics.audit import MeteredAudit
from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.adapters.pbx.cel import CelFile
from astreinte_ari.adapters.store.journal import JournaledAuditWriter
from astreinte_ari.adapters.store.leader_lock import AdvisoryLeaderLock
from astreinte_ari.adapters.store.migrate import create_db_engine
from astreinte_ari.adapters.store.recovery import open_calls
from astreinte_ari.adapters.store.retention import keep_retention
from astreinte_ari.adapters.store.voicemail_files import (
    FileVoicemailStore,
    keep_voicemails_stored,
)
from astreinte_ari.adapters.systemd import SystemdNotifier
from astreinte_ari.alerting.feed import AlertFeed
from astreinte_ari.app import lifecycle
from astreinte_ari.app.cluster import ClusterNode
from astreinte_ari.app.cluster_sweep import NodeLostSweeper
from astreinte_ari.app.features import DatabaseFeatures, LiveConfig
from astreinte_ari.app.lifecycle import AriHandlers, Loop, ServiceParts
from astreinte_ari.app.readiness import Readiness, keep_readiness
from astreinte_ari.app.rota_changes import keep_changes_applied
from astreinte_ari.app.selftest_edges import metrics_listener, token_matches
from astreinte_ari.app.startup import (
    StartupError,
    check_ari_url,
    database_ready,
    is_loopback,
    wait_for_ari,
)
from astreinte_ari.app.store_edges import (
    build_checkpointer,
    changes_reader,
    resume_lookup,
    rota_changes_service,
    utcnow,
)
from astreinte_ari.app.web_edges import build_web
from astreinte_ari.callflow.dispatch import OnCallService
from astreinte_ari.callflow.reconcile import Reconciler
from astreinte_ari.callflow.runtime import SoundLibrary
from astreinte_ari.callflow.selftest import LineSelfTester
from astreinte_ari.callflow.telephony import DialRefused, Resynced
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.plan import CallPlan, DialTarget
from astreinte_ari.routing.ratelimit import CallerRateLimiter, StillRing
from astreinte_ari.routing.router import build_plan
from astreinte_ari.routing.targets import refusal

__all__ = [
    "StartupError",
    "build_service",
    "check_ari_url",
    "dial_guard",
    "rota_changes_service",
    "run_service",
    "utcnow",
]

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 15.0  # open calls nobody handles: closed from the PBX's records


def dial_guard(live: LiveConfig) -> Callable[[DialTarget], None]:
    """The allow-list checked before every originate, against the configuration in
    force (the dial string itself is the plan's: never recomputed here)."""

    def check_target(target: DialTarget) -> None:
        reason = refusal(live.current, target)
        if reason is not None:
            log.error("refused to dial %s: %s", target.display, reason)
            raise DialRefused(reason)

    return check_target


def _rate_limiter(config: AppConfig) -> CallerRateLimiter | None:
    limit = config.defaults.caller_rate_limit
    if limit is None:
        return None
    every = limit.still_ring_every_minutes
    return CallerRateLimiter(
        limit.max_calls,
        timedelta(minutes=limit.window_minutes),
        limit.include_anonymous,
        still_ring_every=None if every is None else timedelta(minutes=every),
        still_ring=StillRing(limit.still_ring),
    )


async def _keep_sweeping(service: OnCallService, writer: JournaledAuditWriter) -> None:
    """Reconcile with the PBX periodically too: a database that comes back, a call
    the watchdog handed over whose fallback left no record."""
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        if writer.pending == 0:  # the trail is complete enough to compare
            await service.sweep()


def _ari_handlers(
    client: AriClient,
    service: OnCallService,
    metrics: ServiceMetrics,
    config: AppConfig,
    recheck: asyncio.Event,
    cluster: ClusterNode,
) -> AriHandlers:
    """ARI's JSON becomes typed events here; every (re)connection resyncs the calls."""

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
        cluster.nudge()  # cluster_nodes.ari_connected at once, not at the next heartbeat

    async def on_disconnect() -> None:
        service.ready.clear()
        metrics.set_ari_connected(False)
        recheck.set()
        cluster.nudge()

    return AriHandlers(on_message, on_connect, on_disconnect)


def _node_name(config: AppConfig) -> str:
    try:
        return config.node_name()
    except ValueError as exc:
        raise StartupError(str(exc)) from exc


def _cluster_node(config: AppConfig, engine: Engine, node: str, client: AriClient) -> ClusterNode:
    """This node's heartbeat and election: by advisory lock on PostgreSQL; a SQLite
    database has one node only, always the leader."""
    lock = None
    if engine.dialect.name == "postgresql":
        lock = AdvisoryLeaderLock(engine.url, node)
    return ClusterNode(
        node=node,
        config=config.cluster,
        engine=engine,
        lock=lock,
        ari_connected=client.connected.is_set,
        clock=utcnow,
    )


async def build_service(config: AppConfig, notifier: SystemdNotifier) -> ServiceParts:
    """Every part of the running service, built and wired; nothing started yet but
    the ARI check (a refused or unreachable PBX is a StartupError, nothing leaks)."""
    node = _node_name(config)
    engine = create_db_engine(config.database_url())
    db_ready = database_ready(engine, config)  # raises DatabaseNotMigrated with the fix
    # Journal first: audit events survive a database outage and a crash during it.
    writer = JournaledAuditWriter(engine, config.journal_dir, node=node)
    client = AriClient(
        config.ari.url,
        config.ari.username,
        config.ari_password(),
        config.ari.app,
        max_backoff_s=1.0 if is_loopback(config.ari.url) else 5.0,
    )
    try:
        checkpointer = build_checkpointer(engine, config)
        info = await wait_for_ari(client, config, on_wait=notifier.status)
    except StartupError:
        await client.close()
        writer.close()
        engine.dispose()
        raise
    # The live configuration: replaced by the watcher when a valid edit lands.
    live = LiveConfig(config)
    telephony = AriTelephony(client, dial_guard(live))
    metrics = ServiceMetrics()
    audit = MeteredAudit(writer, metrics)
    features: DatabaseFeatures  # the override hook reads it once alerting runs

    def plan_for(did: str, now: datetime) -> CallPlan | None:
        return build_plan(live.current, did, now, on_call_override=features.on_call_override)

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
        resume_lookup=resume_lookup(engine, writer),
        rate_limiter=_rate_limiter(config),
        max_parallel_cascades=config.defaults.max_parallel_cascades,
        pbx_records=records,
        reconciler=Reconciler(
            # This node's calls only: another node's are not on this node's Asterisk.
            open_calls=lambda: asyncio.to_thread(open_calls, engine, node),
            records=records,
            fallback_pending=lambda channel_id: fallback.pending_for(channel_id),
            audit=audit,
            clock=utcnow,
        ),
    )
    fallback = FallbackLink(lambda: live.current, writer, engine, plan_for, service.announce_closed)
    metrics.sample(
        journal_events=lambda: writer.pending,
        journal_bytes=writer.journal.size,
        fallback_imported=lambda: fallback.imported,
    )
    alert_feed = AlertFeed()  # holds ended calls until alerting runs
    service.add_call_listener(metrics.on_call_closed)
    service.add_call_listener(alert_feed.on_call_closed)
    cluster = _cluster_node(config, engine, node, client)
    cluster.sweeper = NodeLostSweeper(
        engine=engine,
        node=node,
        lost_after_s=config.cluster.node_lost_after_seconds,
        audit=audit,
        announce=service.announce_closed,
        plan_for=plan_for,
        clock=utcnow,
    )
    cluster.on_view = lambda rows: metrics.set_cluster(
        node, cluster.leading(), cluster.alive_nodes()
    )
    selftest = LineSelfTester(
        service=service,
        port=telephony,
        plan_for=plan_for,
        config=lambda: live.current,
        clock=utcnow,
        listeners=(metrics_listener(metrics),),
    )
    features = DatabaseFeatures(
        cluster=cluster,
        config=config,
        live=live,
        engine=engine,
        metrics=metrics,
        service=service,
        alert_feed=alert_feed,
        clock=utcnow,
        selftest=selftest,
    )
    read_changes = changes_reader(engine)
    rota_changes = rota_changes_service(
        engine,
        lambda: live.yaml,
        # Approved here: in force for the next call at once, not at the next poll.
        on_approved=lambda: live.use_changes(read_changes()),
    )
    recheck = asyncio.Event()
    version = str((info.get("system") or {}).get("version") or "") or None
    readiness = Readiness(
        client,
        lambda: live.current,
        engine,
        config.journal_dir,
        version=version,
        cluster_view=cluster.view,
    )
    metrics_server = (
        MetricsServer(config.metrics, metrics, readiness.report, _test_trigger(selftest, config))
        if config.metrics
        else None
    )
    loops: list[Loop] = [
        lambda: fallback.keep_importing(asyncio.Event()),  # cancelled at stop
        lambda: keep_fallback_published(
            client, lambda: live.current, utcnow, on_call_override=features.on_call_override
        ),
        cluster.run,
        # The scheduled work of the whole cluster: on its leader only.
        lambda: cluster.while_leading(
            lambda: keep_retention(
                engine,
                lambda: (live.current.retention, live.current.recordings_dir),
                after_run=checkpointer.sign if checkpointer else None,
            )
        ),
        lambda: _keep_sweeping(service, writer),
        lambda: keep_readiness(readiness, notifier, recheck),
        lambda: keep_voicemails_stored(
            engine, telephony.fetch_recording, telephony.delete_recording, utcnow
        ),
        features.keep_counting_open_alerts,
        lambda: keep_changes_applied(
            live,
            read_changes,
            lambda: live.yaml.changes_refresh_seconds,
            on_applied=features.follow_rota_changes,
        ),
    ]
    if checkpointer is not None:
        loops.append(lambda: cluster.while_leading(checkpointer.keep_signing))
    return ServiceParts(
        config=config,
        engine=engine,
        writer=writer,
        client=client,
        ari=_ari_handlers(client, service, metrics, config, recheck, cluster),
        service=service,
        notifier=notifier,
        features=features,
        db_ready=db_ready,
        metrics_server=metrics_server,
        checkpointer=checkpointer,
        cluster=cluster,
        loops=tuple(loops),
        rota_changes=rota_changes,
        web_server=build_web(
            config,
            engine=engine,
            current=lambda: live.current,
            service=service,
            clock=utcnow,
            on_call_override=features.on_call_override,
            changes=rota_changes,
        ),
    )


def _test_trigger(selftest: LineSelfTester, config: AppConfig) -> SelfTestTrigger:
    """`astreinte test-call` asks the service, which owns the ARI application."""
    password = config.ari_password()
    return SelfTestTrigger(selftest.run, lambda token: token_matches(token, password))


async def run_service(
    config: AppConfig,
    stop: asyncio.Event | None = None,
    notifier: SystemdNotifier | None = None,
) -> int:
    check_ari_url(config.ari.url)
    notifier = notifier or SystemdNotifier(None)  # systemd's: READY=1, STATUS=, STOPPING=1
    parts = await build_service(config, notifier)
    return await lifecycle.run(parts, stop or asyncio.Event())
