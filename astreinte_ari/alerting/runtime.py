"""start_alerting: builds notifiers, the persistent scheduler and the link endpoint.

The one entry point wiring.py calls. Reminders are APScheduler 3 jobs in a
SQLAlchemyJobStore in the service's own database (table apscheduler_jobs,
created by APScheduler), so a restart loses no pending reminder, escalation
or shift alert.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, func, select

from astreinte_ari.adapters.http.alert_links import LinkEndpoint
from astreinte_ari.adapters.notify.email import EmailNotifier
from astreinte_ari.adapters.notify.sms import SmsNotifier
from astreinte_ari.adapters.notify.voice import VoiceNotifier
from astreinte_ari.adapters.store.alert_links import AlertLinkStore
from astreinte_ari.adapters.store.alerts import AlertStore
from astreinte_ari.adapters.store.models import hops_table
from astreinte_ari.alerting.engine import AlertEngine
from astreinte_ari.alerting.links import LinkSigner
from astreinte_ari.alerting.ports import Notifier
from astreinte_ari.alerting.shifts import plan_shift_alerts
from astreinte_ari.callflow.runtime import AuditSink, SoundLibrary
from astreinte_ari.callflow.telephony import TelephonyPort
from astreinte_ari.config import secrets
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

_ACTIVE: dict[str, AlertEngine] = {}  # the running engine, found by the persisted jobs
PLAN_EVERY = timedelta(hours=1)
OVERRIDES_EVERY = timedelta(seconds=30)


async def run_alert_job(alert_id: str) -> None:
    """Persisted job target (referenced by name in the job store)."""
    engine = _ACTIVE.get("engine")
    if engine is None:
        log.error("alert job %s fired with no alert engine running", alert_id)
        return
    await engine.run_due(alert_id)


def link_key(config: AppConfig) -> bytes:
    assert config.alerting is not None
    links = config.alerting.links
    key_file = links.key_file
    if key_file is not None and not key_file.is_absolute():
        key_file = config.base_dir / key_file
    return secrets.resolve_secret(links.key_env, key_file, what="link signing key").encode()


class Alerting:
    """The running alert feature: engine, scheduler, link endpoint."""

    def __init__(self, engine: AlertEngine, scheduler: AsyncIOScheduler, config: AppConfig) -> None:
        self.engine = engine
        self.scheduler = scheduler
        self.config = config
        self.endpoint: LinkEndpoint | None = None

    # router hook (routing.router.OnCallOverride)
    def on_call_override(self, team: str, rota: str, at: datetime) -> str | None:
        return self.engine.on_call_override(team, rota, at)

    async def plan_shifts(self) -> int:
        return await plan_shift_alerts(self.config, self.engine, self.engine.clock())

    async def use_config(self, config: AppConfig) -> None:
        """Follow a live configuration edit (the service's watcher calls this).

        Rotas, people, policies, per-person channels and shift-start rules apply
        at once (shift starts are re-planned); the notifiers and the link endpoint
        were built at start: a change there is logged and needs a restart."""
        old = self.config.alerting
        if config.alerting is None or old is None:
            log.warning("alerting: added or removed in the configuration: restart to apply")
            return
        for part in ("smtp", "sms", "voice", "links"):
            if getattr(config.alerting, part) != getattr(old, part):
                log.warning("alerting.%s changed: restart the service to apply it", part)
        self.config = config
        self.engine.use_config(config)
        created = await self.plan_shifts()
        if created:
            log.info("alerting: %d shift start(s) planned after the configuration change", created)

    async def fire_due(self) -> int:
        """Run the persisted jobs due by the engine's clock (tests drive time this way)."""
        fired = 0
        now = self.engine.clock()
        for job in self.scheduler.get_jobs(jobstore="default"):
            if job.next_run_time is not None and job.next_run_time <= now:
                job.remove()
                await job.func(*job.args)
                fired += 1
        return fired

    async def close(self) -> None:
        await self.engine.drain(timeout=5)
        self.scheduler.shutdown(wait=False)
        if self.endpoint is not None:
            await self.endpoint.close()
        _ACTIVE.pop("engine", None)


def _schedule_fn(scheduler: AsyncIOScheduler) -> Callable[[str, datetime], None]:
    def schedule(alert_id: str, at: datetime) -> None:
        scheduler.add_job(
            run_alert_job,
            "date",
            run_date=at,
            args=[alert_id],
            id=f"alert-{alert_id}",
            replace_existing=True,
            misfire_grace_time=None,  # late (after a restart) is better than never
            coalesce=True,
            jobstore="default",
        )

    return schedule


def _unschedule_fn(scheduler: AsyncIOScheduler) -> Callable[[str], None]:
    def unschedule(alert_id: str) -> None:
        with contextlib.suppress(JobLookupError):
            scheduler.remove_job(f"alert-{alert_id}", jobstore="default")

    return unschedule


def _next_hop_seq(db: Engine) -> Callable[[str], int]:
    def next_seq(call_id: str) -> int:
        with db.connect() as conn:
            current = conn.scalar(
                select(func.max(hops_table.c.seq)).where(hops_table.c.call_id == call_id)
            )
        return int(current or 0) + 1

    return next_seq


async def start_alerting(
    *,
    config: AppConfig,
    engine: Engine,
    service: Any,
    port: TelephonyPort,
    audit: AuditSink,
    clock: Callable[[], datetime],
    paused: bool = False,
    links_port: int | None = None,
) -> Alerting | None:
    """Start alerts if `alerting:` is configured; None otherwise.

    `paused` keeps APScheduler from firing on real time (tests drive jobs with
    `fire_due()` and an injected clock); `links_port` overrides the listen port.
    """
    cfg = config.alerting
    if cfg is None:
        return None
    notifiers: dict[str, Notifier] = {}
    if cfg.smtp is not None:
        password = None
        if cfg.smtp.username:
            password = secrets.resolve_secret(
                cfg.smtp.password_env, cfg.smtp.password_file, what="SMTP password"
            )
        ca_file = cfg.smtp.ca_file
        if ca_file is not None and not ca_file.is_absolute():
            ca_file = config.base_dir / ca_file
        tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        notifiers["email"] = EmailNotifier(cfg.smtp, password, tls)
    if cfg.sms is not None:
        notifiers["sms"] = SmsNotifier(cfg.sms)
    notifiers["voice"] = VoiceNotifier(
        port=port,
        open_session=service.open_session,
        sounds=SoundLibrary(PurePosixPath(config.sounds_dir)),
        audit=audit,
        caller_id=cfg.voice.caller_id or config.trunk.caller_id,
        ring_timeout_s=cfg.voice.ring_timeout,
        next_hop_seq=_next_hop_seq(engine),
        clock=clock,
        telephony_ready=getattr(service, "wait_ready", None),
    )
    signer = LinkSigner(link_key(config))  # links sent by earlier releases
    links = AlertLinkStore(engine)
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine), "memory": MemoryJobStore()},
        timezone=UTC,
    )
    alert_engine = AlertEngine(
        config=config,
        store=AlertStore(engine),
        notifiers=notifiers,
        links=links,
        clock=clock,
        schedule=_schedule_fn(scheduler),
        unschedule=_unschedule_fn(scheduler),
    )
    _ACTIVE["engine"] = alert_engine
    scheduler.start(paused=paused)
    alerting = Alerting(alert_engine, scheduler, config)
    await alert_engine.refresh_overrides()
    for job_id, every, target in (
        ("shift-planner", PLAN_EVERY, alerting.plan_shifts),
        ("overrides", OVERRIDES_EVERY, alert_engine.refresh_overrides),
    ):
        scheduler.add_job(
            target,
            "interval",
            seconds=every.total_seconds(),
            id=job_id,
            jobstore="memory",
            replace_existing=True,
        )
    await alerting.plan_shifts()
    service.add_call_listener(alert_engine.on_call_closed)
    endpoint = LinkEndpoint(
        alert_engine, links, signer, Path(config.recordings_dir), cfg.links.public_url
    )
    await endpoint.start(
        cfg.links.listen_host, cfg.links.listen_port if links_port is None else links_port
    )
    alerting.endpoint = endpoint
    log.info(
        "alerting ready: %d pending job(s), links on %s:%s",
        len(scheduler.get_jobs(jobstore="default")),
        cfg.links.listen_host,
        endpoint.port,
    )
    return alerting
