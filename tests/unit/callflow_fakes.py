"""A scripted telephony port and helpers for fast tests of the call flow.

The fake PBX answers every action at once and records it; playbacks finish by
themselves unless the test holds them; the test pushes PBX events (hangups,
answers, keys) through the service as the ARI adapter would.

callflow_line.py's Line drives one such service in virtual time (virtual_time.py):
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
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.dispatch import OnCallService
from astreinte_ari.callflow.runtime import SoundLibrary
from astreinte_ari.callflow.telephony import (
    Channel,
    ChannelEntered,
    PlaybackFinished,
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
