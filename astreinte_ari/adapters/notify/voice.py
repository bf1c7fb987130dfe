"""Voice-call alert over ARI: ring the person, say what happened, 1 = ack, 2 = call back.

The message (line, caller's number read digit by digit with the project's own
prompts, "press 1") is played twice at most; a key counts whenever it is
pressed. Either key acknowledges the alert at once (reminders stop while the
person is still on the line); 2 then calls the caller back through the trunk
and bridges the two; that leg is audited as a "call-back" hop of the original
call. Nothing is dialled until the service is connected to the PBX and has
resynced (a step due during a restart waits for it instead of failing).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from astreinte_ari.alerting.ports import (
    Acknowledge,
    AlertMessage,
    Delivery,
    NotifyError,
    Recipient,
)
from astreinte_ari.callflow.audit_events import HopEnded, HopProgress, HopStarted
from astreinte_ari.callflow.identity import new_object_id
from astreinte_ari.callflow.outcomes import HopOutcome
from astreinte_ari.callflow.runtime import AuditSink, SoundLibrary
from astreinte_ari.callflow.telephony import (
    ChannelEntered,
    ChannelHungUp,
    ChannelLeft,
    DtmfReceived,
    PlaybackFinished,
    TelephonyError,
    TelephonyEvent,
    TelephonyPort,
)

log = logging.getLogger(__name__)
_DIGITS = frozenset("0123456789*#ABCD")
_KEY_WAIT_S = 8.0
_TALK_MAX_S = 3600.0
READY_WAIT_S = 60.0  # after a restart, ARI is usually back within seconds
RETRY_AFTER_S = 30.0

PROMPTS = {
    "missed_call": "astreinte-alert-missed",
    "shift_start": "astreinte-shift-start",
    "shift_cover": "astreinte-shift-start",
    "shift_missed": "astreinte-alert-missed",
}
# Every prompt a voice alert may play (doctor checks they are installed).
VOICE_PROMPTS = frozenset(
    {
        *PROMPTS.values(),
        "astreinte-alert-acked",
        "astreinte-alert-press-1-ack",
        "astreinte-alert-press-2-callback",
        *(f"astreinte-digit-{d}" for d in range(10)),
    }
)


class SessionLike:
    events: asyncio.Queue[TelephonyEvent]

    def bind(self, object_id: str) -> None: ...
    def close(self) -> None: ...


class VoiceNotifier:
    channel = "voice"

    def __init__(
        self,
        *,
        port: TelephonyPort,
        open_session: Callable[[], SessionLike],
        sounds: SoundLibrary,
        audit: AuditSink,
        caller_id: str,
        ring_timeout_s: int,
        next_hop_seq: Callable[[str], int],
        clock: Callable[[], datetime],
        telephony_ready: Callable[[float], Awaitable[bool]] | None = None,
    ) -> None:
        self.port = port
        self.open_session = open_session
        self.sounds = sounds
        self.audit = audit
        self.caller_id = caller_id
        self.ring_timeout_s = ring_timeout_s
        self.next_hop_seq = next_hop_seq
        self.clock = clock
        self.telephony_ready = telephony_ready

    async def send(
        self, to: Recipient, message: AlertMessage, acknowledge: Acknowledge | None = None
    ) -> Delivery:
        if self.telephony_ready is not None and not await self.telephony_ready(READY_WAIT_S):
            raise NotifyError(
                f"voice call to {to.mobile}: the PBX is not connected yet",
                retry_after=RETRY_AFTER_S,
            )
        session = self.open_session()
        channel_id = new_object_id("alert")
        session.bind(channel_id)
        try:
            return await self._call(session, channel_id, to, message, acknowledge)
        finally:
            session.close()

    async def _call(
        self,
        session: SessionLike,
        channel_id: str,
        to: Recipient,
        message: AlertMessage,
        acknowledge: Acknowledge | None,
    ) -> Delivery:
        try:
            await self.port.originate(
                channel_id=channel_id,
                number=to.mobile,
                app_args=("alert", message.alert_id),
                caller_id=self.caller_id,
                timeout_s=self.ring_timeout_s,
            )
        except TelephonyError as exc:
            raise NotifyError(f"voice call to {to.mobile} refused: {exc}") from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ring_timeout_s + 3
        while True:
            event = await _next(session, deadline)
            if event is None:
                await self.port.hangup(channel_id)
                raise NotifyError(f"voice call to {to.mobile}: no answer")
            if isinstance(event, ChannelHungUp) and event.channel_id == channel_id:
                raise NotifyError(
                    f"voice call to {to.mobile}: cause {event.cause} {event.cause_text}"
                )
            if isinstance(event, ChannelEntered) and event.channel.id == channel_id:
                break
        try:
            return await self._converse(session, channel_id, to, message, acknowledge)
        finally:
            await self.port.hangup(channel_id)

    def _playlist(self, message: AlertMessage) -> list[str]:
        lang = message.language
        items = [self.sounds.uri(PROMPTS.get(message.kind, "astreinte-alert-missed"), lang)]
        if message.kind == "missed_call" and message.caller_number:
            # Our own digit prompts: Asterisk's `digits:` needs its core sounds in the
            # line's language, which a PBX may not have (French often missing).
            items.extend(
                self.sounds.uri(f"astreinte-digit-{d}", lang)
                for d in message.caller_number
                if d.isdigit()
            )
        if message.kind != "shift_start":
            items.append(self.sounds.uri("astreinte-alert-press-1-ack", lang))
        if message.can_call_back:
            items.append(self.sounds.uri("astreinte-alert-press-2-callback", lang))
        return items

    async def _converse(
        self,
        session: SessionLike,
        channel_id: str,
        to: Recipient,
        message: AlertMessage,
        acknowledge: Acknowledge | None,
    ) -> Delivery:
        loop = asyncio.get_running_loop()
        queue = self._playlist(message) * 2  # the message, repeated once
        playback: str | None = None
        deadline: float | None = None
        pressed = ""  # keys that did not count, for the trail (untrusted: bounded, checked)
        while True:
            if playback is None and queue:
                playback = new_object_id("pb")
                session.bind(playback)
                if not await self.port.play(channel_id, queue.pop(0), playback, message.language):
                    raise NotifyError("voice alert: the person hung up")
                if not queue:
                    deadline = None
            if playback is None and not queue and deadline is None:
                deadline = loop.time() + _KEY_WAIT_S
            event = await _next(session, deadline)
            if event is None:
                what = f"only {pressed!r}, which is not offered" if pressed else "no key"
                raise NotifyError(f"voice alert answered by {to.person_id}: {what} pressed")
            if isinstance(event, PlaybackFinished) and event.playback_id == playback:
                playback = None
            elif isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id == channel_id:
                raise NotifyError(f"voice alert: {to.person_id} hung up without a key")
            elif isinstance(event, DtmfReceived) and event.channel_id == channel_id:
                digit = event.digit  # untrusted: compared only
                if digit not in ("1", "2") or (digit == "2" and not message.can_call_back):
                    pressed = (pressed + (digit if digit in _DIGITS else "?"))[-8:]
                    continue
                if playback is not None:
                    await self.port.stop_playback(playback)
                if digit == "1":
                    await _acknowledged(acknowledge, "voice-dtmf")
                    await self._say(session, channel_id, "astreinte-alert-acked", message.language)
                    return Delivery(
                        f"voice call answered by {to.mobile}, acknowledged (1)", acked=True
                    )
                # The person is handling it from now on: no reminder during the call-back.
                await _acknowledged(acknowledge, "voice-callback")
                detail = await self._call_back(session, channel_id, to, message)
                return Delivery(detail, acked=True, called_back=True)

    async def _say(self, session: SessionLike, channel_id: str, sound: str, lang: str) -> None:
        playback = new_object_id("pb")
        session.bind(playback)
        if not await self.port.play(channel_id, self.sounds.uri(sound, lang), playback, lang):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (event := await _next(session, deadline)) is not None:
            if isinstance(event, PlaybackFinished) and event.playback_id == playback:
                return

    async def _call_back(
        self, session: SessionLike, agent_id: str, to: Recipient, message: AlertMessage
    ) -> str:
        """Ring the original caller and bridge them with the agent (audited as a hop)."""
        assert message.call_id is not None and message.caller_number is not None
        number = message.caller_number
        hop_id = str(uuid.uuid4())
        seq = self.next_hop_seq(message.call_id)
        self.audit.emit(
            HopStarted(
                call_id=message.call_id,
                hop_id=hop_id,
                seq=seq,
                label="call-back",
                person_id=to.person_id,
                person_name=to.name,
                number=number,
                at=self.clock(),
            )
        )
        back_id = new_object_id("alert-cb")
        session.bind(back_id)
        ringback = new_object_id("pb")
        session.bind(ringback)
        await self.port.play(agent_id, "tone:ring", ringback)
        try:
            await self.port.originate(
                channel_id=back_id,
                number=number,
                app_args=("callback", message.alert_id),
                caller_id=self.caller_id,
                timeout_s=self.ring_timeout_s,
            )
        except TelephonyError as exc:
            outcome = HopOutcome.REFUSED if "allow" in str(exc) else HopOutcome.FAILED
            self._hop_end(hop_id, outcome, None, str(exc)[:200])
            return f"call-back to {number} refused: {exc}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ring_timeout_s + 3
        while True:
            event = await _next(session, deadline)
            if event is None:
                await self.port.hangup(back_id)
                self._hop_end(hop_id, HopOutcome.NO_ANSWER, 0, "ring timeout")
                return f"call-back to {number}: no answer"
            if isinstance(event, ChannelHungUp) and event.channel_id == back_id:
                self._hop_end(hop_id, HopOutcome.UNREACHABLE, event.cause, event.cause_text)
                return f"call-back to {number}: cause {event.cause}"
            if isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id == agent_id:
                await self.port.hangup(back_id)
                self._hop_end(hop_id, HopOutcome.CANCELLED, None, "agent hung up")
                return "call-back cancelled: the agent hung up"
            if isinstance(event, ChannelEntered) and event.channel.id == back_id:
                break
        self.audit.emit(HopProgress(hop_id=hop_id, event="answered", at=self.clock()))
        await self.port.stop_playback(ringback)
        bridge_id = new_object_id("bridge")
        await self.port.create_bridge(bridge_id)
        try:
            await self.port.add_to_bridge(bridge_id, (agent_id, back_id))
            started = loop.time()
            deadline = started + _TALK_MAX_S
            while (event := await _next(session, deadline)) is not None:
                if isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id in (
                    agent_id,
                    back_id,
                ):
                    break
            talk = round(loop.time() - started, 1)
        finally:
            await self.port.destroy_bridge(bridge_id)
            await self.port.hangup(back_id)
        self._hop_end(hop_id, HopOutcome.CONNECTED, None, f"called back, talked {talk}s")
        return f"called the caller back and bridged ({talk}s)"

    def _hop_end(self, hop_id: str, outcome: HopOutcome, cause: int | None, text: str) -> None:
        self.audit.emit(
            HopEnded(
                hop_id=hop_id,
                outcome=outcome,
                at=self.clock(),
                cause_code=cause,
                cause_text=text,
                dtmf="2",
            )
        )


async def _acknowledged(acknowledge: Acknowledge | None, how: str) -> None:
    if acknowledge is not None:
        try:
            await acknowledge(how)
        except Exception:  # the call goes on; the engine acknowledges at the end too
            log.exception("voice alert: immediate acknowledgement failed")


async def _next(session: SessionLike, deadline: float | None) -> TelephonyEvent | None:
    loop = asyncio.get_running_loop()
    timeout = None if deadline is None else max(0.0, deadline - loop.time())
    try:
        return await asyncio.wait_for(session.events.get(), timeout)
    except TimeoutError:
        return None
