"""Routing PBX events to whoever consumes them: one queue per call or outbound flow."""

from __future__ import annotations

import asyncio
from typing import Protocol

from astreinte_ari.callflow.telephony import (
    ChannelHungUp,
    ChannelLeft,
    ChannelRinging,
    DtmfReceived,
    HangupRequested,
    PlaybackFinished,
    RecordingFinished,
    TelephonyEvent,
)


class EventConsumer(Protocol):
    events: asyncio.Queue[TelephonyEvent]


class EventSession:
    """Routes the events of the objects it binds into its own queue."""

    def __init__(self, owner: dict[str, EventConsumer]) -> None:
        self._owner = owner
        self._keys: list[str] = []
        self.events: asyncio.Queue[TelephonyEvent] = asyncio.Queue()

    def bind(self, object_id: str) -> None:
        self._keys.append(object_id)
        self._owner[object_id] = self

    def close(self) -> None:
        for key in self._keys:
            if self._owner.get(key) is self:
                del self._owner[key]
        self._keys.clear()


def is_channel_id(object_id: str) -> bool:
    """Our playbacks, recordings and bridges are not channels."""
    return not object_id.startswith(("astreinte-pb-", "astreinte-vm-", "astreinte-bridge-"))


def event_key(event: TelephonyEvent) -> str | None:
    if isinstance(
        event, ChannelHungUp | ChannelLeft | HangupRequested | ChannelRinging | DtmfReceived
    ):
        return event.channel_id
    if isinstance(event, PlaybackFinished):
        return event.playback_id
    if isinstance(event, RecordingFinished):
        return event.name
    return None
