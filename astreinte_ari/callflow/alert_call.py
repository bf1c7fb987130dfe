"""An outbound alert call: ring a person, read the alert, 1 = acknowledge, 2 = call back.

It runs on the same runtime as an inbound call (LegRuntime: one event queue,
one audited state machine, ring() for every leg). The person is the runtime's
"caller": the party the call exists for. The message is read twice at most and
a key counts whenever it is pressed. Either key acknowledges at once (reminders
stop while the person is still on the line); 2 then rings the original caller
and bridges the two, audited as a "call-back" hop of the original call.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from astreinte_ari.callflow.audit_events import HopEnded, HopProgress, HopStarted
from astreinte_ari.callflow.conversation import quietly, until_hangup
from astreinte_ari.callflow.outcomes import HopOutcome
from astreinte_ari.callflow.ringing import Unanswered, ring
from astreinte_ari.callflow.runtime import CallerGone, LegRuntime, StateMachine
from astreinte_ari.callflow.telephony import DtmfReceived, PlaybackFinished
from astreinte_ari.routing.plan import DialTarget

log = logging.getLogger("astreinte_ari.call")

KEY_WAIT_S = 8.0  # after the second reading, before giving up
_SAY_MAX_S = 10.0
_SHOWN_KEYS = frozenset("0123456789*#ABCD")  # untrusted input: anything else shows as "?"


class AlertCallState(enum.StrEnum):
    RINGING = "ringing"
    READING = "reading"  # answered: the message is read, a key is awaited
    ACKNOWLEDGED = "acknowledged"  # 1 pressed: "thank you" is played
    CALLING_BACK = "calling_back"  # 2 pressed: the original caller is rung
    BRIDGED = "bridged"  # the person and the caller talk
    ENDED = "ended"


S = AlertCallState
ALERT_CALL_TRANSITIONS: dict[AlertCallState, frozenset[AlertCallState]] = {
    S.RINGING: frozenset({S.READING, S.ENDED}),
    S.READING: frozenset({S.ACKNOWLEDGED, S.CALLING_BACK, S.ENDED}),
    S.ACKNOWLEDGED: frozenset({S.ENDED}),
    S.CALLING_BACK: frozenset({S.BRIDGED, S.ENDED}),
    S.BRIDGED: frozenset({S.ENDED}),
    S.ENDED: frozenset(),
}


def alert_call_machine(
    record: Callable[[AlertCallState, AlertCallState, str], None],
) -> StateMachine[AlertCallState]:
    """An alert call's transitions go to the alert's own history (`record`)."""
    return StateMachine(
        S.RINGING,
        ALERT_CALL_TRANSITIONS,
        lambda _call_id, _seq, from_state, to_state, why: record(from_state, to_state, why),
    )


@dataclass(frozen=True, slots=True)
class CallBack:
    """Who to ring on "2": the caller of an on-call call, recorded as a hop of it."""

    call_id: str
    number: str  # the caller's number, as the trail shows it
    next_hop_seq: Callable[[], int]  # asked when the key is pressed, not before
    # What to dial, resolved through the trunk when the alert call starts; None when
    # the configuration does not allow that number (`refused` says why): never dialled.
    target: DialTarget | None = None
    refused: str = ""


@dataclass(frozen=True, slots=True)
class AlertCallSpec:
    alert_id: str
    person_id: str
    person_name: str
    number: str  # the person's mobile, as the texts show it
    target: DialTarget  # what to dial, resolved when the alert call starts
    prompts: tuple[str, ...]  # sound names of the message, in order
    caller_id: str | None
    ring_timeout_s: int
    call_back: CallBack | None = None  # None: "2" is not offered


@dataclass(frozen=True, slots=True)
class AlertCallResult:
    detail: str
    acked: bool
    called_back: bool = False


class AlertCallFailed(Exception):
    """Not answered, no valid key, or the person hung up first: the alert stays open."""


Acknowledge = Callable[[str], Awaitable[None]]


async def run_alert_call(
    rt: LegRuntime[AlertCallState], spec: AlertCallSpec, acknowledge: Acknowledge | None
) -> AlertCallResult:
    """The whole call; the person's leg is rt.caller_channel_id. Raises AlertCallFailed."""
    try:
        return await _run(rt, spec, acknowledge)
    except CallerGone:
        reason = "hung up without a key" if rt.state == S.READING else "hung up"
        _end(rt, f"{spec.person_id} {reason}")
        raise AlertCallFailed(f"voice alert: {spec.person_id} {reason}") from None
    finally:
        if rt.state != S.ENDED:  # a bug or a cancellation: the trail still says so
            _end(rt, "interrupted")
        await quietly(rt.port.hangup(rt.caller_channel_id))


