"""Sign-in by one-time link, sessions and sign-out: the rules, over the WebStore port.

A person types their email or mobile; whatever they type, the answer is the
same ("if this address is known, a link is on its way") and comes back at
once: the link is sent in the background, so neither the words nor the
timing say whether the address matched. Requests are rate-limited per address
and per client. The link is single-use and short-lived; using it opens a NEW
session (a session id never exists before sign-in: no fixation).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from astreinte_ari.config.model import AppConfig
from astreinte_ari.web.auth import (
    RateLimiter,
    Viewer,
    new_token,
    person_for_address,
    token_hash,
    viewer_for,
    well_formed,
)
from astreinte_ari.web.ports import LinkSender, WebStore

log = logging.getLogger(__name__)

LOGIN_PATH = "login"
PER_ADDRESS = (3, timedelta(minutes=15))  # links per address
PER_CLIENT = (20, timedelta(minutes=15))  # requests per client address (any email typed)


@dataclass(frozen=True, slots=True)
class Session:
    token: str  # the cookie's value; never stored, never logged
    viewer: Viewer
    expires_at: datetime
    bearer: bool = False  # an API token (Authorization: Bearer), not a browser session


class SignInDesk:
    def __init__(
        self,
        store: WebStore,
        sender: LinkSender | None,
        config: Callable[[], AppConfig],
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.sender = sender
        self.config = config
        self.clock = clock
        self.per_address = RateLimiter(*PER_ADDRESS)
        self.per_client = RateLimiter(*PER_CLIENT)
        self._sending: set[asyncio.Task[None]] = set()

    def _web(self) -> tuple[str, int, float]:
        web = self.config().web
        if web is None:
            raise RuntimeError("web: is not configured")
        return web.public_url, web.login_link_minutes, web.session_hours

    def issue_link(self, person_id: str, via: str) -> str:
        """A new one-time link for the person (stored hashed, audited): its URL."""
        public_url, minutes, _ = self._web()
        token, now = new_token(), self.clock()
        self.store.add_login_link(
            token_hash(token), person_id, via, now, now + timedelta(minutes=minutes)
        )
        return f"{public_url}/{LOGIN_PATH}/{token}"

    async def request_link(self, address: str, client: str, language: str) -> None:
        """Send a link if the address is someone's; the same outcome for the caller
        either way (no account enumeration)."""
        now = self.clock()
        config = self.config()
        found = person_for_address(config, address)
        if not self.per_client.allow(client, now):
            log.warning("web sign-in: too many requests from one client; ignored")
            return
        if found is None:
            return
        person_id, via = found
        if not self.per_address.allow(person_id, now):
            await asyncio.to_thread(
                self.store.note, "web.login_throttled", f"person:{person_id}",
                {"person": person_id, "via": via}, now,
            )  # fmt: skip
            return
        if self.sender is None:
            log.warning("web sign-in: no email or SMS notifier configured (alerting.smtp/sms)")
            return
        task = asyncio.create_task(self._send(person_id, via, language))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, person_id: str, via: str, language: str) -> None:
        assert self.sender is not None
        try:
            url = await asyncio.to_thread(self.issue_link, person_id, via)
            _, minutes, _ = self._web()
            await self.sender.send_login_link(person_id, via, url, language, minutes)
        except Exception as exc:  # the person sees no link and asks again; ops see why
            log.error("web sign-in link for %s not sent by %s: %s", person_id, via, exc)

    async def sign_in(self, link_token: str) -> Session | str:
        """A new session for the link's person, or why not ("unknown", "expired",
        "used", "gone": no longer in the configuration)."""
        if not well_formed(link_token):
            return "unknown"
        _, _, hours = self._web()
        now = self.clock()
        session_token = new_token()
        expires = now + timedelta(hours=hours)
        result = await asyncio.to_thread(
            self.store.sign_in, token_hash(link_token), token_hash(session_token), now, expires
        )
        if result.person_id is None:
            return result.refused or "unknown"
        viewer = viewer_for(self.config(), result.person_id)
        if viewer is None:
            await asyncio.to_thread(self.store.sign_out, token_hash(session_token), now, "gone")
            return "gone"
        return Session(session_token, viewer, expires)

    async def session(self, token: str | None) -> Session | None:
        """The live session of this cookie, with the person's rights as of now."""
        if token is None or not well_formed(token):
            return None
        now = self.clock()
        stored = await asyncio.to_thread(self.store.session, token_hash(token), now)
        if stored is None:
            return None
        viewer = viewer_for(self.config(), stored.person_id)
        if viewer is None:
            return None
        return Session(token, viewer, stored.expires_at)

    def issue_api_token(self, person_id: str, label: str, days: int) -> str:
        """A bearer token for a tool acting as the person (stored hashed, audited)."""
        token, now = new_token(), self.clock()
        self.store.add_api_token(
            token_hash(token), person_id, label, now, now + timedelta(days=days)
        )
        return token

    async def api_session(self, bearer: str) -> Session | None:
        """The person behind a live API token, with their rights as of now. Not a
        browser's ambient credential: no CSRF token is needed with it."""
        if not well_formed(bearer):
            return None
        stored = await asyncio.to_thread(self.store.api_token, token_hash(bearer), self.clock())
        viewer = viewer_for(self.config(), stored.person_id) if stored else None
        if stored is None or viewer is None:
            return None
        return Session(bearer, viewer, stored.expires_at, bearer=True)

    async def sign_out(self, token: str) -> None:
        await asyncio.to_thread(self.store.sign_out, token_hash(token), self.clock(), "logout")

    async def links_sent(self) -> None:
        """Wait for the links being sent now (tests; a clean stop)."""
        await asyncio.gather(*self._sending, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
