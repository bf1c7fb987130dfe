"""Per-call runtime: the event queue, timed waits, the audited state machine.

One runtime exists per call, inbound (CallRuntime: a caller on an on-call
line, with its plan) or outbound (LegRuntime: a voice alert ringing a person).
The dispatcher routes every telephony event that concerns one of the call's
objects (channels, playbacks, recordings) into its queue; the phases (hop,
voicemail, bridge, alert readout) pull from it. "The caller" is the party the
call exists for: the inbound caller, or the person an outbound call rings.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Generic, Protocol, TypeVar

from astreinte_ari.aio import within
from astreinte_ari.callflow.audit_events import AuditEvent, StateChanged
from astreinte_ari.callflow.identity import new_object_id, recording_name_for
from astreinte_ari.callflow.outcomes import ALLOWED_TRANSITIONS, CallState
from astreinte_ari.callflow.telephony import (
    CallResync,
    ChannelEntered,
    ChannelHungUp,
    ChannelLeft,
    HangupRequested,
    PlaybackFinished,
    Reconnected,
    RecordingFinished,
    TelephonyError,
    TelephonyEvent,
    TelephonyPort,
)
from astreinte_ari.routing.plan import CallPlan

log = logging.getLogger("astreinte_ari.call")
S = TypeVar("S", bound=str)  # a call's state vocabulary (an enum.StrEnum)


class AuditSink(Protocol):
    def emit(self, event: AuditEvent) -> None: ...


class CallerGone(Exception):
    """The caller hung up: unwinds whatever phase the call is in."""

    def __init__(
        self,
        cause: int | None,
        cause_text: str,
        at: datetime | None = None,
        by_pbx: bool = False,
    ) -> None:
        super().__init__(cause_text)
        self.cause = cause
        self.cause_text = cause_text
        self.at = at  # when the caller left, by the PBX's clock (None: unknown)
        self.by_pbx = by_pbx  # the PBX ended the caller's channel (shutdown...), not the caller


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


@dataclass(frozen=True, slots=True)
class StateMachine(Generic[S]):
    """A call's states: where it starts, which state may follow which (anything
    else is a programming error), and how each transition is recorded."""

    initial: S
    allowed: Mapping[S, frozenset[S]]
    record: Callable[[str, int, S, S, str], None]  # (call id, seq, from, to, reason)


def inbound_machine(audit: AuditSink, clock: Callable[[], datetime]) -> StateMachine[CallState]:
    """An inbound call's transitions go to the audit trail (call_transitions)."""

    def record(
        call_id: str, seq: int, from_state: CallState, to_state: CallState, why: str
    ) -> None:
        audit.emit(
            StateChanged(
                call_id=call_id,
                seq=seq,
                from_state=from_state,
                to_state=to_state,
                reason=why,
                at=clock(),
            )
        )

    return StateMachine(CallState.RECEIVED, ALLOWED_TRANSITIONS, record)


