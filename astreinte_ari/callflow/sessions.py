"""Routing PBX events to whoever consumes them: one queue per call or outbound flow."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Iterator
from typing import Protocol, TypeVar

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


C = TypeVar("C", bound=EventConsumer)
Binder = Callable[[str], None]


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


class EventRoutes:
    """Which consumer gets the events of each PBX object (channel, playback, recording).

    Inbound calls are also listed by call id: that list is what "calls in progress"
    means (draining, sweeps, resumes). Outbound legs and sessions route their
    objects' events but are not counted as calls.
    """

    def __init__(self) -> None:
        self._owner: dict[str, EventConsumer] = {}  # object id -> consumer
        self._keys: dict[str, list[str]] = {}  # inbound call id -> ids it owns

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._owner

    @property
    def call_ids(self) -> Collection[str]:
        """The inbound calls in progress (a live view)."""
        return self._keys.keys()

    def route(self, key: str, event: TelephonyEvent) -> None:
        """Queue `event` for the owner of `key`; an object nobody owns is ignored."""
        consumer = self._owner.get(key)
        if consumer is not None:
            consumer.events.put_nowait(event)

    def add_call(self, call_id: str, channel_id: str, make: Callable[[Binder], C]) -> C:
        """Register an inbound call: `make(bind)` builds its consumer, which then gets
        the events of `channel_id` and of every id it binds, until `release_call`."""
        keys = [channel_id]
        self._keys[call_id] = keys

        def bind(object_id: str) -> None:
            # `consumer` is only known once `make` returns, hence the closure.
            keys.append(object_id)
            self._owner[object_id] = consumer

        consumer = make(bind)
        self._owner[channel_id] = consumer
        return consumer

    def release_call(self, call_id: str) -> None:
        for key in self._keys.pop(call_id, []):
            self._owner.pop(key, None)

    @contextlib.contextmanager
    def leg(self, channel_id: str, make: Callable[[Binder], C]) -> Iterator[C]:
        """Like `add_call` for an outbound leg (not a call in progress): its routes
        last as long as the context."""
        keys = [channel_id]

        def bind(object_id: str) -> None:
            keys.append(object_id)
            self._owner[object_id] = consumer

        consumer = make(bind)
        self._owner[channel_id] = consumer
        try:
            yield consumer
        finally:
            for key in keys:
                # Another owner may have taken the id since: leave it theirs.
                if self._owner.get(key) is consumer:
                    del self._owner[key]

    def open_session(self) -> EventSession:
        """An event queue for a short flow of the service's own (a prompt, a hangup).

        Bind the ids of the channels/playbacks it creates before creating them;
        close it when done.
        """
        return EventSession(self._owner)

    def channels_by_consumer(self) -> list[tuple[EventConsumer, list[str]]]:
        """Each consumer with the channels routed to it (in binding order)."""
        owners: dict[int, tuple[EventConsumer, list[str]]] = {}
        for object_id, owner in self._owner.items():
            if is_channel_id(object_id):
                owners.setdefault(id(owner), (owner, []))[1].append(object_id)
        return list(owners.values())


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