async def _run(
    rt: LegRuntime[AlertCallState], spec: AlertCallSpec, acknowledge: Acknowledge | None
) -> AlertCallResult:
    rt.caller_may_leave = True  # while ringing, "the person's leg ended" means "not answered"
    unanswered = await ring(
        rt,
        rt.caller_channel_id,
        target=spec.target,
        app_args=("alert", spec.alert_id),
        caller_id=spec.caller_id,
        timeout_s=spec.ring_timeout_s,
    )
    if unanswered is not None:
        _end(rt, unanswered.text)
        raise AlertCallFailed(f"voice call to {spec.number}: {_in_words(unanswered)}")
    rt.caller_may_leave = False
    rt.transition(S.READING, f"answered by {spec.person_id}")
    key = await _read_until_key(rt, spec)
    if key == "1":
        await _acknowledged(acknowledge, "voice-dtmf")
        rt.transition(S.ACKNOWLEDGED, "1 pressed")
        rt.caller_may_leave = True  # acknowledged: hanging up on the thanks is fine
        await rt.play_and_wait(rt.caller_channel_id, "astreinte-alert-acked", max_s=_SAY_MAX_S)
        _end(rt, "acknowledged")
        return AlertCallResult(f"voice call answered by {spec.number}, acknowledged (1)", True)
    # The person is handling it from now on: no reminder during the call-back.
    await _acknowledged(acknowledge, "voice-callback")
    assert spec.call_back is not None  # "2" counts only when a call-back is possible
    rt.transition(S.CALLING_BACK, f"2 pressed: calling {spec.call_back.number}")
    detail = await _call_back(rt, spec, spec.call_back)
    _end(rt, detail)
    return AlertCallResult(detail, True, called_back=True)


async def _read_until_key(rt: LegRuntime[AlertCallState], spec: AlertCallSpec) -> str:
    """Read the message twice; the first offered key pressed, at any moment."""
    offered = {"1", "2"} if spec.call_back is not None else {"1"}
    queue = list(spec.prompts) * 2  # the message, repeated once
    playback: str | None = None
    deadline: float | None = None
    pressed = ""  # keys that did not count, for the trail (untrusted: bounded, masked)
    while True:
        if playback is None and queue:
            playback = rt.new_id("pb")
            uri = rt.sounds.uri(queue.pop(0), rt.language)
            await rt.port.play(rt.caller_channel_id, uri, playback, rt.language)
        if playback is None and not queue and deadline is None:
            deadline = rt.deadline_in(KEY_WAIT_S)
        event = await rt.next_event(deadline)
        if event is None:
            what = f"only {pressed!r}, which is not offered" if pressed else "no key"
            _end(rt, f"{what} pressed")
            raise AlertCallFailed(f"voice alert answered by {spec.person_id}: {what} pressed")
        if isinstance(event, PlaybackFinished) and event.playback_id == playback:
            playback = None
        elif isinstance(event, DtmfReceived) and event.channel_id == rt.caller_channel_id:
            digit = event.digit  # untrusted: compared only
            if digit in offered:
                if playback is not None:  # may end by itself meanwhile: not an error
                    await quietly(rt.port.stop_playback(playback))
                return digit
            pressed = (pressed + (digit if digit in _SHOWN_KEYS else "?"))[-8:]


