"""Who is signed in and what they may see: roles from the live configuration.

Roles are never stored with the session: each request recomputes them from the
configuration in force, so removing someone from a team (or from `web.admins`)
takes effect at their next click.

- agent: a person of a team sees that team (several teams: each of them);
- manager (`teams.<t>.managers`): sees that team and approves its changes;
- auditor (`web.auditors`): reads every team, changes nothing;
- admin (`web.admins`): everything.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from astreinte_ari.config.model import AppConfig, Person, TeamConfig

TOKEN_BYTES = 32  # 256 bits, URL-safe base64: 43 characters
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the database keeps of a session or link token: a lookup by this hash
    compares in constant time what matters (the token is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    return bool(_TOKEN_RE.match(token))


def csrf_token(session_token: str) -> str:
    """The session's anti-CSRF token: derived from the session secret, so nothing more
    is stored and it changes with every new session."""
    return hmac.new(session_token.encode(), b"astreinte-csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token(session_token), sent)


def team_managers(team: TeamConfig) -> tuple[str, ...]:
    return team.managers


@dataclass(frozen=True, slots=True)
class Viewer:
    person_id: str
    name: str
    agent_of: frozenset[str]
    manager_of: frozenset[str]
    auditor: bool = False
    admin: bool = False

    def sees(self, team: str) -> bool:
        return self.admin or self.auditor or team in self.agent_of or team in self.manager_of

    def manages(self, team: str) -> bool:
        return self.admin or team in self.manager_of

    def visible_teams(self, config: AppConfig) -> list[str]:
        return [name for name in config.teams if self.sees(name)]

    @property
    def roles(self) -> tuple[str, ...]:
        found = ["agent"] if self.agent_of else []
        found += ["manager"] if self.manager_of else []
        found += ["auditor"] if self.auditor else []
        found += ["admin"] if self.admin else []
        return tuple(found)


def find_person(config: AppConfig, person_id: str) -> Person | None:
    for team in config.teams.values():
        person = team.people.get(person_id)
        if person is not None:
            return person
    return None


def viewer_for(config: AppConfig, person_id: str) -> Viewer | None:
    """The person's rights now; None when they are no longer in the configuration."""
    person = find_person(config, person_id)
    if person is None:
        return None
    web = config.web
    return Viewer(
        person_id=person_id,
        name=person.name,
        agent_of=frozenset(n for n, t in config.teams.items() if person_id in t.people),
        manager_of=frozenset(n for n, t in config.teams.items() if person_id in team_managers(t)),
        auditor=web is not None and person_id in web.auditors,
        admin=web is not None and person_id in web.admins,
    )


def normalise_address(text: str) -> str:
    """An email (lower-cased) or a phone number as E.164 ("06 12 34 56 78" and
    "0033612345678" both give +33612345678): the key of the sign-in request."""
    text = text.strip()
    if "@" in text:
        return text.lower()
    digits = re.sub(r"[\s.()/-]", "", text)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif re.fullmatch(r"0[1-9]\d{8}", digits):  # a French national number
        digits = "+33" + digits[1:]
    return digits


def person_for_address(config: AppConfig, text: str) -> tuple[str, str] | None:
    """(person id, "email" | "sms") of the one person with this address, else None
    (an address two people share signs in neither: the link would go to both)."""
    key = normalise_address(text)
    if not key or len(key) > 254:
        return None
    found: dict[str, str] = {}
    for team in config.teams.values():
        for person_id, person in team.people.items():
            if person.email and person.email.strip().lower() == key:
                found[person_id] = "email"
            elif person.mobile and person.mobile == key:
                found[person_id] = "sms"
    if len(found) != 1:
        return None
    return next(iter(found.items()))


class RateLimiter:
    """At most `limit` events per key within `window` (in memory: a restart forgets,
    which only ever lets a few more links go out)."""

    def __init__(self, limit: int, window: timedelta, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._events: dict[str, deque[datetime]] = {}

    def allow(self, key: str, now: datetime) -> bool:
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        if len(self._events) > self.max_keys:
            self._forget_idle(now)
        return True

    def _forget_idle(self, now: datetime) -> None:
        idle = [k for k, v in self._events.items() if not v or now - v[-1] >= self.window]
        for key in idle:
            del self._events[key]


def visible(names: Iterable[str], viewer: Viewer) -> list[str]:
    return [name for name in names if viewer.sees(name)]
