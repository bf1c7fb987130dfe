"""Sign-in links and sessions of the web planning (tables of 0013).

Only SHA-256 hashes of the tokens are stored: a copy of the database signs
nobody in. A link is used once (the UPDATE that marks it used is the check),
and its use opens the session in the same transaction. Every sign-in, refusal
and sign-out goes into the hash-chained audit trail with the rows it changes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Engine, Index, String, Table, Text, delete, insert, select, update

from astreinte_ari.adapters.store.audit_log import append_audit_record, iso
from astreinte_ari.adapters.store.models import UTCDateTime, metadata
from astreinte_ari.adapters.store.safe_text import safe_text
from astreinte_ari.web.ports import SignIn, StoredSession

web_login_links_table = Table(
    "web_login_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("person_id", Text, nullable=False),
    Column("via", String(16), nullable=False),  # email | sms | cli
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

web_sessions_table = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("person_id", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_web_sessions_expires_at", "expires_at"),
)

web_api_tokens_table = Table(
    "web_api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("person_id", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)


def _subject(token_hash: str) -> str:
    return f"web:{token_hash[:16]}"  # enough to follow one session in the trail


class SqlWebStore:
    """The web's WebStore port on the service's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_login_link(
        self, token_hash: str, person_id: str, via: str, now: datetime, expires: datetime
    ) -> None:
        links = web_login_links_table
        with self.engine.begin() as conn:
            conn.execute(delete(links).where(links.c.expires_at < now))  # housekeeping
            conn.execute(
                insert(links).values(
                    token_hash=token_hash,
                    person_id=person_id,
                    via=via,
                    created_at=now,
                    expires_at=expires,
                )
            )
            append_audit_record(
                conn,
                "web.login_link",
                _subject(token_hash),
                {"person": person_id, "via": via, "expires": iso(expires)},
                at=now,
            )

    def sign_in(
        self, link_hash: str, session_hash: str, now: datetime, session_expires: datetime
    ) -> SignIn:
        links, sessions = web_login_links_table, web_sessions_table
        with self.engine.begin() as conn:
            used = conn.execute(
                update(links)
                .where(links.c.token_hash == link_hash)
                .where(links.c.used_at.is_(None))
                .where(links.c.expires_at > now)
                .values(used_at=now)
            )
            row = conn.execute(
                select(links.c.person_id, links.c.expires_at, links.c.used_at).where(
                    links.c.token_hash == link_hash
                )
            ).first()
            if used.rowcount != 1 or row is None:
                reason = "unknown"
                if row is not None:
                    reason = "used" if row.used_at is not None else "expired"
                payload: dict[str, object] = {"reason": reason}
                if row is not None:
                    payload["person"] = row.person_id
                append_audit_record(conn, "web.login_refused", _subject(link_hash), payload, at=now)
                return SignIn(None, reason)
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(
                insert(sessions).values(
                    token_hash=session_hash,
                    person_id=row.person_id,
                    created_at=now,
                    expires_at=session_expires,
                )
            )
            append_audit_record(
                conn,
                "web.login",
                _subject(session_hash),
                {"person": row.person_id, "link": link_hash[:16], "expires": iso(session_expires)},
                at=now,
            )
            return SignIn(row.person_id, None)

    def session(self, token_hash: str, now: datetime) -> StoredSession | None:
        sessions = web_sessions_table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sessions.c.person_id, sessions.c.expires_at).where(
                    sessions.c.token_hash == token_hash
                )
            ).first()
        if row is None or now >= row.expires_at:
            return None
        return StoredSession(row.person_id, row.expires_at)

    def sign_out(self, token_hash: str, now: datetime, reason: str) -> None:
        sessions = web_sessions_table
        with self.engine.begin() as conn:
            row = conn.execute(
                select(sessions.c.person_id).where(sessions.c.token_hash == token_hash)
            ).first()
            if row is None:
                return
            conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))
            append_audit_record(
                conn,
                "web.logout",
                _subject(token_hash),
                {"person": row.person_id, "reason": safe_text(reason, 64)},
                at=now,
            )

    def note(self, kind: str, subject: str, payload: dict[str, object], now: datetime) -> None:
        with self.engine.begin() as conn:
            append_audit_record(conn, kind, subject, payload, at=now)

    # -- API tokens (the company's tools: Authorization: Bearer) -------------------------

    def add_api_token(
        self, token_hash: str, person_id: str, label: str, now: datetime, expires: datetime
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(web_api_tokens_table).values(
                    token_hash=token_hash, person_id=person_id, label=safe_text(label, 200),
                    created_at=now, expires_at=expires,
                )
            )  # fmt: skip
            append_audit_record(
                conn, "web.api_token", _subject(token_hash),
                {"person": person_id, "label": safe_text(label, 200), "expires": iso(expires)},
                at=now,
            )  # fmt: skip

    def api_token(self, token_hash: str, now: datetime) -> StoredSession | None:
        tokens = web_api_tokens_table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tokens.c.person_id, tokens.c.expires_at, tokens.c.revoked_at).where(
                    tokens.c.token_hash == token_hash
                )
            ).first()
        if row is None or row.revoked_at is not None or now >= row.expires_at:
            return None
        return StoredSession(row.person_id, row.expires_at)

    def revoke_api_tokens(self, person_id: str, now: datetime) -> int:
        tokens = web_api_tokens_table
        with self.engine.begin() as conn:
            done = conn.execute(
                update(tokens)
                .where(tokens.c.person_id == person_id)
                .where(tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
            if done:
                append_audit_record(
                    conn, "web.api_token_revoked", f"person:{person_id}",
                    {"person": person_id, "tokens": done}, at=now,
                )  # fmt: skip
        return int(done)
