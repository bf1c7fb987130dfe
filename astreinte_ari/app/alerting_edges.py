"""Alerting's edges, built here and given to alerting as ports (alerting/ports.py):
the notifiers (email, SMS, voice over the service's telephony), the webhooks,
the alert tables, the persisted wake-ups and the HTTP endpoint of the links,
which also serves the calendar feeds and takes the SMS gateway's replies."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import Engine

from astreinte_ari.adapters.http.alert_links import LinkEndpoint
from astreinte_ari.adapters.http.calendar_feed import CalendarFeedRoutes
from astreinte_ari.adapters.http.sms_inbound import SmsInboundRoutes
from astreinte_ari.adapters.metrics.alerts import MeteredNotifier
from astreinte_ari.adapters.metrics.prometheus import ServiceMetrics
from astreinte_ari.adapters.notify.email import EmailNotifier
from astreinte_ari.adapters.notify.sms import SmsNotifier
from astreinte_ari.adapters.notify.voice import VoiceNotifier
from astreinte_ari.adapters.notify.webhook import WebhookPublisher, build_publisher
from astreinte_ari.adapters.scheduler.apscheduler_jobs import PersistentScheduler
from astreinte_ari.adapters.store.alert_links import AlertLinkStore
from astreinte_ari.adapters.store.alerts import AlertStore
from astreinte_ari.adapters.store.calendar_feeds import CalendarFeedStore
from astreinte_ari.adapters.store.inbound_sms import note_inbound_sms
from astreinte_ari.adapters.store.recording_access import note_voicemail_access
from astreinte_ari.adapters.store.recovery import next_hop_seq
from astreinte_ari.alerting.links import LinkSigner
from astreinte_ari.alerting.ports import Notifier
from astreinte_ari.alerting.runtime import Alerting
from astreinte_ari.alerting.sms_reply import SmsReplies
from astreinte_ari.app.cluster import ClusterNode
from astreinte_ari.config import secrets
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.targets import trunk_target

log = logging.getLogger(__name__)
SPOOL_EVERY = timedelta(seconds=30)  # webhook deliveries left in the spool are picked up
MIN_INBOUND_SECRET = 16  # characters; all that stands between a stranger and an ack


def link_key(config: AppConfig) -> bytes:
    assert config.alerting is not None
    links = config.alerting.links
    key_file = links.key_file
    if key_file is not None and not key_file.is_absolute():
        key_file = config.base_dir / key_file
    return secrets.resolve_secret(links.key_env, key_file, what="link signing key").encode()


def build_notifiers(
    config: AppConfig,
    *,
    engine: Engine,
    service: Any,
    current_config: Callable[[], AppConfig] | None = None,
) -> dict[str, Notifier]:
    """One notifier per configured channel; voice always (it needs only the PBX).
    `current_config`: the configuration in force (default `config`), whose trunk
    turns a number into what a voice alert dials."""
    current = current_config or (lambda: config)
    cfg = config.alerting
    assert cfg is not None
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
        calls=service,
        caller_id=cfg.voice.caller_id or config.trunk.caller_id,
        ring_timeout_s=cfg.voice.ring_timeout,
        next_hop_seq=functools.partial(next_hop_seq, engine),
        # Resolved when the alert call starts; the telephony adapter checks the target
        # again, against the live configuration, right before each originate.
        dial_target=lambda number: trunk_target(current().trunk, number),
    )
    return notifiers


def inbound_sms_secret(config: AppConfig) -> str | None:
    """The secret the SMS gateway posts replies with; None if replies are not taken."""
    sms = config.alerting.sms if config.alerting else None
    if sms is None or sms.inbound is None:
        return None
    secret_file = sms.inbound.secret_file
    if secret_file is not None and not secret_file.is_absolute():
        secret_file = config.base_dir / secret_file
    secret = secrets.resolve_secret(sms.inbound.secret_env, secret_file, what="inbound SMS secret")
    if len(secret) < MIN_INBOUND_SECRET:
        raise secrets.SecretError(
            f"the inbound SMS secret must be at least {MIN_INBOUND_SECRET} characters"
        )
    return secret


def _more_routes(
    config: AppConfig,
    engine: Engine,
    alerting: Alerting,
    current_config: Callable[[], AppConfig] | None,
    clock: Callable[[], datetime],
    inbound_secret: str | None,
) -> list[Callable[[str], list[web.RouteDef]]]:
    """The calendar feeds, and the SMS gateway's inbound messages when configured."""
    feeds = CalendarFeedRoutes(
        CalendarFeedStore(engine).resolve, current_config or (lambda: alerting.config), clock
    )
    routes = [feeds.routes]
    sms = config.alerting.sms if config.alerting else None
    if sms is not None and sms.inbound is not None and inbound_secret is not None:
        inbound = sms.inbound
        replies = SmsReplies(
            alerting.engine,
            AlertStore(engine),
            functools.partial(note_inbound_sms, engine),
            national_prefix=inbound.national_prefix,
            help_reply=inbound.help_reply,
        )
        alerting.hold(replies)
        routes.append(SmsInboundRoutes(replies.handle, inbound_secret, inbound).routes)
    return routes


