"""Voicemail: greeting, beep, recording through ARI, copy into our storage."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from astreinte_ari.callflow.conversation import quietly
from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.callflow.runtime import CallRuntime
from astreinte_ari.callflow.telephony import RecordingFinished, TelephonyError

log = logging.getLogger("astreinte_ari.call")

_WAV_HEADER = 44
_BYTES_PER_SECOND = 16000  # Asterisk "wav": 8 kHz, 16-bit mono
MIN_MESSAGE_S = 0.5  # shorter than this is a hangup at the beep, not a message
_CALLER_GONE_GRACE_S = 5.0


class VoicemailSink(Protocol):
    def save(self, call_id: str, data: bytes, at: datetime) -> str:
        """Store one message; returns where it is (path or URL). Raises OSError when
        the storage refuses it (disk full...)."""
        ...

    def path_for(self, call_id: str, at: datetime) -> str:
        """Where `save` puts (or will put, once it can) the message of this call."""
        ...


@dataclass(frozen=True, slots=True)
class VoicemailResult:
    outcome: CallOutcome
    path: str | None
    seconds: float | None
    detail: str
    at: datetime | None = None  # when it ended, if not now (the caller left at the beep)


def wav_seconds(data: bytes) -> float:
    return max(0.0, (len(data) - _WAV_HEADER) / _BYTES_PER_SECOND)


async def take_voicemail(rt: CallRuntime, sink: VoicemailSink, reason: str) -> VoicemailResult:
    plan = rt.plan
    rt.transition(CallState.VOICEMAIL_GREETING, reason)
    await rt.play_and_wait(rt.caller_channel_id, plan.voicemail_greeting)
    name = rt.recording_name()
    rt.transition(CallState.RECORDING, f"recording {name}")
    # From here a hangup is how most callers finish their message.
    rt.caller_may_leave = True
    started = await rt.port.record(
        rt.caller_channel_id,
        name,
        max_duration_s=plan.voicemail.max_duration_s,
        max_silence_s=plan.voicemail.max_silence_s,
        terminate_on=plan.voicemail.terminate_on,
    )
    if not started:
        at = rt.caller_left_at
        return VoicemailResult(CallOutcome.ABANDONED, None, None, "abandoned at voicemail beep", at)
    deadline = rt.deadline_in(plan.voicemail.max_duration_s + 10)
    finished: RecordingFinished | None = None
    while finished is None:
        event = await rt.next_event(deadline)
        if event is None:
            break
        if isinstance(event, RecordingFinished) and event.name == name:
            finished = event
        elif not rt.caller_present:
            # Asterisk closes the file on hangup; give it a moment to say so.
            deadline = min(deadline, rt.deadline_in(_CALLER_GONE_GRACE_S))
    data = await _fetch(rt, name)
    seconds = wav_seconds(data) if data else 0.0
    log.debug("call %s: %r, %.1f s stored", rt.call_id[:8], finished, seconds)
    if finished is not None and finished.failed:
        # Not "no message left": the caller may have spoken and the PBX failed to
        # write it (its spool full...). Whatever it kept stays there.
        log.error("call %s: recording failed: %s", rt.call_id[:8], finished.cause)
        await _goodbye(rt, None)
        why = finished.cause or "no cause given"
        return VoicemailResult(
            CallOutcome.FAILED,
            None,
            seconds,
            f"voicemail: the PBX could not record the message ({why}; see its log)",
        )
    if not data:
        # Not even a WAV header: Asterisk could not create or write the file (its
        # spool full or failing). Whatever the caller said is lost, and that is the
        # PBX's failure, not "no message left" (a silent caller leaves a header).
        log.error("call %s: the PBX stored no file for %s", rt.call_id[:8], name)
        await _goodbye(rt, None)
        return VoicemailResult(
            CallOutcome.FAILED,
            None,
            None,
            "voicemail: the PBX could not record the message (no file stored: its spool "
            "full or failing? see its log)",
        )
    if seconds < MIN_MESSAGE_S:
        await _goodbye(rt, None)
        return VoicemailResult(CallOutcome.VOICEMAIL_EMPTY, None, seconds, "no message left")
    at = rt.clock()
    try:
        path = sink.save(rt.call_id, data, at)
    except OSError as exc:
        # Our storage refused it (disk full...): the message stays on the PBX under
        # its name and the trail points to where it goes once storage accepts it
        # (a background job retries: adapters/store/voicemail_files.py).
        path = sink.path_for(rt.call_id, at)
        log.error("call %s: voicemail kept on the PBX as %s: %s", rt.call_id[:8], name, exc)
        await _goodbye(rt, plan.goodbye)
        detail = f"message recorded, kept on the PBX as {name} until storage accepts it ({exc})"
        return VoicemailResult(CallOutcome.VOICEMAIL, path, round(seconds, 2), detail[:300])
    # Our copy is the record; keep the PBX spool from growing.
    await quietly(rt.port.delete_recording(name))
    await _goodbye(rt, plan.goodbye)
    return VoicemailResult(CallOutcome.VOICEMAIL, path, round(seconds, 2), "message recorded")


async def _fetch(rt: CallRuntime, name: str) -> bytes | None:
    try:
        return await rt.port.fetch_recording(name)
    except TelephonyError as exc:
        log.error("call %s: cannot fetch recording %s: %s", rt.call_id[:8], name, exc)
        return None


async def _goodbye(rt: CallRuntime, sound: str | None) -> None:
    """The outcome is settled: a PBX error here must not change it."""
    if rt.caller_present and sound:
        await quietly(rt.play_and_wait(rt.caller_channel_id, sound, max_s=30))
    if rt.caller_present:
        await quietly(rt.port.hangup(rt.caller_channel_id))