async def _call_back(rt: LegRuntime[AlertCallState], spec: AlertCallSpec, back: CallBack) -> str:
    """Ring the original caller and bridge them with the person (audited as a hop)."""
    hop_id = str(uuid.uuid4())
    rt.audit.emit(
        HopStarted(
            call_id=back.call_id,
            hop_id=hop_id,
            seq=back.next_hop_seq(),
            label="call-back",
            person_id=spec.person_id,
            person_name=spec.person_name,
            number=back.number,
            at=rt.clock(),
            target_kind=None if back.target is None else back.target.kind.value,
            target=None if back.target is None else back.target.dial_string,
        )
    )
    if back.target is None:  # outside the allow-list: never dialled
        _hop_end(rt, hop_id, HopOutcome.REFUSED, None, back.refused[:200])
        return f"call-back to {back.number}: refused ({back.refused})"
    back_id = rt.new_id("alert-cb")  # identity.CALLBACK_LEG
    ringback = rt.new_id("pb")
    await rt.port.play(rt.caller_channel_id, "tone:ring", ringback)
    try:
        unanswered = await ring(
            rt,
            back_id,
            target=back.target,
            app_args=("callback", spec.alert_id),
            caller_id=spec.caller_id,
            timeout_s=spec.ring_timeout_s,
        )
    except CallerGone:
        await quietly(rt.port.hangup(back_id))
        _hop_end(rt, hop_id, HopOutcome.CANCELLED, None, "agent hung up")
        _end(rt, "the person hung up during the call-back")
        return "call-back cancelled: the agent hung up"
    if unanswered is not None:
        _hop_end(rt, hop_id, unanswered.outcome, unanswered.cause, unanswered.text)
        return f"call-back to {back.number}: {_in_words(unanswered)}"
    rt.audit.emit(HopProgress(hop_id=hop_id, event="answered", at=rt.clock()))
    await quietly(rt.port.stop_playback(ringback))
    bridge_id = rt.new_id("bridge")
    rt.caller_may_leave = True  # from here on, either party hanging up ends the call
    await rt.port.create_bridge(bridge_id)
    started = rt.deadline_in(0)
    try:
        await rt.port.add_to_bridge(bridge_id, (rt.caller_channel_id, back_id))
    except BaseException:
        await quietly(rt.port.destroy_bridge(bridge_id))
        await quietly(rt.port.hangup(back_id))
        raise
    rt.transition(S.BRIDGED, f"{back.number} answered")
    ending = await until_hangup(rt, back_id, bridge_id)
    talk = round(rt.deadline_in(0) - started, 1)
    who = "the person" if ending.leg == "caller" else "the caller"
    _hop_end(rt, hop_id, HopOutcome.CONNECTED, None, f"called back, talked {talk}s")
    return f"called the caller back and bridged ({talk}s, {who} hung up first)"


def _in_words(unanswered: Unanswered) -> str:
    """ "busy (User busy)", "unreachable: no user responding", "no answer"..."""
    outcome = unanswered.outcome.value.replace("_", " ")
    if unanswered.text.startswith(outcome):
        return unanswered.text
    return f"{outcome} ({unanswered.text})"


def _hop_end(
    rt: LegRuntime[AlertCallState],
    hop_id: str,
    outcome: HopOutcome,
    cause: int | None,
    text: str,
) -> None:
    rt.audit.emit(
        HopEnded(
            hop_id=hop_id,
            outcome=outcome,
            at=rt.clock(),
            cause_code=cause,
            cause_text=text,
            dtmf="2",
        )
    )


def _end(rt: LegRuntime[AlertCallState], why: str) -> None:
    if rt.state != S.ENDED:
        rt.transition(S.ENDED, why)


async def _acknowledged(acknowledge: Acknowledge | None, how: str) -> None:
    if acknowledge is not None:
        try:
            await acknowledge(how)
        except Exception:  # the call goes on; the engine acknowledges at the end too
            log.exception("voice alert: immediate acknowledgement failed")
