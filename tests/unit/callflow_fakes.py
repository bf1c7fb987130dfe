"""A scripted telephony port and helpers for fast tests of the call flow.

The fake PBX answers every action at once and records it; playbacks finish by
themselves unless the test holds them; the test pushes PBX events (hangups,
answers, keys) through the service as the ARI adapter would.

Line (at the end) drives one such service in virtual time (virtual_time.py):
a scenario's script plays the parties' part and reads the trail per call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallEnded,
    HopEnded,
    HopProgress,
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.dispatch import OnCallService
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.callflow.runtime import SoundLibrary
from astreinte_ari.callflow.telephony import (
    Channel,
    ChannelEntered,
    ChannelHungUp,
    ChannelLeft,
    ChannelRinging,
    DtmfReceived,
    HangupRequested,
    PlaybackFinished,
    RecordingFinished,
    TakeResult,
    TelephonyEvent,
)
from astreinte_ari.callflow.voicemail import VoicemailSink
from astreinte_ari.routing.plan import (
    CallPlan,
    DialTarget,
    FinalAction,
    Hop,
    Period,
    TargetKind,
    VoicemailPolicy,
)
from tests.unit.virtual_time import LoopClock

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
DID = "+33180000000"


def hop(person: str, number: str, timeout: int = 20, *, require_accept: bool = True) -> Hop:
    """The one place tests build a hop (the hop's shape may change: only here then):
    to `number` through a trunk dialled as PJSIP/<number>, or to the SIP endpoint `x`
    when `number` is "sip:x"."""
    if number.startswith("sip:"):
        target = DialTarget(TargetKind.SIP, number[4:], f"PJSIP/{number[4:]}")
    else:
        target = DialTarget(TargetKind.TRUNK, number, f"PJSIP/{number}")
    return Hop(person, person, person.title(), target, timeout, require_accept)


def plan(
    *hops: Hop, announcement: str | None = "astreinte-after-hours", **changes: Any
) -> CallPlan:
    """An after-hours plan ringing `hops`; `changes` replace any other field."""
    base = CallPlan(
        did=DID,
        line_name="Maintenance",
        team="maintenance",
        language="fr",
        period=Period.AFTER_HOURS,
        announcement=announcement,
        hops=hops,
        final=FinalAction.HANGUP,
        voicemail=VoicemailPolicy(),
        agent_caller_id=DID,
        accept_timeout_s=5,
    )
    return dataclasses.replace(base, **changes)


@dataclass
class FakePbx:
    """TelephonyPort double: every action succeeds unless scripted otherwise."""

    take: TakeResult = TakeResult.TAKEN
    present: bool = True  # answer to channel_present
    auto_finish_playbacks: bool = True
    # Sounds whose playbacks go on until the test finishes them (PlaybackFinished).
    held_sounds: frozenset[str] = frozenset()
    # Actions the PBX answers with False: the channel is already gone (a hangup race).
    gone_for: frozenset[str] = frozenset()
    # Actions the PBX refuses with an error (TelephonyError and its kinds): every time,
    # or, given a list, the next calls one error each (None: that call succeeds).
    errors: dict[str, Exception | list[Exception | None]] = field(default_factory=dict)
    refused: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)  # raised
    stored_recording: bytes | None = None  # what fetch_recording answers
    active_playbacks: set[str] = field(default_factory=set)
    actions: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    service: OnCallService | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set on every action

    def did(self, name: str) -> list[tuple[Any, ...]]:
        return [args for action, args in self.actions if action == name]

    def _act(self, name: str, args: tuple[Any, ...]) -> None:
        self.actions.append((name, args))
        self.changed.set()
        error = self.errors.get(name)
        if isinstance(error, list):
            error = error.pop(0) if error else None
        if error is not None:
            self.refused.append((name, args))
            raise error

    async def next_change(self) -> None:
        """Until the PBX is asked something new (or whoever shares `changed` sets it)."""
        self.changed.clear()
        await self.changed.wait()

    async def take_call(self, channel_id: str) -> TakeResult:
        self._act("take_call", (channel_id,))
        return self.take

    async def channel_present(self, channel_id: str) -> bool:
        self._act("channel_present", (channel_id,))
        return self.present

    async def playback_active(self, playback_id: str) -> bool:
        return playback_id in self.active_playbacks

    async def recording_active(self, name: str) -> bool:
        return False

    async def play(
        self, channel_id: str, media: str, playback_id: str, language: str | None = None
    ) -> bool:
        self._act("play", (channel_id, media, playback_id))
        if "play" in self.gone_for:
            return False
        if self.auto_finish_playbacks and not media.endswith(tuple(self.held_sounds)):
            assert self.service is not None
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.service.handle(PlaybackFinished(playback_id)))  # type: ignore[union-attr]
            )
        else:
            self.active_playbacks.add(playback_id)
        return True

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str,
        exten: str,
        variables: Mapping[str, str] | None = None,
    ) -> bool:
        self._act("continue", (channel_id, context, exten, dict(variables or {})))
        return True

    async def fetch_recording(self, name: str) -> bytes | None:
        self._act("fetch_recording", (name,))
        return self.stored_recording

    async def channel_ids(self) -> set[str]:
        return set()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def action(*args: Any, **kwargs: Any) -> bool:
            self._act(name, args + tuple(sorted(kwargs.items())))
            return name not in self.gone_for

        return action


class Trail:
    """Audit sink that keeps the events (and sets `changed`, if given, on each)."""

    def __init__(self, changed: asyncio.Event | None = None) -> None:
        self.events: list[AuditEvent] = []
        self.changed = changed

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)
        if self.changed is not None:
            self.changed.set()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def ended(self) -> CallEnded | None:
        ended = self.of(CallEnded)
        assert len(ended) <= 1, ended
        return ended[0] if ended else None

    @property
    def states(self) -> list[str]:
        return [e.to_state.value for e in self.of(StateChanged)]

    @property
    def hops(self) -> list[HopStarted]:
        return self.of(HopStarted)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_service(
    pbx: FakePbx,
    call_plan: CallPlan | Mapping[str, CallPlan] | None,
    *,
    clock: Callable[[], datetime] | None = None,
    voicemail: VoicemailSink | None = None,
    **kwargs: Any,
) -> tuple[OnCallService, Trail, Clock]:
    """The service over `pbx`: one plan for every DID, or one per DID (a mapping).

    Without `clock`, time stands still at T0 unless the test advances the Clock
    returned; with one (a LoopClock), the Clock returned is unused.
    """
    trail, fixed = Trail(pbx.changed), Clock()

    def plan_for(did: str, now: datetime) -> CallPlan | None:
        if isinstance(call_plan, Mapping):
            return call_plan.get(did)
        return call_plan

    service = OnCallService(
        port=pbx,  # type: ignore[arg-type]
        audit=trail,
        sounds=SoundLibrary(PurePosixPath("/snd")),
        voicemail=voicemail,  # type: ignore[arg-type]
        plan_for=plan_for,
        clock=clock or fixed,
        **kwargs,
    )
    pbx.service = service
    return service, trail, fixed


def caller(channel_id: str = "1764540000.1", created: datetime = T0) -> Channel:
    return Channel(
        channel_id, "PJSIP/caller-1", "Up", "+33199000001", "Client", exten=DID, created_at=created
    )


async def arrive(service: OnCallService, channel: Channel) -> None:
    await service.handle(ChannelEntered(channel, (DID,), at=channel.created_at))


async def feed(service: OnCallService, *events: TelephonyEvent) -> None:
    for event in events:
        await service.handle(event)


async def settle(service: OnCallService, timeout: float = 5.0) -> None:
    """Until no call is in progress (each test's calls end by themselves)."""
    assert await service.wait_idle(timeout), "the call did not end"


# -- scenarios in virtual time (tests/unit/virtual_time.py) ---------------------------

DID2 = "+33180000001"
CALLER = "1764540000.1"
WAV_HEADER = b"\0" * 44


def wav(seconds: float) -> bytes:
    """What Asterisk stores for a message of this length (8 kHz, 16-bit mono)."""
    return WAV_HEADER + b"\0" * int(seconds * 16000)


class Mailbox:
    """VoicemailSink double: keeps the messages; refuses them all with `refuse`."""

    def __init__(self, refuse: OSError | None = None) -> None:
        self.saved: dict[str, bytes] = {}
        self.refuse = refuse

    def save(self, call_id: str, data: bytes, at: datetime) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.saved[call_id] = data
        return self.path_for(call_id, at)

    def path_for(self, call_id: str, at: datetime) -> str:
        return f"/var/lib/astreinte/voicemail/{call_id}.wav"


class Line:
    """One on-call line under test, driven like the PBX would drive it.

    Runs on a VirtualTimeLoop: the service's clock is loop time from T0, so the
    audit's timestamps say exactly when (in scenario seconds) each thing happened.
    The script acts the PBX's part: parties answering, pressing keys, hanging up.
    """

    def __init__(
        self,
        *plans: CallPlan,
        pbx: FakePbx | None = None,
        mailbox: Mailbox | None = None,
        **service_kwargs: Any,
    ) -> None:
        self.pbx = pbx or FakePbx()
        self.clock = LoopClock(T0)
        self.mailbox = mailbox or Mailbox()
        self.plans = {p.did: p for p in plans}
        self.service, self.trail, _ = make_service(
            self.pbx, self.plans, clock=self.clock, voicemail=self.mailbox, **service_kwargs
        )
        self.gone: set[str] = set()  # channels the script ended (as their party or the PBX)
        self.callers: dict[str, Channel] = {}  # call id -> caller channel
        self.closed: list[CallClosed] = []  # what alerts and metrics learn of each call
        self.service.add_call_listener(self.closed.append)

    # -- time --------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock()

    def at(self, when: datetime) -> float:
        """`when` in scenario seconds (T0 is 0)."""
        return self.clock.seconds(when)

    async def wait(self, seconds: float) -> None:
        """Let `seconds` of scenario time pass (instantly)."""
        await asyncio.sleep(seconds)

    async def until(self, condition: Callable[[], bool], what: str, within: float = 600) -> None:
        """Until `condition` holds; it is checked on every PBX action and audit event."""
        try:
            async with asyncio.timeout(within):
                while not condition():
                    await self.pbx.next_change()
        except TimeoutError:
            raise AssertionError(f"never happened within {within} s: {what}") from None

    # -- the PBX's part ----------------------------------------------------------------

    async def feed(self, *events: TelephonyEvent) -> None:
        for event in events:
            await self.service.handle(event)

    async def arrive(self, channel_id: str = CALLER, did: str = DID) -> str:
        """A caller dials `did`: returns the call id."""
        channel = Channel(
            channel_id, f"PJSIP/trunk-{channel_id}", "Up", "+33199000001", "Client",
            exten=did, created_at=self.now(),
        )  # fmt: skip
        call_id = call_id_for_channel(channel_id)
        self.callers[call_id] = channel
        await self.feed(ChannelEntered(channel, (did,), at=channel.created_at))
        return call_id

    def originated(self) -> list[dict[str, Any]]:
        return [dict(args) for args in self.pbx.did("originate")]

    async def leg(self, n: int = 1) -> str:
        """The channel id of the n-th leg the service rings (waits until it does)."""
        await self.until(lambda: len(self.originated()) >= n, f"leg {n} originated")
        return str(self.originated()[n - 1]["channel_id"])

    async def rings(self, leg: str) -> None:
        await self.feed(ChannelRinging(leg))

    async def answers(self, leg: str) -> None:
        """The agent picks up: the leg enters the application."""
        channel = Channel(leg, "PJSIP/agent", "Up", "", "", stasis_app="astreinte")
        await self.feed(ChannelEntered(channel, ("agent",), at=self.now()))

    async def presses(self, channel_id: str, digit: str) -> None:
        await self.feed(DtmfReceived(channel_id, digit, at=self.now()))

    async def hangs_up(
        self, channel_id: str, cause: int = 16, text: str = "Normal Clearing", by_pbx: bool = False
    ) -> None:
        """A party in the application hangs up: Asterisk's hangup request, then StasisEnd."""
        self.gone.add(channel_id)
        now = self.now()
        await self.feed(
            HangupRequested(channel_id, cause, text, now, by_pbx=by_pbx),
            ChannelLeft(channel_id, now),
        )

    async def fails(self, leg: str, cause: int, text: str) -> None:
        """A leg that never answered ends (ChannelDestroyed and its Q.850 cause)."""
        self.gone.add(leg)
        await self.feed(ChannelHungUp(leg, cause, text, self.now()))

    def plays(self, sound: str, channel_id: str | None = None) -> list[str]:
        """Ids of the playbacks of `sound` (to `channel_id`, if given), in order."""
        return [
            pb
            for chan, media, pb in self.pbx.did("play")
            if media.endswith(f"/{sound}") and channel_id in (None, chan)
        ]

    async def playing(self, sound: str, channel_id: str | None = None, n: int = 1) -> str:
        """The n-th playback of `sound` (waits until it starts)."""
        await self.until(lambda: len(self.plays(sound, channel_id)) >= n, f"{sound} played")
        return self.plays(sound, channel_id)[n - 1]

    async def finishes(self, playback_id: str) -> None:
        self.pbx.active_playbacks.discard(playback_id)
        await self.feed(PlaybackFinished(playback_id))

    async def recording(self, channel_id: str = CALLER) -> str:
        """The name of the caller's voicemail recording (waits until it starts)."""

        def names() -> list[str]:
            return [str(args[1]) for args in self.pbx.did("record") if args[0] == channel_id]

        await self.until(lambda: bool(names()), f"recording {channel_id}")
        return names()[0]

    async def records(self, name: str, seconds: float) -> None:
        """The recording ends, `seconds` long (# pressed or silence)."""
        self.pbx.stored_recording = wav(seconds)
        await self.feed(RecordingFinished(name, seconds))

    async def done(self) -> None:
        """Until every call has ended (in scenario time: costs nothing)."""
        assert await self.service.wait_idle(3000), "a call never ended"

    # -- what the trail says about one call ----------------------------------------------

    def transitions(self, call_id: str) -> list[tuple[CallState, CallState]]:
        return [(e.from_state, e.to_state) for e in self._changes(call_id)]

    def _changes(self, call_id: str) -> list[StateChanged]:
        return [e for e in self.trail.of(StateChanged) if e.call_id == call_id]

    def states(self, call_id: str) -> list[CallState]:
        return [e.to_state for e in self._changes(call_id)]

    def ended(self, call_id: str) -> CallEnded:
        ended = [e for e in self.trail.of(CallEnded) if e.call_id == call_id]
        assert len(ended) == 1, f"{len(ended)} endings for one call: {ended}"
        return ended[0]

    def hops(self, call_id: str) -> list[HopStarted]:
        return [e for e in self.trail.of(HopStarted) if e.call_id == call_id]

    def hop_ends(self, call_id: str) -> list[HopEnded]:
        """How each hop of the call ended, in the cascade's order."""
        ids = [h.hop_id for h in self.hops(call_id)]
        ends = [e for e in self.trail.of(HopEnded) if e.hop_id in ids]
        return sorted(ends, key=lambda e: ids.index(e.hop_id))

    def progress(self, call_id: str) -> list[tuple[int, str]]:
        """(hop seq, "ringing" | "answered" | "accepted") as the trail has them."""
        seq = {h.hop_id: h.seq for h in self.hops(call_id)}
        return [(seq[e.hop_id], e.event) for e in self.trail.of(HopProgress) if e.hop_id in seq]
