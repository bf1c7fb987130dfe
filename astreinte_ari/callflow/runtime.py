"""Per-call runtime: the event queue, timed waits, the audited state machine.

One CallRuntime exists per inbound call. The service routes every telephony
event that concerns one of the call's objects (channels, playbacks,
recordings) into its queue; the phases (hop, voicemail, bridge) pull from it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Protocol

from astreinte_ari.callflow.audit_events import AuditEvent, StateChanged
from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.callflow.telephony import (
    ChannelHungUp,
    ChannelLeft,
    HangupRequested,
    PlaybackFinished,
    TelephonyEvent,
    TelephonyPort,
)
from astreinte_ari.routing.plan import CallPlan

log = logging.getLogger("astreinte_ari.call")

# Which state may follow which: anything else is a programming error.
ALLOWED_TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.RECEIVED: frozenset(
        {
            CallState.QUEUED,
            CallState.ANNOUNCING,
            CallState.DIALING,
            CallState.VOICEMAIL_GREETING,
            CallState.ENDED,
        }
    ),
    CallState.QUEUED: frozenset(
        {CallState.ANNOUNCING, CallState.DIALING, CallState.VOICEMAIL_GREETING, CallState.ENDED}
    ),
    CallState.ANNOUNCING: frozenset(
        {CallState.DIALING, CallState.VOICEMAIL_GREETING, CallState.ENDED}
    ),
    CallState.DIALING: frozenset(
        {
            CallState.DIALING,
            CallState.AGENT_PROMPT,
            CallState.BRIDGED,
            CallState.VOICEMAIL_GREETING,
            CallState.ENDED,
        }
    ),
    CallState.AGENT_PROMPT: frozenset(
        {CallState.BRIDGED, CallState.DIALING, CallState.VOICEMAIL_GREETING, CallState.ENDED}
    ),
    CallState.BRIDGED: frozenset({CallState.BRIDGED, CallState.ENDED}),  # re-attached
    CallState.VOICEMAIL_GREETING: frozenset({CallState.RECORDING, CallState.ENDED}),
    CallState.RECORDING: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class AuditSink(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


class CallerGone(Exception):
    """The caller hung up: unwinds whatever phase the call is in."""

    def __init__(self, cause: int | None, cause_text: str) -> None:
        super().__init__(cause_text)
        self.cause = cause
        self.cause_text = cause_text


@dataclass(frozen=True, slots=True)
class SoundLibrary:
    """Maps prompt names to media URIs, as Asterisk sees the sounds directory."""

    base_dir: PurePosixPath

    def uri(self, name: str, language: str) -> str:
        return f"sound:{self.base_dir / language / name}"

    # Music-on-hold class playing a ringback tone (sounds/ringback/). MOH, unlike a
    # playback, does not hold the channel's command queue, and can be stopped
    # without knowing who started it: a restarted service can always silence it.
    hold_class: str = "astreinte-ringback"


class CallRuntime:
    def __init__(
        self,
        *,
        call_id: str,
        caller_channel_id: str,
        plan: CallPlan,
        port: TelephonyPort,
        audit: AuditSink,
        sounds: SoundLibrary,
        clock: Callable[[], datetime],
        bind: Callable[[str], None],
    ) -> None:
        self.call_id = call_id
        self.caller_channel_id = caller_channel_id
        self.plan = plan
        self.port = port
        self.audit = audit
        self.sounds = sounds
        self.clock = clock
        self._bind = bind
        self.events: asyncio.Queue[TelephonyEvent] = asyncio.Queue()
        self.state = CallState.RECEIVED
        self._seq = 0
        self.caller_present = True
        self.caller_may_leave = False  # True while a caller hangup is an expected ending
        self.caller_cause: tuple[int | None, str] | None = None

    # -- identities ----------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        """A fresh object id owned by this call; the service routes its events here."""
        object_id = f"astreinte-{kind}-{uuid.uuid4().hex[:16]}"
        self._bind(object_id)
        return object_id

    # -- state machine -------------------------------------------------------------

    def restore(self, last_seq: int, state: CallState) -> None:
        """Continue a call an earlier process audited up to transition `last_seq`."""
        self._seq = last_seq
        self.state = state

    def transition(self, to_state: CallState, reason: str) -> None:
        if to_state not in ALLOWED_TRANSITIONS[self.state]:
            raise RuntimeError(f"illegal transition {self.state} -> {to_state} ({reason})")
        self._seq += 1
        log.info("call %s: %s -> %s (%s)", self.call_id[:8], self.state, to_state, reason)
        self.audit.emit(
            StateChanged(
                call_id=self.call_id,
                seq=self._seq,
                from_state=self.state,
                to_state=to_state,
                reason=reason,
                at=self.clock(),
            )
        )
        self.state = to_state

    # -- waiting -------------------------------------------------------------------

    async def next_event(self, deadline: float | None) -> TelephonyEvent | None:
        """Next event for this call, or None at the deadline (loop time).

        A caller hangup raises CallerGone unless `caller_may_leave` is set.
        """
        loop = asyncio.get_running_loop()
        while True:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                event = await asyncio.wait_for(self.events.get(), timeout)
            except TimeoutError:
                return None
            if isinstance(event, HangupRequested):
                if event.channel_id == self.caller_channel_id and self.caller_cause is None:
                    # Often the only place the caller's own cause reaches us.
                    self.caller_cause = (event.cause, event.cause_text)
                continue
            if self._is_caller_gone(event):
                if not self.caller_present:
                    # Second notice (StasisEnd, then ChannelDestroyed with the cause).
                    if isinstance(event, ChannelHungUp) and self.caller_cause is None:
                        self.caller_cause = (event.cause, event.cause_text)
                    return event
                self.caller_present = False
                if isinstance(event, ChannelHungUp):
                    self.caller_cause = (event.cause, event.cause_text)
                if not self.caller_may_leave:
                    cause, text = self.caller_cause or (None, "caller left")
                    raise CallerGone(cause, text)
            return event

    def _is_caller_gone(self, event: TelephonyEvent) -> bool:
        return isinstance(event, ChannelHungUp | ChannelLeft) and (
            event.channel_id == self.caller_channel_id
        )

    def deadline_in(self, seconds: float) -> float:
        return asyncio.get_running_loop().time() + seconds

    async def play_and_wait(self, channel_id: str, sound: str, *, max_s: float = 120.0) -> bool:
        """Play a prompt to one channel and wait until it ends.

        Returns False if that channel disappears meanwhile (the caller's
        disappearance raises CallerGone as usual).
        """
        playback_id = self.new_id("pb")
        uri = self.sounds.uri(sound, self.plan.language)
        if not await self.port.play(channel_id, uri, playback_id, self.plan.language):
            return False
        deadline = self.deadline_in(max_s)
        while True:
            event = await self.next_event(deadline)
            if event is None:
                await self.port.stop_playback(playback_id)
                return True
            if isinstance(event, PlaybackFinished) and event.playback_id == playback_id:
                if event.failed:
                    log.warning("call %s: prompt %s failed to play", self.call_id[:8], uri)
                return True
            if isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id == channel_id:
                return False
