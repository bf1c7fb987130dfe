"""The links sent by email/SMS: short ids the service looks up (LinkIssuer), and the
signed tokens of earlier releases, still accepted until they expire.

token = b64url(json payload) "." b64url(hmac(key, payload)); the payload names
the purpose ("ack" or "vm"), the alert, the person and the expiry (epoch s).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

MIN_KEY_BYTES = 16


class BadToken(Exception):
    """Tampered, malformed, expired or for another purpose."""


@dataclass(frozen=True, slots=True)
class LinkClaim:
    purpose: str
    alert_id: str
    person_id: str
    expires: int


class LinkIssuer(Protocol):
    """Short link ids stored with their claim (adapters/store/alert_links.py)."""

    def create(
        self, purpose: str, alert_id: str, person_id: str, expires: datetime, now: datetime
    ) -> str: ...

    def resolve(self, link_id: str, purpose: str, now: datetime) -> LinkClaim | None: ...


# Paths under the links endpoint (and under public_url's own path, if it has one).
ACK_PATH, VOICEMAIL_PATH = "ack", "vm"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the link signing key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def sign(self, purpose: str, alert_id: str, person_id: str, expires: datetime) -> str:
        payload = json.dumps(
            {"p": purpose, "a": alert_id, "u": person_id, "e": int(expires.timestamp())},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, purpose: str, now: datetime) -> LinkClaim:
        try:
            body, mac = token.split(".", 1)
            payload = _unb64(body)
            given = _unb64(mac)
        except (ValueError, TypeError):
            raise BadToken("malformed link") from None
        if not hmac.compare_digest(given, self._mac(payload)):
            raise BadToken("invalid signature")
        try:
            data = json.loads(payload)
            claim = LinkClaim(str(data["p"]), str(data["a"]), str(data["u"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            raise BadToken("malformed link") from None
        if claim.purpose != purpose:
            raise BadToken("link for another purpose")
        if now.timestamp() >= claim.expires:
            raise BadToken("link expired")
        return claim