async def start_alerting(
    *,
    config: AppConfig,
    engine: Engine,
    service: Any,
    clock: Callable[[], datetime],
    paused: bool = False,
    links_port: int | None = None,
    metrics: ServiceMetrics | None = None,
    cluster: ClusterNode | None = None,
    current_config: Callable[[], AppConfig] | None = None,
) -> Alerting | None:
    """Start alerts if `alerting:` is configured; None otherwise.

    `service` is the call service (OnCallService): alerts hear of every call
    that ends, and voice alerts are calls on its telephony. `paused` keeps the
    wake-ups from firing on real time (tests run them with `fire_due()` and an
    injected clock); `links_port` overrides the listen port. `cluster`: the wake-ups
    run on its leader only (every node adds them to the shared store).
    `current_config`: the configuration in force (the service's live one), which
    the calendar feeds are computed from at each fetch; default: alerting's.
    """
    cfg = config.alerting
    if cfg is None:
        return None
    # Alerting follows configuration edits (use_config): so does the trunk of voice alerts.
    notifiers = build_notifiers(
        config, engine=engine, service=service, current_config=lambda: alerting.config
    )
    if metrics is not None:  # deliveries by channel and result (/metrics)
        notifiers = {via: MeteredNotifier(n, metrics) for via, n in notifiers.items()}
    webhooks: WebhookPublisher | None = None
    if cfg.webhooks:  # a missing webhook secret stops the start, like the others
        counted = metrics.on_alert_delivery if metrics is not None else None
        spool = config.journal_dir / "webhooks"  # deliveries wait there across restarts
        webhooks = build_publisher(cfg.webhooks, config.base_dir, counted, spool)
    signer = LinkSigner(link_key(config))  # links sent by earlier releases
    inbound_secret = inbound_sms_secret(config)  # missing: the start stops, like the others
    links = AlertLinkStore(engine)
    gate = cluster.leading if cluster is not None else None
    scheduler = PersistentScheduler(engine, paused=paused, gate=gate)
    alerting = await Alerting.start(
        config=config,
        store=AlertStore(engine),
        notifiers=notifiers,
        links=links,
        scheduler=scheduler,
        clock=clock,
        events=webhooks,
    )
    if webhooks is not None:
        alerting.hold(webhooks)
        webhooks.resume()  # what the previous run left undelivered
        publisher = webhooks

        async def pick_up_spooled() -> int:  # e.g. acknowledgements made with the CLI
            return publisher.resume()

        scheduler.every("webhook-spool", SPOOL_EVERY, pick_up_spooled, every_node=True)
    if cluster is not None:
        cluster.follow(scheduler.follow)
    service.add_call_listener(alerting.engine.on_call_closed)
    endpoint = LinkEndpoint(
        alerting.engine,
        links,
        signer,
        Path(config.recordings_dir),
        cfg.links.public_url,
        note_access=lambda subject, path, person: note_voicemail_access(
            engine, subject, path, person
        ),
        more_routes=_more_routes(config, engine, alerting, current_config, clock, inbound_secret),
    )
    await endpoint.start(
        cfg.links.listen_host, cfg.links.listen_port if links_port is None else links_port
    )
    alerting.hold(endpoint)
    log.info(
        "alerting ready: %d pending job(s), links on %s:%s",
        scheduler.pending(),
        cfg.links.listen_host,
        endpoint.port,
    )
    return alerting
