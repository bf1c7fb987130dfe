"""Short link ids for acknowledgement and voicemail links (table alert_links, 0007).

An SMS has room for about 150 characters before it costs a second segment; a
signed token alone took 140. A link is now `<public_url>/a/<12 characters>`:
a random id (71 bits, from `secrets`) that the service looks up, with the
alert, the person, the purpose and the expiry stored here. A link is a bearer
secret: whoever has it may acknowledge that alert, until it expires.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime

from sqlalchemy import Column, Engine, ForeignKey, Index, String, Table, Text, insert, select

from astreinte_ari.adapters.store.models import ID_LEN, UTCDateTime, metadata
from astreinte_ari.alerting.links import LinkClaim

_ALPHABET = string.ascii_letters + string.digits
ID_CHARS = 12

alert_links_table = Table(
    "alert_links",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("alert_id", String(ID_LEN), ForeignKey("alerts.id"), nullable=False),
    Column("person_id", Text, nullable=False),
    Column("purpose", String(16), nullable=False),  # "ack" | "vm"
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_alert_links_alert_id", "alert_id"),
)


def new_link_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(ID_CHARS))


class AlertLinkStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, purpose: str, alert_id: str, person_id: str, expires: datetime, now: datetime
    ) -> str:
        link_id = new_link_id()
        with self.engine.begin() as conn:
            conn.execute(
                insert(alert_links_table).values(
                    id=link_id,
                    alert_id=alert_id,
                    person_id=person_id,
                    purpose=purpose,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return link_id

    def resolve(self, link_id: str, purpose: str, now: datetime) -> LinkClaim | None:
        """The claim of a live link for `purpose`; None if unknown, expired or other."""
        if len(link_id) != ID_CHARS or any(c not in _ALPHABET for c in link_id):
            return None  # untrusted path segment: never reaches the query otherwise
        with self.engine.connect() as conn:
            row = conn.execute(
                select(alert_links_table).where(alert_links_table.c.id == link_id)
            ).first()
        if row is None or row.purpose != purpose or now >= row.expires_at:
            return None
        return LinkClaim(row.purpose, row.alert_id, row.person_id, int(row.expires_at.timestamp()))
