"""The conversation of an accepted call: wait until a party leaves, tear down the rest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from astreinte_ari.callflow.runtime import LegRuntime
from astreinte_ari.callflow.telephony import (
    ChannelHungUp,
    ChannelLeft,
    TelephonyError,
    TelephonyEvent,
)

log = logging.getLogger("astreinte_ari.call")


@dataclass(frozen=True, slots=True)
class Ending:
    """How a conversation ended: who hung up, why, and when (PBX time when known)."""

    leg: str  # which leg ended first: "caller" | "agent"
    by: str  # who ended it: the leg's party, or "the PBX" (shutdown, an admin)
    cause: int | None
    cause_text: str | None
    at: datetime


class ConversationWatcher(Protocol):
    """Something that follows the conversation's events (the recording: stop keys)."""

    async def on_event(self, event: TelephonyEvent) -> None: ...


async def until_hangup(
    rt: LegRuntime[Any], agent_id: str, bridge_id: str, watcher: ConversationWatcher | None = None
) -> Ending:
    """Wait until either party hangs up, then tear down the bridge and the other leg."""
    try:
        ended = await _wait_for_end(rt, agent_id, watcher)
    finally:
        await quietly(rt.port.destroy_bridge(bridge_id))
    other = agent_id if ended.leg == "caller" else rt.caller_channel_id
    await quietly(rt.port.hangup(other))
    return ended


async def end_test_call(rt: LegRuntime[Any], agent_id: str, bridge_id: str) -> Ending:
    """A test call bridged with its test endpoint has proven the path: the service
    ends it at once (the endpoint may answer forever)."""
    at = rt.clock()
    await quietly(rt.port.destroy_bridge(bridge_id))
    await quietly(rt.port.hangup(agent_id))
    return Ending("agent", "the service (test call bridged)", None, None, at)


async def _wait_for_end(
    rt: LegRuntime[Any], agent_id: str, watcher: ConversationWatcher | None
) -> Ending:
    while True:
        event = await rt.next_event(None)
        if watcher is not None and event is not None:
            await watcher.on_event(event)
        if not rt.caller_present:
            if rt.caller_cause is None:
                await cause_after_leave(rt, rt.caller_channel_id)
            cause, text = rt.caller_cause or (None, "caller left")
            by = "the PBX" if rt.caller_ended_by_pbx else "caller"
            return Ending("caller", by, cause, text, rt.caller_left_at or rt.clock())
        if isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id == agent_id:
            at = event.at or rt.clock()
            if agent_id in rt.hangup_causes:  # the agent's BYE, seen before StasisEnd
                cause, text = rt.hangup_causes[agent_id]
                by = "the PBX" if agent_id in rt.pbx_hangups else "agent"
                return Ending("agent", by, cause, text, at)
            if isinstance(event, ChannelLeft):
                event = await cause_after_leave(rt, agent_id) or event
            if isinstance(event, ChannelHungUp):
                return Ending("agent", "agent", event.cause, event.cause_text, at)
            return Ending("agent", "agent", None, "agent left", at)


async def cause_after_leave(rt: LegRuntime[Any], channel_id: str) -> ChannelHungUp | None:
    """StasisEnd comes before ChannelDestroyed: wait briefly for the hangup cause."""
    deadline = rt.deadline_in(0.5)
    while (event := await rt.next_event(deadline)) is not None:
        if isinstance(event, ChannelHungUp) and event.channel_id == channel_id:
            return event  # (for the caller, next_event has noted the cause)
    return None


async def quietly(action: object) -> None:
    """Cleanup must never mask the call's real ending."""
    try:
        await action  # type: ignore[misc]
    except TelephonyError as exc:
        log.warning("cleanup action failed: %s", exc)
