"""The web planning's edges (part of the composition root, like alerting_edges.py):
its store, the notifiers that carry sign-in links, and its HTTP listener."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from astreinte_ari.adapters.http.web_changes import ChangeHandlers
from astreinte_ari.adapters.http.web_feeds import FeedHandlers
from astreinte_ari.adapters.http.web_server import WebServer
from astreinte_ari.adapters.store.calendar_feeds import CalendarFeedStore
from astreinte_ari.adapters.store.web_sessions import SqlWebStore
from astreinte_ari.alerting.ports import AlertMessage, Notifier, Recipient
from astreinte_ari.app.alerting_edges import build_notifiers
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.router import OnCallOverride
from astreinte_ari.web.auth import find_person, new_token
from astreinte_ari.web.ports import ChangesPort
from astreinte_ari.web.signin import SignInDesk

log = logging.getLogger(__name__)


class NotifierLinkSender:
    """Sign-in links through the alerting notifiers (alerting.smtp, alerting.sms)."""

    def __init__(self, notifiers: dict[str, Notifier], config: Callable[[], AppConfig]) -> None:
        self.notifiers = notifiers
        self.config = config

    async def send_login_link(
        self, person_id: str, via: str, url: str, language: str, minutes: int
    ) -> None:
        notifier = self.notifiers.get(via)
        person = find_person(self.config(), person_id)
        if notifier is None or person is None:
            raise RuntimeError(f"no {via} notifier configured, or {person_id} is gone")
        if language == "en":
            subject = "Your sign-in link to the on-call planning"
            text = f"Sign in to the on-call planning (valid {minutes} min, once): {url}"
        else:
            subject = "Votre lien de connexion au planning d'astreinte"
            text = f"Connexion au planning d'astreinte (valable {minutes} min, une fois) : {url}"
        await notifier.send(
            Recipient(person_id, person.name, person.mobile or "", person.email),
            AlertMessage(
                alert_id=f"login-{new_token()[:8]}",
                kind="login_link",
                subject=subject,
                text=text,
                language=language,
            ),
        )


def link_notifiers(config: AppConfig, engine: Engine, service: Any) -> dict[str, Notifier]:
    if config.alerting is None:
        return {}
    built = build_notifiers(config, engine=engine, service=service)
    return {via: n for via, n in built.items() if via in ("email", "sms")}


def build_web(
    config: AppConfig,
    *,
    engine: Engine,
    current: Callable[[], AppConfig],
    service: Any,
    clock: Callable[[], datetime],
    on_call_override: OnCallOverride | None,
    changes: ChangesPort | None = None,
) -> WebServer | None:
    """The web planning if `web:` is configured; None otherwise."""
    if config.web is None:
        return None
    notifiers = link_notifiers(config, engine, service)
    if not notifiers:
        log.warning("web: no alerting.smtp nor alerting.sms: sign-in links only by the CLI")
    desk = SignInDesk(
        SqlWebStore(engine), NotifierLinkSender(notifiers, current) if notifiers else None,
        current, clock,
    )  # fmt: skip
    server = WebServer(desk, current, clock, on_call_override)
    if changes is not None:
        ChangeHandlers(server, changes)  # the change pages and the JSON API
    FeedHandlers(server, CalendarFeedStore(engine))  # self-service calendar subscriptions
    return server


def desk_for_cli(config: AppConfig, engine: Engine, clock: Callable[[], datetime]) -> SignInDesk:
    """`astreinte web login-link`: links written to the same store, nothing sent."""
    return SignInDesk(SqlWebStore(engine), None, lambda: config, clock)
