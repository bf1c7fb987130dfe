"""Calendar subscriptions (table calendar_feeds, 0014): revocable ICS URLs.

A feed URL is `<public_url>/ics/<token>.ics`. The token (192 random bits) is a
bearer secret shown once, when the feed is created; the table keeps only its
SHA-256, so a copy of the database opens no calendar. A fetch hashes the token
it is given and looks the hash up: no comparison of secrets byte by byte, hence
nothing to time. Creating and revoking a feed go to the audit chain (never the
token) in the same transaction as the row.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from astreinte_ari.adapters.store.audit_log import append_audit_record, iso
from astreinte_ari.adapters.store.models import calendar_feeds_table
from astreinte_ari.adapters.store.safe_text import safe_text

FEED_PATH = "ics"  # under the links endpoint, as ACK_PATH
_FEEDS = calendar_feeds_table.c
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")  # secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class CalendarFeed:
    id: str
    scope: str  # "person" | "team"
    team: str
    person: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def feed_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/{FEED_PATH}/{token}.ics"


def _feed(row: object) -> CalendarFeed:
    return CalendarFeed(
        id=row.id,  # type: ignore[attr-defined]
        scope=row.scope,  # type: ignore[attr-defined]
        team=row.team,  # type: ignore[attr-defined]
        person=row.person,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        created_by=row.created_by,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
        revoked_by=row.revoked_by,  # type: ignore[attr-defined]
    )


class CalendarFeedStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, *, team: str, person: str | None, by: str, now: datetime
    ) -> tuple[CalendarFeed, str]:
        """A new feed and its token (the only time the token exists in clear)."""
        token = secrets.token_urlsafe(24)
        feed = CalendarFeed(
            id=secrets.token_hex(4),
            scope="person" if person else "team",
            team=team,
            person=person,
            created_at=now,
            created_by=safe_text(by, 128),
            revoked_at=None,
            revoked_by=None,
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(calendar_feeds_table).values(
                    id=feed.id,
                    scope=feed.scope,
                    team=team,
                    person=person,
                    token_hash=token_hash(token),
                    created_at=now,
                    created_by=feed.created_by,
                )
            )
            append_audit_record(
                conn,
                "calendar_feed.created",
                feed.id,
                {"scope": feed.scope, "team": team, "person": person,
                 "by": feed.created_by, "at": iso(now)},
                at=now,
            )  # fmt: skip
        return feed, token

    def revoke(self, feed_id: str, *, by: str, now: datetime) -> CalendarFeed | None:
        """Revoke an active feed; None if unknown or already revoked."""
        who = safe_text(by, 128)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(calendar_feeds_table)
                .where(_FEEDS.id == feed_id, _FEEDS.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=who)
            ).rowcount
            if not done:
                return None
            row = conn.execute(select(calendar_feeds_table).where(_FEEDS.id == feed_id)).one()
            append_audit_record(
                conn,
                "calendar_feed.revoked",
                feed_id,
                {"scope": row.scope, "team": row.team, "person": row.person,
                 "by": who, "at": iso(now)},
                at=now,
            )  # fmt: skip
        return _feed(row)

    def list(self, *, include_revoked: bool = False) -> list[CalendarFeed]:
        stmt = select(calendar_feeds_table).order_by(_FEEDS.created_at, _FEEDS.id)
        if not include_revoked:
            stmt = stmt.where(_FEEDS.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_feed(row) for row in conn.execute(stmt)]

    def resolve(self, token: str) -> CalendarFeed | None:
        """The active feed of `token` (an untrusted path segment); None otherwise,
        whether unknown or revoked: the caller must not tell which."""
        if not _TOKEN_RE.match(token):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(calendar_feeds_table).where(
                    _FEEDS.token_hash == token_hash(token), _FEEDS.revoked_at.is_(None)
                )
            ).first()
        return None if row is None else _feed(row)
