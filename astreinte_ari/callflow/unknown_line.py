"""A call to a number no line is configured for: on record, told, hung up.

The DID is never dialled or routed anywhere: it is the caller's (or the trunk's)
data, only written to the trail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from astreinte_ari.callflow.audit_events import CallEnded, CallStarted
from astreinte_ari.callflow.identity import new_object_id
from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.callflow.runtime import AuditSink
from astreinte_ari.callflow.sessions import EventRoutes
from astreinte_ari.callflow.telephony import (
    Channel,
    ChannelHungUp,
    ChannelLeft,
    PlaybackFinished,
    TakeResult,
    TelephonyPort,
)

log = logging.getLogger("astreinte_ari.callflow.dispatch")  # as before the move
_PROMPT_MAX_S = 30


def record_unknown_line(
    audit: AuditSink, call_id: str, caller: Channel, did: str, now: datetime
) -> None:
    audit.emit(
        CallStarted(
            call_id=call_id,
            did=did,
            line_name="(unknown line)",
            period="unknown",
            caller_number=caller.caller_number,
            caller_name=caller.caller_name,
            channel_id=caller.id,
            at=caller.created_at or now,
        )
    )
    audit.emit(
        CallEnded(
            call_id=call_id,
            outcome=CallOutcome.FAILED,
            at=now,
            detail="no line configured for this DID",
        )
    )
    log.error("call %s: no line configured for DID %r", call_id[:8], did)


async def play_then_hangup(
    port: TelephonyPort, routes: EventRoutes, channel_id: str, media: str
) -> None:
    """Play one prompt, hang up when it ends (or the caller leaves first)."""
    session = routes.open_session()
    playback_id = new_object_id("pb")
    session.bind(channel_id)
    session.bind(playback_id)
    try:
        if await port.take_call(channel_id) is not TakeResult.TAKEN:
            return
        if await port.play(channel_id, media, playback_id):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_PROMPT_MAX_S):
                    while not isinstance(
                        await session.events.get(),
                        PlaybackFinished | ChannelHungUp | ChannelLeft,
                    ):
                        pass
        await port.hangup(channel_id)
    finally:
        session.close()
