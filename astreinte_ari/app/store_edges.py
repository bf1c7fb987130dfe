"""The database's edges of the running service (part of the composition root, like
web_edges.py): where an earlier process left a call, the signed checkpoints of the
audit chain, and the approved rota changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from astreinte_ari.adapters.store.journal import JournaledAuditWriter
from astreinte_ari.adapters.store.recovery import resume_point_for_channel
from astreinte_ari.adapters.store.rota_changes import RotaChangeStore
from astreinte_ari.aio import within
from astreinte_ari.app.rota_changes import RotaChanges, TeamOverrides, overrides_by_team
from astreinte_ari.app.startup import StartupError
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.recovery import UNKNOWN_SEQ_GAP, ResumePoint, resume_point_from_events
from astreinte_ari.config.model import AppConfig

if TYPE_CHECKING:
    from astreinte_ari.adapters.store.checkpointing import Checkpointer

# The service's log lines keep one logger name whichever module of app/ writes them.
log = logging.getLogger("astreinte_ari.app.compose")


def utcnow() -> datetime:
    return datetime.now(UTC)


def resume_lookup(
    engine: Engine, writer: JournaledAuditWriter
) -> Callable[[str], asyncio.Future[ResumePoint | None]]:
    """Where an earlier process left a call: the database, completed by the journal
    (the only record while the database is down)."""

    async def lookup(channel_id: str) -> ResumePoint | None:
        call_id = call_id_for_channel(channel_id)
        # Taken BEFORE the database is read: the replay may commit meanwhile and the
        # journal be compacted (the list emptied); read after, a choice written in
        # between would be in neither (seen: a resumed menu call took the default).
        journaled = writer.replayed_events
        try:
            base = await within(
                asyncio.to_thread(resume_point_for_channel, engine, channel_id), 3.0
            )
        except Exception as exc:
            log.warning("trail unreadable to resume %s (%s): using the journal", channel_id, exc)
            point = resume_point_from_events(call_id, journaled)
            if point is None:  # the database may know more than the journal: skip past it
                point = ResumePoint(call_id, UNKNOWN_SEQ_GAP, 0, ())
            return point
        if base is None:
            return resume_point_from_events(call_id, journaled)
        return resume_point_from_events(call_id, journaled, base)

    return lookup  # type: ignore[return-value]


def build_checkpointer(engine: Engine, config: AppConfig) -> Checkpointer | None:
    """Signed checkpoints of the audit chain, when a signing key is configured."""
    if config.audit.signing_key_file is None:
        return None
    # Imported only when used: the cryptography package costs memory nobody else needs.
    from astreinte_ari.adapters.store.checkpointing import Checkpointer

    try:
        return Checkpointer(engine, config.audit, utcnow)
    except (OSError, ValueError) as exc:
        raise StartupError(
            f"audit.signing_key_file: {exc}; create one with `astreinte audit keygen --out "
            f"{config.audit.signing_key_file}` (readable by the service user only)"
        ) from exc


def rota_changes_service(
    engine: Engine,
    config: Callable[[], AppConfig],
    on_approved: Callable[[], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> RotaChanges:
    """Self-service swaps and covers over this database (the CLI's and the web's)."""
    return RotaChanges(RotaChangeStore(engine), config, clock, on_approved=on_approved)


def changes_reader(engine: Engine) -> Callable[[], TeamOverrides]:
    """The approved changes by team, as the live configuration applies them."""
    store = RotaChangeStore(engine)
    return lambda: overrides_by_team(store.list(status="approved"))
