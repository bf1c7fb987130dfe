"""Recording of a bridged conversation, for lines that ask for it (record_calls).

The lawful defaults (CNIL guidance on call recording at work, docs/recording.md):
- a line records only with a stated purpose (the configuration refuses it otherwise);
- the caller hears the notice BEFORE anything is recorded: if it could not be played
  in full, the conversation is not recorded at all;
- where the line allows it, the agent stops the recording with a key sequence: the
  recording is discarded (the partial file deleted), and the trail says so;
- each step is an audit event (ConversationRecording); retention deletes the files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from astreinte_ari.callflow.audit_events import ConversationRecording, RecordingStep
from astreinte_ari.callflow.conversation import quietly
from astreinte_ari.callflow.identity import conversation_recording_name_for
from astreinte_ari.callflow.runtime import LegRuntime
from astreinte_ari.callflow.telephony import (
    ChannelEntered,
    DtmfReceived,
    PlaybackFinished,
    RecordingFinished,
    TelephonyError,
    TelephonyEvent,
)
from astreinte_ari.callflow.voicemail import VoicemailSink, wav_seconds
from astreinte_ari.routing.plan import RecordingPolicy

log = logging.getLogger("astreinte_ari.call")

MAX_RECORDING_S = 4 * 3600  # a bound on the PBX's disk, far beyond any call
NOTICE_MAX_S = 60.0
FINISH_GRACE_S = 5.0  # the PBX closes the file when the bridge goes; it says so quickly
_KEYS = frozenset("0123456789*#")


def stored_name(call_id: str) -> str:
    """The key under which the sink stores a conversation (beside the voicemails)."""
    return f"{call_id}.conversation"


@dataclass(slots=True)
class KeySequence:
    """Matches a key sequence (e.g. "*9") in the digits an agent presses, in a row."""

    keys: str
    _typed: str = field(default="", init=False)

    def feed(self, digit: str) -> bool:
        """True once the last digits pressed are the sequence. Anything that is not a
        single DTMF key (untrusted input) breaks the sequence."""
        if len(digit) != 1 or digit not in _KEYS:
            self._typed = ""
            return False
        self._typed = (self._typed + digit)[-len(self.keys) :]
        if self._typed == self.keys:
            self._typed = ""
            return True
        return False


async def tell_caller(rt: LegRuntime[Any], policy: RecordingPolicy) -> bool:
    """Play the recording notice to the caller; True only if it played in full."""
    playback_id = rt.new_id("pb")
    uri = rt.sounds.uri(policy.notice, rt.language)
    heard = False
    if await rt.port.play(rt.caller_channel_id, uri, playback_id, rt.language):
        deadline = rt.deadline_in(NOTICE_MAX_S)
        while (event := await rt.next_event(deadline)) is not None:
            if isinstance(event, PlaybackFinished) and event.playback_id == playback_id:
                heard = not event.failed
                break
        else:
            await quietly(rt.port.stop_playback(playback_id))
    notice_told(rt, policy, heard)
    return heard


def notice_told(rt: LegRuntime[Any], policy: RecordingPolicy, heard: bool) -> None:
    """On the trail: whether the caller heard the notice in full (else nothing will be
    recorded). Early dial plays it first in the announcement, never cut short."""
    step = RecordingStep.NOTICE_PLAYED if heard else RecordingStep.NOTICE_FAILED
    uri = rt.sounds.uri(policy.notice, rt.language)
    _emit(rt, step, detail=None if heard else f"{uri} not played in full: nothing recorded")


def recorder_for(
    rt: LegRuntime[Any],
    policy: RecordingPolicy | None,
    sink: VoicemailSink,
    agent_id: str,
    notice_heard: bool,
) -> ConversationRecorder | None:
    """The conversation's recorder: None if the line does not record, or if the caller
    was not told (then the trail says the conversation was not recorded, and why)."""
    if policy is None:
        return None
    if not notice_heard:
        log.warning("call %s: not recorded: the caller did not hear the notice", rt.call_id[:8])
        _emit(rt, RecordingStep.NOT_STARTED, detail="the caller did not hear the notice")
        return None
    return ConversationRecorder(rt, policy, sink, agent_id)


async def adopt_after_restart(
    rt: LegRuntime[Any], policy: RecordingPolicy | None, sink: VoicemailSink, agent_id: str
) -> ConversationRecorder | None:
    """A conversation re-attached after a service restart: if the PBX is still recording
    it (the name derives from the call id), follow it to the end and store it; the
    agent's stop keys still work. Its `started` step is on record from before."""
    if policy is None:
        return None
    recorder = ConversationRecorder(rt, policy, sink, agent_id)
    try:
        live = await rt.port.recording_active(recorder.name)
    except TelephonyError as exc:
        log.warning("call %s: is it still recorded? %s", rt.call_id[:8], exc)
        live = False
    if not live:
        return None
    rt.own(recorder.name)
    recorder.active = True
    log.info("call %s: its recording goes on after the restart", rt.call_id[:8])
    return recorder