class LegRuntime(Generic[S]):
    """What every call flow runs on, inbound or outbound."""

    def __init__(
        self,
        *,
        call_id: str,
        caller_channel_id: str,
        language: str,
        machine: StateMachine[S],
        port: TelephonyPort,
        audit: AuditSink,
        sounds: SoundLibrary,
        clock: Callable[[], datetime],
        bind: Callable[[str], None],
    ) -> None:
        self.call_id = call_id
        self.caller_channel_id = caller_channel_id
        self.language = language
        self.machine = machine
        self.port = port
        self.audit = audit
        self.sounds = sounds
        self.clock = clock
        self._bind = bind
        self.events: asyncio.Queue[TelephonyEvent] = asyncio.Queue()
        self.state: S = machine.initial
        self._seq = 0
        self.caller_present = True
        self.caller_may_leave = False  # True while a caller hangup is an expected ending
        self.caller_cause: tuple[int | None, str] | None = None
        self.caller_left_at: datetime | None = None
        self.caller_ended_by_pbx = False  # a soft hangup: the PBX, not the caller
        # Hangup requests seen per channel: the Q.850 cause often arrives only there.
        self.hangup_causes: dict[str, tuple[int | None, str]] = {}
        self.pbx_hangups: set[str] = set()  # channels the PBX itself ended (soft hangups)
        self.failed_prompts: list[str] = []  # sounds the PBX could not play (a test fails)
        # Events this runtime established itself (after a gap in the event stream) or
        # set aside while checking on the caller: consumed before the queue.
        self._replay: deque[TelephonyEvent] = deque()
        self._entered: set[str] = {caller_channel_id}
        self._playbacks: set[str] = set()
        self._recordings: set[str] = set()
        # Done by whichever phase reads a playback's end (see when_finished).
        self._on_finished: dict[str, Callable[[], Awaitable[None]]] = {}

    # -- identities ----------------------------------------------------------------

    def new_id(self, kind: str) -> str:
        """A fresh object id owned by this call; the service routes its events here."""
        object_id = new_object_id(kind)
        self.own(object_id)
        if kind == "pb":
            self._playbacks.add(object_id)
        elif kind == "vm":
            self._recordings.add(object_id)
        return object_id

    def recording_name(self) -> str:
        """This call's voicemail recording (one per call; named after the call id)."""
        name = recording_name_for(self.call_id)
        self.own(name)
        self._recordings.add(name)
        return name

    def own(self, object_id: str) -> None:
        """Route the events of an object whose id the caller chose to this call."""
        self._bind(object_id)

    # -- state machine -------------------------------------------------------------

    def restore(self, last_seq: int, state: S) -> None:
        """Continue a call an earlier process audited up to transition `last_seq`."""
        self._seq = last_seq
        self.state = state

    def transition(self, to_state: S, reason: str) -> None:
        if to_state not in self.machine.allowed[self.state]:
            raise RuntimeError(f"illegal transition {self.state} -> {to_state} ({reason})")
        self._seq += 1
        log.info("call %s: %s -> %s (%s)", self.call_id[:8], self.state, to_state, reason)
        self.machine.record(self.call_id, self._seq, self.state, to_state, reason)
        self.state = to_state

    # -- waiting -------------------------------------------------------------------

    async def next_event(self, deadline: float | None) -> TelephonyEvent | None:
        """Next event for this call, or None at the deadline (loop time).

        A caller hangup raises CallerGone unless `caller_may_leave` is set.
        """
        loop = asyncio.get_running_loop()
        while True:
            if self._replay:
                event = self._replay.popleft()
            else:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    if timeout == 0:  # wait_for(get(), 0) would never see a queued event
                        event = self.events.get_nowait()
                    else:
                        event = await within(self.events.get(), timeout)
                except (TimeoutError, asyncio.QueueEmpty):
                    return None
            if isinstance(event, CallResync):
                await self._resync(event)
                continue
            self._note(event)
            if self._is_caller_gone(event):
                if not self.caller_present:
                    # Second notice (StasisEnd, then ChannelDestroyed with the cause).
                    if isinstance(event, ChannelHungUp) and self.caller_cause is None:
                        self.caller_cause = (event.cause, event.cause_text)
                    if isinstance(event, HangupRequested):
                        continue
                    return event
                self.caller_present = False
                self.caller_left_at = getattr(event, "at", None) or self.clock()
                if isinstance(event, HangupRequested) and event.by_pbx:
                    self.caller_ended_by_pbx = True
                    self.caller_cause = (None, event.cause_text)
                elif isinstance(event, ChannelHungUp | HangupRequested):
                    self.caller_cause = (event.cause, event.cause_text)
                if not self.caller_may_leave:
                    raise self._caller_gone()
            if isinstance(event, HangupRequested):
                continue  # noted; the channel's ChannelLeft/ChannelHungUp follows
            if isinstance(event, PlaybackFinished):
                action = self._on_finished.pop(event.playback_id, None)
                if action is not None:
                    await action(event)
            return event

    def when_finished(
        self, playback_id: str, action: Callable[[PlaybackFinished], Awaitable[None]]
    ) -> None:
        """Run `action` once when `playback_id` ends, whichever phase of the call reads
        that event: a caller's announcement goes on while a hop rings (early dial)."""
        self._on_finished[playback_id] = action

    def forget_finished(self, playback_id: str) -> None:
        self._on_finished.pop(playback_id, None)

    def _note(self, event: TelephonyEvent) -> None:
        """Bookkeeping every phase relies on, whoever consumes the event."""
        if isinstance(event, HangupRequested):
            cause: int | None = None if event.by_pbx else event.cause
            self.hangup_causes.setdefault(event.channel_id, (cause, event.cause_text))
            if event.by_pbx:
                self.pbx_hangups.add(event.channel_id)
        elif isinstance(event, ChannelEntered):
            self._entered.add(event.channel.id)
        elif isinstance(event, PlaybackFinished):
            self._playbacks.discard(event.playback_id)
        elif isinstance(event, RecordingFinished):
            self._recordings.discard(event.name)

    def _is_caller_gone(self, event: TelephonyEvent) -> bool:
        # A hangup request on the caller is final: the PBX is tearing the channel
        # down. It can reach us before the PlaybackFinished of the prompt it cut
        # short, which must not read as "the announcement was heard in full".
        return isinstance(event, ChannelHungUp | ChannelLeft | HangupRequested) and (
            event.channel_id == self.caller_channel_id
        )

    async def _resync(self, resync: CallResync) -> None:
        """After a gap in the events: replay what the PBX says happened meanwhile."""
        replay: list[TelephonyEvent] = list(resync.ended)
        for channel in resync.in_app:
            if channel.id not in self._entered and channel.state == "Up":
                replay.append(ChannelEntered(channel, channel.stasis_args))
        try:
            for playback_id in sorted(self._playbacks):
                if not await self.port.playback_active(playback_id):
                    replay.append(PlaybackFinished(playback_id))
            for name in sorted(self._recordings):
                if not await self.port.recording_active(name):
                    replay.append(RecordingFinished(name, None))
        except TelephonyError as exc:  # cut off again: the next resync will tell
            log.warning("call %s: resync incomplete: %s", self.call_id[:8], exc)
        replay.append(Reconnected())
        log.info(
            "call %s: resynced after a gap (%d event(s) replayed)",
            self.call_id[:8],
            len(replay) - 1,
        )
        self._replay.extendleft(reversed(replay))

    async def ensure_caller_present(self) -> None:
        """Raise CallerGone if the caller has left: right before ringing someone.

        Looks at what is already queued for this call (without losing the other
        events), then asks the PBX: nobody is woken for a caller who hung up.
        """
        held: list[TelephonyEvent] = []
        try:
            while (event := await self.next_event(self.deadline_in(0))) is not None:
                held.append(event)
        finally:
            self._replay.extendleft(reversed(held))
        if not await self.port.channel_present(self.caller_channel_id):
            self.caller_present = False
            self.caller_left_at = self.caller_left_at or self.clock()
            raise self._caller_gone()

    def _caller_gone(self) -> CallerGone:
        cause, text = self.caller_cause or (None, "caller left")
        return CallerGone(cause, text, self.caller_left_at, self.caller_ended_by_pbx)

    def deadline_in(self, seconds: float) -> float:
        return asyncio.get_running_loop().time() + seconds

    async def play_and_wait(self, channel_id: str, sound: str, *, max_s: float = 120.0) -> bool:
        """Play a prompt to one channel and wait until it ends.

        Returns False if that channel disappears meanwhile (the caller's
        disappearance raises CallerGone as usual).
        """
        playback_id = self.new_id("pb")
        uri = self.sounds.uri(sound, self.language)
        if not await self.port.play(channel_id, uri, playback_id, self.language):
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
                    self.failed_prompts.append(sound)
                return True
            if isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id == channel_id:
                return False


class CallRuntime(LegRuntime[CallState]):
    """An inbound call: a caller on an on-call line and the plan it started with."""

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
        super().__init__(
            call_id=call_id,
            caller_channel_id=caller_channel_id,
            language=plan.language,
            machine=inbound_machine(audit, clock),
            port=port,
            audit=audit,
            sounds=sounds,
            clock=clock,
            bind=bind,
        )
        self.plan = plan
