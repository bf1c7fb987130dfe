"""Texts of alert notifications (French by default, English for `en` lines)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from astreinte_ari.adapters.store.alerts import Alert

_NUMBER_RE = re.compile(r"^\+?\d{3,20}$")


def readable_number(raw: str | None) -> str | None:
    """The caller's number if it is a plain phone number, else None (untrusted input)."""
    if raw and _NUMBER_RE.match(raw):
        return raw
    return None


def subject_and_text(alert: Alert, timezone: str) -> tuple[str, str]:
    en = (alert.language or "fr") == "en"
    zone = ZoneInfo(timezone)

    def hhmm(at: datetime | None) -> str:
        return "" if at is None else at.astimezone(zone).strftime("%d/%m %H:%M")

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
        subject = "[Astreinte] Prise de poste à confirmer"
        text = f"Votre astreinte {alert.rota} commence le {hhmm(alert.shift_start)} : confirmez."
    elif alert.kind == "shift_cover":
        subject = "[Astreinte] Remplacement demandé"
        text = (
            f"La prise de poste {alert.rota} du {hhmm(alert.shift_start)} n'a pas été confirmée : "
            "confirmez pour recevoir les appels de cette astreinte."
        )
    else:
        subject = "[Astreinte] Prise de poste non confirmée"
        text = (
            f"Prise de poste {alert.rota} du {hhmm(alert.shift_start)} non confirmée "
            f"({alert.line_name}) ; le remplaçant est alerté."
        )
    return subject, f"{text} [{ref}]"
