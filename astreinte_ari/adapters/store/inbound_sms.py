"""Inbound SMS that acknowledged nothing, in the audit chain (never their text).

A reply that acknowledges is on record through its alert ("alert.acked", detail
"acknowledged by SMS reply from +33..."); this records the others: an unknown
sender, a reply not understood, a code that matches no open alert of theirs.
"""

from __future__ import annotations

from sqlalchemy import Engine

from astreinte_ari.adapters.store.audit_log import append_audit_record


def note_inbound_sms(engine: Engine, kind: str, subject: str, payload: dict[str, object]) -> None:
    with engine.begin() as conn:
        append_audit_record(conn, kind, subject, payload)