class ConversationRecorder:
    """One call's conversation recording, through a snoop on the caller's channel
    (both directions: what the caller says and hears, the agent's voice). A snoop,
    not the bridge's own recording: that needs chan_bridge_media, which a minimal
    PBX (ours: scripts/asterisk22/modules.txt) does not build."""

    def __init__(
        self, rt: LegRuntime[Any], policy: RecordingPolicy, sink: VoicemailSink, agent_id: str
    ) -> None:
        self.rt = rt
        self.policy = policy
        self.sink = sink
        self.agent_id = agent_id
        self.name = conversation_recording_name_for(rt.call_id)
        self.snoop_id: str | None = None  # the snoop channel, once asked for
        self.active = False  # recording now (started, not excluded)
        self._done = False  # started and ended, refused, or excluded: nothing more to do
        self._finished: RecordingFinished | None = None
        self._stop_keys = KeySequence(policy.stop_keys)

    @property
    def needs_dtmf(self) -> bool:
        """Whether the bridge must raise the agent's key presses (mixing,dtmf_events)."""
        return self.policy.agent_can_stop

    async def start(self) -> None:
        """Ask for the snoop; the recording starts when it enters the application."""
        rt = self.rt
        snoop_id = rt.new_id("snoop")
        rt.own(self.name)
        try:
            snooping = await rt.port.snoop(rt.caller_channel_id, snoop_id)
        except TelephonyError as exc:
            self._refused(f"PBX refused: {exc}")
            return
        if not snooping:
            self._refused("the caller's channel is already gone")
            return
        self.snoop_id = snoop_id

    async def _record(self) -> None:
        rt = self.rt
        assert self.snoop_id is not None
        try:
            started = await rt.port.record_conversation(
                self.snoop_id, self.name, max_duration_s=MAX_RECORDING_S
            )
        except TelephonyError as exc:
            started = False
            self._refused(f"PBX refused: {exc}")
        else:
            if not started:
                self._refused("the snoop channel is already gone")
        if not started:
            await quietly(rt.port.hangup(self.snoop_id))
            return
        self.active = True
        _emit(rt, RecordingStep.STARTED, self.name, detail=f"purpose: {self.policy.purpose}")

    def _refused(self, why: str) -> None:
        log.error("call %s: not recorded: %s", self.rt.call_id[:8], why)
        self._done = True
        _emit(self.rt, RecordingStep.NOT_STARTED, self.name, detail=why[:300])

    async def on_event(self, event: TelephonyEvent) -> None:
        """Every event of the conversation: the snoop entering, the agent's stop keys,
        the file's end."""
        if isinstance(event, ChannelEntered):
            if event.channel.id == self.snoop_id and not (self.active or self._done):
                await self._record()
        elif isinstance(event, RecordingFinished) and event.name == self.name:
            self._finished = event
        elif (
            self.active
            and self.policy.agent_can_stop
            and isinstance(event, DtmfReceived)
            and event.channel_id == self.agent_id
            and self._stop_keys.feed(event.digit)
        ):
            await self._exclude()

    async def _exclude(self) -> None:
        """The agent's opt-out: stop, and keep nothing of it (CNIL: the right to object)."""
        rt = self.rt
        self.active, self._done = False, True
        try:
            discarded = await rt.port.discard_recording(self.name)
        except TelephonyError as exc:
            discarded = False
            log.error("call %s: could not discard the recording: %s", rt.call_id[:8], exc)
        if self.snoop_id is not None:
            await quietly(rt.port.hangup(self.snoop_id))
        # Whatever the PBX already wrote under this name goes too (a stored copy).
        await quietly(rt.port.delete_recording(self.name))
        how = "stopped and discarded" if discarded else "already stopped; its file deleted"
        log.info("call %s: recording excluded by the agent", rt.call_id[:8])
        _emit(
            rt,
            RecordingStep.EXCLUDED,
            self.name,
            detail=f"the agent pressed {self.policy.stop_keys}: recording {how}",
        )

    async def finish(self) -> None:
        """After the conversation: end the snoop, fetch the file, store it, free the
        PBX's copy."""
        rt = self.rt
        if self.snoop_id is not None:
            await quietly(rt.port.hangup(self.snoop_id))  # ends the recording, if any
        if self._done:
            return
        if not self.active:
            self._refused("the conversation ended before the recording started")
            return
        self.active, self._done = False, True
        deadline = rt.deadline_in(FINISH_GRACE_S)
        while self._finished is None:
            event = await rt.next_event(deadline)
            if event is None:
                break
            await self.on_event(event)
        await self._store()

    async def _store(self) -> None:
        rt = self.rt
        try:
            data = await rt.port.fetch_recording(self.name)
        except TelephonyError as exc:
            log.error("call %s: cannot fetch %s: %s", rt.call_id[:8], self.name, exc)
            data = None
        if not data:
            why = self._finished.cause if self._finished and self._finished.cause else ""
            detail = f"the PBX stored no file for {self.name} {why}".strip()
            _emit(rt, RecordingStep.FAILED, self.name, detail=detail)
            return
        at = rt.clock()
        try:
            path = self.sink.save(stored_name(rt.call_id), data, at)
        except OSError as exc:
            # Kept on the PBX under its name (derivable from the call id) for an admin.
            log.error(
                "call %s: recording kept on the PBX as %s: %s", rt.call_id[:8], self.name, exc
            )
            detail = f"our storage refused it ({exc}): kept on the PBX as {self.name}"
            _emit(rt, RecordingStep.FAILED, self.name, detail=detail[:300])
            return
        await quietly(rt.port.delete_recording(self.name))
        seconds = round(wav_seconds(data), 2)
        _emit(rt, RecordingStep.STORED, self.name, path=path, seconds=seconds)


def _emit(
    rt: LegRuntime[Any],
    step: RecordingStep,
    name: str | None = None,
    *,
    path: str | None = None,
    seconds: float | None = None,
    detail: str | None = None,
) -> None:
    rt.audit.emit(
        ConversationRecording(
            call_id=rt.call_id,
            step=step,
            at=rt.clock(),
            name=name,
            path=path,
            seconds=seconds,
            detail=detail,
        )
    )
