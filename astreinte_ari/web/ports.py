"""What the web needs from the outside world; app/compose.py provides each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from astreinte_ari.schedule.changes import ChangeRequest


@dataclass(frozen=True, slots=True)
class SignIn:
    person_id: str | None  # None: refused
    refused: str | None  # "unknown" | "expired" | "used"


@dataclass(frozen=True, slots=True)
class StoredSession:
    person_id: str
    expires_at: datetime


class WebStore(Protocol):
    """Links and sessions by token hash; each write audited in the same transaction."""

    def add_login_link(
        self, token_hash: str, person_id: str, via: str, now: datetime, expires: datetime
    ) -> None: ...

    def sign_in(
        self, link_hash: str, session_hash: str, now: datetime, session_expires: datetime
    ) -> SignIn: ...

    def session(self, token_hash: str, now: datetime) -> StoredSession | None: ...

    def sign_out(self, token_hash: str, now: datetime, reason: str) -> None: ...

    def note(self, kind: str, subject: str, payload: dict[str, object], now: datetime) -> None:
        """Any other event for the audit trail (e.g. a sign-in request refused)."""
        ...

    def add_api_token(
        self, token_hash: str, person_id: str, label: str, now: datetime, expires: datetime
    ) -> None: ...

    def api_token(self, token_hash: str, now: datetime) -> StoredSession | None: ...

    def revoke_api_tokens(self, person_id: str, now: datetime) -> int: ...


class LinkSender(Protocol):
    async def send_login_link(
        self, person_id: str, via: str, url: str, language: str, minutes: int
    ) -> None:
        """Deliver the one-time link by `via` ("email" | "sms"); raises on failure."""
        ...


class ChangesPort(Protocol):
    """Self-service swaps and covers (app/rota_changes.py: RotaChanges). Synchronous:
    the handlers run them in a thread. Refusals raise schedule.changes.ChangeRefused."""

    def request(
        self,
        *,
        actor: str,
        team: str,
        rota: str,
        kind: str,
        start: datetime,
        end: datetime,
        counterpart: str | None = None,
        swap_start: datetime | None = None,
        swap_end: datetime | None = None,
        reason: str = "",
    ) -> ChangeRequest: ...

    def consent(self, request_id: str, *, actor: str) -> ChangeRequest: ...

    def approve(
        self, request_id: str, *, actor: str, as_manager: bool, note: str = ""
    ) -> ChangeRequest: ...

    def refuse(
        self, request_id: str, *, actor: str, as_manager: bool, note: str = ""
    ) -> ChangeRequest: ...

    def cancel(self, request_id: str, *, actor: str) -> ChangeRequest: ...

    def list(
        self, *, team: str | None = None, person: str | None = None, status: str | None = None
    ) -> list[ChangeRequest]: ...


class Feed(Protocol):
    """A calendar subscription as listed (never its token)."""

    @property
    def id(self) -> str: ...
    @property
    def scope(self) -> str: ...  # "person" | "team"
    @property
    def team(self) -> str: ...
    @property
    def person(self) -> str | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...


class FeedsPort(Protocol):
    """Calendar subscriptions (adapters/store/calendar_feeds.py: CalendarFeedStore),
    each create/revoke audited with `by`. Synchronous: run in a thread."""

    def create(
        self, *, team: str, person: str | None, by: str, now: datetime
    ) -> tuple[Feed, str]: ...

    def revoke(self, feed_id: str, *, by: str, now: datetime) -> Feed | None: ...

    def list(self, *, include_revoked: bool = False) -> list[Feed]: ...
