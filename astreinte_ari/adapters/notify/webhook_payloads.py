"""What each kind of webhook is sent for an event: method, URL, headers, body.

generic: the event as stable JSON (docs/alerts.md "Webhooks"), signed with
HMAC-SHA256 over "<timestamp>.<body>"; slack / teams / matrix: the event's short
text, in the shape each incoming webhook or API expects.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from astreinte_ari.alerting.ports import AlertEvent

SCHEMA_VERSION = 1
USER_AGENT = "astreinte-ari-webhook/1"


@dataclass(frozen=True, slots=True)
class Target:
    """A configured webhook with its secrets resolved (never logged: see __repr__)."""

    name: str
    kind: str  # generic | slack | teams | matrix
    url: str  # generic: receiver; slack/teams: the incoming webhook; matrix: homeserver
    secret: bytes | None = None  # generic: signing secret
    room: str | None = None  # matrix
    token: str | None = None  # matrix
    headers: tuple[tuple[str, str], ...] = ()  # configured extra headers, ${ENV} resolved

    def __repr__(self) -> str:  # a stray log of the object must not leak the URL or secrets
        return f"Target({self.name!r}, {self.kind!r})"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def generic_body(event: AlertEvent) -> bytes:
    """The documented JSON shape; keys are stable, absent values are null."""
    payload = {
        "version": SCHEMA_VERSION,
        "event": event.event,
        "id": event.id,
        "at": _iso(event.at),
        "alert_id": event.alert_id,
        "alert_kind": event.alert_kind,
        "language": event.language,
        "text": event.text,
        "line": event.line,
        "did": event.did,
        "call_id": event.call_id,
        "caller": event.caller,  # as the caller's phone sent it: untrusted
        "link": event.link,
        "team": event.team,
        "rota": event.rota,
        "person_id": event.person_id,
        "person": event.person,
        "via": event.via,
        "shift_start": _iso(event.shift_start),
        "shift_end": _iso(event.shift_end),
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """X-Astreinte-Signature: sha256=<hex HMAC-SHA256(secret, timestamp "." body)>."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link_label(event: AlertEvent) -> str:
    return "Listen to the message" if event.language == "en" else "Écouter le message"


def chat_text(event: AlertEvent) -> str:
    """The text with its link on a line of its own (Matrix, and Teams' summary)."""
    return f"{event.text}\n{link_label(event)}: {event.link}" if event.link else event.text


def slack_body(event: AlertEvent) -> bytes:
    text = _slack_escape(event.text)
    if event.link:
        text += f"\n<{event.link}|{link_label(event)}>"
    return json.dumps({"text": text}, ensure_ascii=False).encode()


def teams_body(event: AlertEvent) -> bytes:
    """An Adaptive Card in a message: what Teams' Workflows webhooks and the older
    incoming-webhook connectors both accept."""
    card: dict[str, object] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": event.text, "wrap": True}],
    }
    if event.link:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": link_label(event), "url": event.link}
        ]
    message = {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }
    return json.dumps(message, ensure_ascii=False).encode()


def matrix_body(event: AlertEvent) -> bytes:
    return json.dumps({"msgtype": "m.text", "body": chat_text(event)}, ensure_ascii=False).encode()


def build_request(target: Target, event: AlertEvent, timestamp: str) -> Request:
    """The request of one try; only the generic timestamp/signature change between tries."""
    headers = dict(target.headers) | {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if target.kind == "generic":
        assert target.secret is not None
        body = generic_body(event)
        headers |= {
            "X-Astreinte-Event": event.event,
            "X-Astreinte-Delivery": event.id,
            "X-Astreinte-Timestamp": timestamp,
            "X-Astreinte-Signature": signature(target.secret, timestamp, body),
        }
        return Request("POST", target.url, headers, body)
    if target.kind == "slack":
        return Request("POST", target.url, headers, slack_body(event))
    if target.kind == "teams":
        return Request("POST", target.url, headers, teams_body(event))
    assert target.room is not None and target.token is not None
    # The idempotency key as the transaction id: Matrix drops a repeated send itself.
    url = (
        f"{target.url}/_matrix/client/v3/rooms/{quote(target.room, safe='')}"
        f"/send/m.room.message/{quote(event.id, safe='')}"
    )
    headers["Authorization"] = f"Bearer {target.token}"
    return Request("PUT", url, headers, matrix_body(event))
