"""The telephony port the call flow drives, and the events it receives.

These are the domain's words for what happens on the PBX. The ARI adapter
implements the port and translates ARI's JSON events into these types, so
nothing outside the adapter sees a raw ARI dict.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from astreinte_ari.routing.plan import DialTarget


class TelephonyError(Exception):
    """The PBX refused an action (not a hangup race: those return False)."""


class DialRefused(TelephonyError):
    """The target is not allowed by the configuration (a number outside the trunk's
    allowed prefixes, a SIP endpoint it does not name): never dialled."""


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    name: str
    state: str  # "Up", "Ring", "Ringing", "Down"...
    caller_number: str  # untrusted
    caller_name: str  # untrusted
    exten: str = ""  # dialplan extension (the DID for inbound calls)
    context: str = ""
    stasis_app: str = ""  # the ARI application holding the channel, if any
    stasis_args: tuple[str, ...] = ()
    created_at: datetime | None = None  # by the PBX's clock: when the call arrived


@dataclass(frozen=True, slots=True)
class Bridge:
    id: str
    channel_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChannelEntered:
    """A channel entered the application (inbound call, or an originated leg answered)."""

    channel: Channel
    args: tuple[str, ...]
    at: datetime | None = None  # PBX time of the event (the service may read it late)


@dataclass(frozen=True, slots=True)
class ChannelLeft:
    """The channel left the application (hung up, or continued in the dialplan)."""

    channel_id: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChannelHungUp:
    channel_id: str
    cause: int  # Q.850 cause code; 0 = our own timeout / unknown
    cause_text: str
    at: datetime | None = None  # when the channel really ended (PBX time), if known


@dataclass(frozen=True, slots=True)
class HangupRequested:
    """Someone asked to hang the channel up: for a caller, their BYE and its Q.850
    cause. ChannelLeft follows; ChannelHungUp (with the cause) may not reach us,
    because the application is unsubscribed once the channel has left it."""

    channel_id: str
    cause: int
    cause_text: str
    at: datetime | None = None
    # True when the PBX itself ends the channel (shutting down, an admin's or our own
    # request), not the party on it: `cause` is then Asterisk's reason, not Q.850.
    by_pbx: bool = False


@dataclass(frozen=True, slots=True)
class ChannelRinging:
    channel_id: str


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    channel_id: str
    digit: str  # untrusted: validate before use
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    playback_id: str
    failed: bool = False


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    name: str
    duration_s: float | None
    failed: bool = False
    cause: str = ""


@dataclass(frozen=True, slots=True)
class AppReplaced:
    """Another client took over our application name: fatal for this process."""


@dataclass(frozen=True, slots=True)
class Resynced:
    """Snapshot after each (re)connection: what the PBX holds right now."""

    channels: tuple[Channel, ...]
    bridges: tuple[Bridge, ...]


@dataclass(frozen=True, slots=True)
class Reconnected:
    """Told to each call in progress after a gap in the event stream: events may
    have been lost. The runtime has already replayed what it could establish
    (channels gone, playbacks ended, an agent leg answered); a phase that waits
    for something nobody can replay (a key press) starts that wait again."""


@dataclass(frozen=True, slots=True)
class CallResync:
    """What the service hands each call in progress after a gap in the events."""

    in_app: tuple[Channel, ...]  # this call's channels in our application now
    ended: tuple[ChannelHungUp, ...] = ()  # this call's channels that ended meanwhile


class TakeResult(enum.Enum):
    """What the PBX answers when the service takes a new call (disarms the watchdog)."""

    TAKEN = "taken"  # ours: the watchdog is disarmed
    GONE = "gone"  # the channel no longer exists (caller left, maybe via the fallback)
    ELSEWHERE = "elsewhere"  # alive but out of our application: the dialplan has it


TelephonyEvent = (
    ChannelEntered
    | ChannelLeft
    | ChannelHungUp
    | HangupRequested
    | ChannelRinging
    | DtmfReceived
    | PlaybackFinished
    | RecordingFinished
    | AppReplaced
    | Resynced
    | Reconnected
    | CallResync
)


class TelephonyPort(Protocol):
    """Actions on the PBX. Methods that act on a channel return False when the
    channel is already gone (a hangup race is normal, not an error)."""

    async def originate(
        self,
        *,
        channel_id: str,
        target: DialTarget,
        app_args: tuple[str, ...],
        caller_id: str,
        timeout_s: int,
    ) -> None:
        """Dial `target.dial_string` as resolved by the plan (never recomputed); raises
        DialRefused when the configuration in force does not allow the target."""
        ...

    async def place_test_call(
        self, *, did: str, inbound_channel_id: str, source_channel_id: str, timeout_s: int
    ) -> None:
        """Call the line `did` through the PBX's own inbound dialplan (a Local channel):
        `inbound_channel_id` is the half that enters the application like a caller,
        `source_channel_id` the half that stays in the dialplan for `timeout_s` at most."""
        ...

    async def hangup(self, channel_id: str, reason: str = "normal") -> bool: ...

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str,
        exten: str,
        variables: Mapping[str, str] | None = None,
    ) -> bool:
        """Hand the channel back to the dialplan (e.g. to the fallback while draining),
        with channel variables set first (names and values are ours, never a caller's)."""
        ...

    async def channel_ids(self) -> set[str]:
        """The ids of every channel the PBX holds now."""
        ...

    async def take_call(self, channel_id: str) -> TakeResult:
        """Cancel the dialplan's timer that sends an untaken call to the fallback.

        GONE or ELSEWHERE: the channel is no longer ours (the caller left, or the
        timer fired while this process was too slow or frozen).
        """
        ...

    async def channel_present(self, channel_id: str) -> bool:
        """Whether the channel still exists (right before ringing someone for it)."""
        ...

    async def playback_active(self, playback_id: str) -> bool:
        """Whether a playback is still playing (after a gap in the event stream)."""
        ...

    async def recording_active(self, name: str) -> bool:
        """Whether a live recording is still recording (after a gap in the events)."""
        ...

    async def play(
        self, channel_id: str, media: str, playback_id: str, language: str | None = None
    ) -> bool: ...

    async def stop_playback(self, playback_id: str) -> bool: ...

    async def start_hold(self, channel_id: str, moh_class: str) -> bool:
        """What a waiting caller hears (ringback or music): a music-on-hold class."""
        ...

    async def stop_hold(self, channel_id: str) -> bool: ...

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        max_duration_s: int,
        max_silence_s: int,
        terminate_on: str,
    ) -> bool: ...

    async def create_bridge(self, bridge_id: str, *, dtmf_events: bool = False) -> None:
        """A mixing bridge; `dtmf_events`: the PBX reports the key presses of the
        channels in it (media decoded by the PBX, never passed directly)."""
        ...

    async def snoop(self, channel_id: str, snoop_id: str) -> bool:
        """A channel `snoop_id` that hears both directions of `channel_id` (what its
        party says and hears) and enters our application; False if it is gone."""
        ...

    async def record_conversation(self, channel_id: str, name: str, *, max_duration_s: int) -> bool:
        """Record a channel (a snoop) under `name`: no beep, no key ends it, never
        overwriting; False if the channel is gone."""
        ...

    async def discard_recording(self, name: str) -> bool:
        """Stop a live recording and keep nothing of it; False if it is not live."""
        ...

    async def add_to_bridge(self, bridge_id: str, channel_ids: tuple[str, ...]) -> bool: ...

    async def destroy_bridge(self, bridge_id: str) -> bool: ...

    async def fetch_recording(self, name: str) -> bytes | None: ...

    async def delete_recording(self, name: str) -> bool: ...
