"""Texts of alert notifications (French by default, English for `en` lines and people),
and the message each channel renders."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from astreinte_ari.alerting.links import ACK_PATH, VOICEMAIL_PATH, LinkIssuer
from astreinte_ari.alerting.model import Alert
from astreinte_ari.alerting.ports import AlertMessage, Recipient
from astreinte_ari.config.model import AppConfig

_NUMBER_RE = re.compile(r"^\+?\d{3,20}$")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def readable_number(raw: str | None) -> str | None:
    """The caller's number if it is a plain phone number, else None (untrusted input)."""
    if raw and _NUMBER_RE.match(raw):
        return raw
    return None


def subject_and_text(alert: Alert, timezone: str) -> tuple[str, str]:
    en = (alert.language or "fr") == "en"
    zone = ZoneInfo(timezone)

    def hhmm(at: datetime | None) -> str:
        """fr "05/12 18:00"; en "5 Dec 18:00" (no day/month order to guess)."""
        if at is None:
            return ""
        local = at.astimezone(zone)
        if en:
            return f"{local.day} {_EN_MONTHS[local.month - 1]} {local:%H:%M}"
        return f"{local:%d/%m %H:%M}"

    ref = alert.id[:8]
    if alert.kind == "missed_call":
        caller = readable_number(alert.caller_number) or ("unknown" if en else "inconnu")
        vm = alert.voicemail_path is not None
        if en:
            subject = f"[On-call] Missed call on {alert.line_name} from {caller}"
            text = f"Missed call on {alert.line_name} from {caller} at {hhmm(alert.opened_at)}"
            text += " (voicemail left)." if vm else "."
        else:
            subject = f"[Astreinte] Appel manqué sur {alert.line_name} de {caller}"
            text = f"Appel manqué sur {alert.line_name} de {caller} le {hhmm(alert.opened_at)}"
            text += " (message vocal laissé)." if vm else "."
    elif alert.kind == "shift_start":
        if en:
            subject = "[On-call] Please confirm your shift"
            text = f"Your {alert.rota} on-call shift starts {hhmm(alert.shift_start)}: confirm."
        else:
            subject = "[Astreinte] Prise de poste à confirmer"
            text = (
                f"Votre astreinte {alert.rota} commence le {hhmm(alert.shift_start)} : confirmez."
            )
    elif alert.kind == "shift_cover":
        if en:
            subject = "[On-call] Cover requested"
            text = (
                f"The {alert.rota} shift starting {hhmm(alert.shift_start)} was not confirmed: "
                "confirm to take the calls of this shift."
            )
        else:
            subject = "[Astreinte] Remplacement demandé"
            text = (
                f"La prise de poste {alert.rota} du {hhmm(alert.shift_start)} n'a pas été "
                "confirmée : confirmez pour recevoir les appels de cette astreinte."
            )
    elif alert.kind == "test_call_failed":
        call = f" (call {alert.call_id[:8]})" if alert.call_id else ""
        if en:
            subject = f"[On-call] Test call FAILED on {alert.line_name}"
            text = (
                f"The test call of {alert.line_name} at {hhmm(alert.opened_at)} failed{call}: "
                "callers may not reach the on-call person. Check the line now."
            )
        else:
            subject = f"[Astreinte] Appel test en ÉCHEC sur {alert.line_name}"
            text = (
                f"L'appel test de {alert.line_name} du {hhmm(alert.opened_at)} a échoué{call} : "
                "les appelants risquent de ne pas joindre l'astreinte. Vérifiez la ligne."
            )
    elif en:
        subject = "[On-call] Shift not confirmed"
        text = (
            f"The {alert.rota} shift starting {hhmm(alert.shift_start)} was not confirmed "
            f"({alert.line_name}); the replacement is being alerted."
        )
    else:
        subject = "[Astreinte] Prise de poste non confirmée"
        text = (
            f"Prise de poste {alert.rota} du {hhmm(alert.shift_start)} non confirmée "
            f"({alert.line_name}) ; le remplaçant est alerté."
        )
    return subject, f"{text} [{ref}]"


def recipient_of(config: AppConfig, team: str | None, person_id: str) -> Recipient | None:
    team_cfg = config.teams.get(team or "")
    person = team_cfg.people.get(person_id) if team_cfg else None
    if person is None:
        return None
    # No mobile (a desk-phone-only person): the check refuses SMS/voice alerts to them.
    return Recipient(person_id, person.name, person.mobile or "", person.email)


async def compose_message(
    alert: Alert,
    person_id: str,
    config: AppConfig,
    links: LinkIssuer | None,
    now: datetime,
) -> AlertMessage:
    """What `person_id` is told; with links only when `links` issues them (each is
    stored, so only channels that show links ask for them)."""
    subject, text = subject_and_text(alert, config.timezone)
    ack_url = vm_url = None
    if links is not None and config.alerting is not None:
        settings = config.alerting.links
        expires = now + timedelta(seconds=settings.ttl)

        async def link(purpose: str, path: str) -> str:
            assert links is not None
            link_id = await asyncio.to_thread(
                links.create, purpose, alert.id, person_id, expires, now
            )
            return f"{settings.public_url}/{path}/{link_id}"

        ack_url = await link("ack", ACK_PATH)
        if alert.voicemail_path:
            vm_url = await link("vm", VOICEMAIL_PATH)
    caller = readable_number(alert.caller_number)
    return AlertMessage(
        alert_id=alert.id,
        kind=alert.kind,
        subject=subject,
        text=text,
        language=alert.language or "fr",
        line_name=alert.line_name,
        caller_number=caller,
        call_id=alert.call_id,
        at=alert.opened_at,
        voicemail=Path(alert.voicemail_path) if alert.voicemail_path else None,
        ack_url=ack_url,
        voicemail_url=vm_url,
        can_call_back=bool(caller and alert.call_id and config.trunk.is_allowed(caller)),
    )
