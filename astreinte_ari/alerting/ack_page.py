"""What the acknowledgement link shows, in the alert's language (fr or en): the
alert's own text, a button that says what pressing it means (confirming a shift
is not handling a missed call), and the outcome. Pure: HTML text only; the
endpoint (adapters/http/alert_links.py) serves it."""

from __future__ import annotations

import html

from astreinte_ari.alerting.messages import subject_and_text
from astreinte_ari.alerting.model import Alert

_BUTTON = {  # kind: (fr, en)
    "shift_start": ("Je confirme ma prise de poste", "I confirm my shift"),
    "shift_cover": ("Je prends ce remplacement", "I will cover this shift"),
}
_HANDLE = ("Je prends en charge", "I am handling it")
_DONE = {
    "shift_start": ("Prise de poste confirmée. Merci.", "Shift confirmed. Thank you."),
    "shift_cover": ("Remplacement confirmé : les appels de cette astreinte vous parviendront. "
                    "Merci.", "Cover confirmed: the calls of this shift will reach you. "
                    "Thank you."),
}  # fmt: skip
_ACKED = ("Alerte acquittée. Merci.", "Alert acknowledged. Thank you.")
_STATES = {  # alert state: (fr, en)
    "acked": ("acquittée", "acknowledged"),
    "expired": ("expirée : le délai est passé", "expired: the deadline has passed"),
    "exhausted": ("close après le dernier rappel", "closed after the last reminder"),
    "closed": ("close", "closed"),
}
_ALREADY = ("Cette alerte est déjà traitée ({state}).", "This alert is already handled ({state}).")
_PAGE = (
    '<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1">'
    "<title>{title}</title></head>"
    '<body style="font-family:sans-serif;max-width:30em;margin:2em auto">{body}</body></html>'
)


def _pick(pair: tuple[str, str], en: bool) -> str:
    return pair[1] if en else pair[0]


def _page(alert: Alert, timezone: str, body: str) -> str:
    en = alert.language == "en"
    subject, _ = subject_and_text(alert, timezone)
    return _PAGE.format(lang="en" if en else "fr", title=html.escape(subject), body=body)


def confirm_page(alert: Alert, timezone: str) -> str:
    """GET of an open alert's link: what it is about, and the button (a POST: mail
    scanners prefetch links, a GET must not acknowledge)."""
    en = alert.language == "en"
    subject, text = subject_and_text(alert, timezone)
    button = _pick(_BUTTON.get(alert.kind, _HANDLE), en)
    return _page(
        alert,
        timezone,
        f"<h1>{html.escape(subject)}</h1><p>{html.escape(text)}</p>"
        '<form method="post"><button type="submit" style="font-size:1.5em">'
        f"{html.escape(button)}</button></form>",
    )


def handled_page(alert: Alert, timezone: str) -> str:
    """The link of an alert that is no longer open (acknowledged, expired...)."""
    en = alert.language == "en"
    state = _pick(_STATES.get(alert.state, (alert.state, alert.state)), en)
    message = _pick(_ALREADY, en).format(state=state)
    return _page(alert, timezone, f"<p>{html.escape(message)}</p>")


def acked_page(alert: Alert, timezone: str) -> str:
    """After the POST that acknowledged `alert`."""
    en = alert.language == "en"
    message = _pick(_DONE.get(alert.kind, _ACKED), en)
    return _page(alert, timezone, f"<p>{html.escape(message)}</p>")
