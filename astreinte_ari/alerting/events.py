"""Events told to webhooks (ticketing tools, chat rooms): which, with what, in what words.

The engine says when (an alert opened for a missed call, an acknowledgement, a
shift start confirmed or not); this module builds the event as plain values
(ports.AlertEvent), with a short text in the line's language like the SMS. The
sink (adapters/notify/webhook.py) delivers it in the background.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from astreinte_ari.alerting.links import VOICEMAIL_PATH, LinkIssuer
from astreinte_ari.alerting.messages import readable_number, recipient_of
from astreinte_ari.alerting.model import Alert
from astreinte_ari.alerting.ports import AlertEvent, EventSink
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)
# Who a voicemail link sent to a webhook is for: downloads through it are audited so.
WEBHOOK_LINK_HOLDER = "webhook"


def ack_events(alert: Alert) -> tuple[str, ...]:
    """What acknowledging `alert` tells: a shift start (or its cover) confirmed is
    also the shift taken."""
    if alert.kind in ("shift_start", "shift_cover"):
        return ("alert_acknowledged", "shift_started")
    return ("alert_acknowledged",)


def event_id(alert_id: str, event: str) -> str:
    """The idempotency key: one alert has each event at most once."""
    return f"{alert_id}-{event}"


def _summary(alert: Alert, en: bool, caller: str) -> str:
    """What the alert was about, for an acknowledgement's text."""
    if alert.kind == "missed_call":
        return (
            f"missed call on {alert.line_name} from {caller}"
            if en
            else f"appel manqué sur {alert.line_name} de {caller}"
        )
    if alert.kind == "test_call_failed":
        return (
            f"test call failed on {alert.line_name}"
            if en
            else f"appel test en échec sur {alert.line_name}"
        )
    if alert.kind == "shift_missed":
        return (
            f"{alert.rota} shift not confirmed"
            if en
            else f"prise de poste {alert.rota} non confirmée"
        )
    if alert.kind == "shift_cover":
        return (
            f"cover of the {alert.rota} shift"
            if en
            else f"remplacement sur l'astreinte {alert.rota}"
        )
    return f"{alert.rota} shift start" if en else f"prise de poste {alert.rota}"


def event_text(event: str, alert: Alert, timezone: str, person: str | None, via: str | None) -> str:
    en = (alert.language or "fr") == "en"
    zone = ZoneInfo(timezone)

    def hhmm(at: datetime | None) -> str:
        return "" if at is None else at.astimezone(zone).strftime("%d/%m %H:%M")

    caller = readable_number(alert.caller_number) or ("unknown" if en else "inconnu")
    who = person or ("someone" if en else "quelqu'un")
    if event == "call_missed":
        text = (
            f"Missed call on {alert.line_name} from {caller} at {hhmm(alert.opened_at)}."
            if en
            else f"Appel manqué sur {alert.line_name} de {caller} le {hhmm(alert.opened_at)}."
        )
    elif event == "voicemail_left":
        when = hhmm(alert.opened_at)
        text = (
            f"Voicemail left on {alert.line_name} by {caller} at {when}."
            if en
            else f"Message vocal laissé sur {alert.line_name} par {caller} le {when}."
        )
    elif event == "alert_acknowledged":
        how = f" ({via})" if via else ""
        text = (
            f"Acknowledged by {who}{how}: {_summary(alert, en, caller)}."
            if en
            else f"Pris en compte par {who}{how} : {_summary(alert, en, caller)}."
        )
    elif event == "shift_started":
        text = (
            f"{who} confirmed the {alert.rota} shift starting {hhmm(alert.shift_start)}."
            if en
            else f"{who} a confirmé l'astreinte {alert.rota} du {hhmm(alert.shift_start)}."
        )
    else:  # shift_not_acknowledged
        text = (
            f"The {alert.rota} shift starting {hhmm(alert.shift_start)} was not confirmed by "
            f"{who}; the replacement is being alerted."
            if en
            else f"Prise de poste {alert.rota} du {hhmm(alert.shift_start)} non confirmée par "
            f"{who} ; le remplaçant est alerté."
        )
    return f"{text} [{alert.id[:8]}]"


def build_event(
    event: str,
    alert: Alert,
    *,
    config: AppConfig,
    at: datetime,
    person_id: str | None = None,
    via: str | None = None,
    link: str | None = None,
) -> AlertEvent:
    recipient = recipient_of(config, alert.team, person_id) if person_id else None
    person = recipient.name if recipient else person_id
    return AlertEvent(
        event=event,
        id=event_id(alert.id, event),
        at=at,
        alert_id=alert.id,
        alert_kind=alert.kind,
        language=alert.language or "fr",
        text=event_text(event, alert, config.timezone, person, via),
        line=alert.line_name,
        did=alert.line_did,
        call_id=alert.call_id,
        caller=alert.caller_number,
        link=link,
        team=alert.team,
        rota=alert.rota,
        person_id=person_id,
        person=person,
        via=via,
        shift_start=alert.shift_start,
        shift_end=alert.shift_end,
    )


class EventTeller:
    """The engine's side of the events: builds them only when some webhook wants them,
    with the voicemail link when there is a message, and never lets a failure reach
    the alert itself."""

    def __init__(self, sink: EventSink | None, links: LinkIssuer | None) -> None:
        self.sink = sink
        self.links = links

    async def tell(
        self,
        event: str,
        alert: Alert,
        *,
        config: AppConfig,
        now: datetime,
        person_id: str | None = None,
        via: str | None = None,
    ) -> None:
        if self.sink is None or not self.sink.wants(event):
            return
        try:
            link = None
            if event == "voicemail_left" and alert.voicemail_path:
                link = await self._voicemail_link(alert, config, now)
            built = build_event(
                event, alert, config=config, at=now, person_id=person_id, via=via, link=link
            )
            self.sink.publish(built)
        except Exception:  # an event is a courtesy: the alert goes on without it
            log.exception("alert %s: event %s could not be built", alert.id, event)

    async def _voicemail_link(self, alert: Alert, config: AppConfig, now: datetime) -> str | None:
        if self.links is None or config.alerting is None:
            return None
        settings = config.alerting.links
        expires = now + timedelta(seconds=settings.ttl)
        link_id = await asyncio.to_thread(
            self.links.create, "vm", alert.id, WEBHOOK_LINK_HOLDER, expires, now
        )
        return f"{settings.public_url}/{VOICEMAIL_PATH}/{link_id}"
