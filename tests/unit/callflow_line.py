"""Scenarios of the call flow in virtual time (tests/unit/virtual_time.py): Line
drives one service over the fake PBX (callflow_fakes.py) as the PBX would, and
reads the trail per call; Mailbox is its voicemail store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from astreinte_ari.callflow.audit_events import (
    CallEnded,
    HopEnded,
    HopProgress,
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallState
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
    TelephonyEvent,
)
from astreinte_ari.routing.plan import CallPlan
from tests.unit.callflow_fakes import DID, T0, FakePbx, make_service
from tests.unit.virtual_time import LoopClock

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
