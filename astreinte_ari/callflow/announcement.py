"""The caller's announcement while the first hop already rings (early dial).

Without early dial the call flow plays the announcement and waits for its end
before ringing anyone. With it, the announcement plays on its own: each sound's
end is handled by whichever phase of the call reads that event (a hop ringing,
an agent at the prompt: LegRuntime.when_finished), which starts the next sound
or, after the last one, tells the call flow (`on_over`: e.g. start the ringback).
Nothing here waits on the event queue itself, so the hop's own waits are not
disturbed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from astreinte_ari.callflow.conversation import quietly
from astreinte_ari.callflow.hop import HopAttempt
from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.callflow.runtime import CallerGone, CallRuntime
from astreinte_ari.callflow.telephony import (
    ChannelHungUp,
    ChannelLeft,
    PlaybackFinished,
    TelephonyError,
)
from astreinte_ari.routing.plan import AnnouncementMode

log = logging.getLogger("astreinte_ari.call")
# Longest an announcement may take before the service stops waiting for its end.
ANNOUNCEMENT_MAX_S = 120.0


@dataclass(frozen=True, slots=True)
class AnnouncedSound:
    name: str
    may_cut: bool  # an agent's accept may cut it short (never the recorded-call notice)


class Announcement:
    """The sounds the caller hears first, played one after the other."""

    def __init__(
        self,
        rt: CallRuntime,
        sounds: Sequence[AnnouncedSound],
        on_over: Callable[[], Awaitable[None]],
        on_sound_end: Callable[[str, bool], None] = lambda name, in_full: None,
    ) -> None:
        """`on_sound_end(name, in_full)`: each sound's end, in full or not (failed,
        refused, cut, given up): the recording notice's tells whether to record."""
        self._rt = rt
        self._on_sound_end = on_sound_end
        self._rest = list(sounds)
        self._on_over = on_over
        self._current: AnnouncedSound | None = None
        self._playback_id: str | None = None
        self._skip_cuttable = False
        self.playing = False
        self.cut = False  # an accepting agent cut part of it short

    async def start(self) -> None:
        self.playing = True
        await self._play_next()

    async def _play_next(self) -> None:
        rt = self._rt
        self._current = self._playback_id = None
        while self._rest:
            sound = self._rest.pop(0)
            if sound.may_cut and self._skip_cuttable:
                self.cut = True
                continue
            playback_id = rt.new_id("pb")
            rt.when_finished(playback_id, self._finished)
            uri = rt.sounds.uri(sound.name, rt.language)
            try:
                playing = await rt.port.play(rt.caller_channel_id, uri, playback_id, rt.language)
            except TelephonyError as exc:  # a sound the PBX refused: not worth a call
                log.warning("call %s: announcement %s not played: %s", rt.call_id[:8], uri, exc)
                rt.forget_finished(playback_id)
                rt.failed_prompts.append(sound.name)  # a test call fails on it
                self._on_sound_end(sound.name, False)
                continue
            if playing:
                self._current, self._playback_id = sound, playback_id
                return
            rt.forget_finished(playback_id)
            break  # the caller's channel is gone: its hangup unwinds the call
        self._rest.clear()
        self.playing = False
        await self._on_over()

    async def _finished(self, event: PlaybackFinished) -> None:
        if self._current is not None:
            if event.failed:
                self._rt.failed_prompts.append(self._current.name)  # a test call fails on it
            self._on_sound_end(self._current.name, not event.failed)
        await self._play_next()

    async def cut_short(self) -> None:
        """An agent accepted: skip what may be skipped, stop it if it is playing now.
        What may not be cut (the recorded-call notice) plays on; `playing` says so."""
        self._skip_cuttable = True
        current, playback_id = self._current, self._playback_id
        if current is None or playback_id is None or not current.may_cut:
            return
        self.cut = True
        self._rt.forget_finished(playback_id)
        self._on_sound_end(current.name, False)
        # Cut it and go on at once: its PlaybackFinished (or a hangup race) is noise now.
        await quietly(self._rt.port.stop_playback(playback_id))
        await self._play_next()

    async def until_over(self) -> None:
        """Nobody accepted: the caller hears the rest before voicemail or "no one"."""
        deadline = self._rt.deadline_in(ANNOUNCEMENT_MAX_S)
        while self.playing:
            if await self._rt.next_event(deadline) is None:
                await self.stop()

    async def stop(self) -> None:
        """Give up on it (its end never came): the caller is not kept waiting for it."""
        self._rest.clear()
        if self._playback_id is not None:
            log.warning("call %s: the announcement never ended: stopped", self._rt.call_id[:8])
            self._rt.forget_finished(self._playback_id)
            if self._current is not None:
                self._on_sound_end(self._current.name, False)
            await quietly(self._rt.port.stop_playback(self._playback_id))
        if self.playing:
            self._current = self._playback_id = None
            self.playing = False
            await self._on_over()


async def ready_to_bridge(
    rt: CallRuntime, announcement: Announcement, hop: HopAttempt, prompt: str | None
) -> tuple[str | None, bool] | None:
    """An agent accepted while the announcement plays. `until_accepted`: cut it short,
    the bridge is next (the prompt still to stop with its setup). `full`, or a notice
    that is never cut still playing: the agent waits on hold until it ends.
    (prompt to stop, agent on hold), or None: the agent left (the hop is ended)."""
    if rt.plan.announcement_mode is AnnouncementMode.UNTIL_ACCEPTED:
        await announcement.cut_short()
        if not announcement.playing:
            return prompt, False
    if await hold_until_announced(rt, announcement, hop, prompt):
        return None, True
    return None


async def hold_until_announced(
    rt: CallRuntime, announcement: Announcement, hop: HopAttempt, prompt: str | None
) -> bool:
    """An agent accepted while the caller still hears the announcement: stop the
    prompt, put the agent on hold (a ringback: "connecting"), and wait for its end.

    True: the caller is ready to talk (the agent is on hold). False: the agent hung
    up meanwhile (the hop is ended; the cascade goes on). CallerGone: the caller left
    during the announcement; the agent leg is hung up and the hop ended first.
    """
    agent_id = hop.agent_id
    took = "accepted" if hop.hop.require_accept else "answered"  # a forward: no key
    rt.transition(
        CallState.AGENT_WAITING,
        f"{hop.describe()} {took} during the announcement: on hold until it ends",
    )
    await asyncio.gather(
        rt.port.stop_playback(prompt) if prompt else asyncio.sleep(0),
        quietly(rt.port.start_hold(agent_id, rt.sounds.hold_class)),
    )
    deadline = rt.deadline_in(ANNOUNCEMENT_MAX_S)
    try:
        while announcement.playing:
            event = await rt.next_event(deadline)
            if event is None:
                await announcement.stop()
            elif isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id == agent_id:
                hop.end_left_before_bridge("while waiting for the announcement to end")
                return False
    except CallerGone:
        await quietly(rt.port.hangup(agent_id))
        hop.end_cancelled("caller hung up during the announcement, the agent on hold")
        raise
    return True
