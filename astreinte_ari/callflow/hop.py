"""One hop of the cascade: ring one person, then make them press the accept key."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from astreinte_ari.callflow.audit_events import HopEnded, HopProgress, HopStarted
from astreinte_ari.callflow.conversation import quietly
from astreinte_ari.callflow.identity import agent_channel_id
from astreinte_ari.callflow.outcomes import CallState, HopOutcome
from astreinte_ari.callflow.ringing import ring
from astreinte_ari.callflow.runtime import CallerGone, CallRuntime
from astreinte_ari.callflow.telephony import (
    ChannelHungUp,
    ChannelLeft,
    DtmfReceived,
    PlaybackFinished,
    Reconnected,
)
from astreinte_ari.routing.plan import Hop

log = logging.getLogger("astreinte_ari.call")

VALID_DTMF = frozenset("0123456789*#ABCD")

_PROMPT_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class HopResult:
    hop_id: str
    outcome: HopOutcome
    agent_channel_id: str | None = None  # the live agent leg when accepted/connected
    # The "press 1" prompt still playing when the agent accepted: the call flow stops
    # it together with the bridge setup (concurrent round trips, not one after another).
    prompt_playback_id: str | None = None


class HopAttempt:
    def __init__(self, rt: CallRuntime, seq: int, hop: Hop) -> None:
        self.rt = rt
        self.seq = seq
        self.hop = hop
        hop_uuid = uuid.uuid4()
        self.hop_id = str(hop_uuid)
        # Derived from the hop id: the PBX's records of this leg (CEL) can be found
        # from the trail alone, e.g. when the service was away when it ended.
        self.agent_id = agent_channel_id(self.hop_id)
        rt.own(self.agent_id)
        self.dtmf: str | None = None
        self.started = False  # on the trail (HopStarted written): a caller who left
        # before that left during the announcement, not during this hop
        # Whether the caller still hears the announcement (early dial): the trail says so.
        self.during_announcement: Callable[[], bool] = lambda: False

    def describe(self) -> str:
        return f"hop {self.seq}: {self.hop.label} ({self.hop.person_id})"

    async def run(self) -> HopResult:
        rt, hop = self.rt, self.hop
        await rt.ensure_caller_present()  # never ring anyone for a caller who left
        rt.audit.emit(
            HopStarted(
                call_id=rt.call_id,
                hop_id=self.hop_id,
                seq=self.seq,
                label=hop.label,
                person_id=hop.person_id,
                person_name=hop.person_name,
                number=hop.number,
                at=rt.clock(),
                target_kind=hop.target.kind.value,
                target=hop.target.dial_string,
            )
        )
        self.started = True
        early = " (early dial: during the announcement)" if self.during_announcement() else ""
        rt.transition(CallState.DIALING, f"{self.describe()} ringing {hop.number}{early}")
        try:
            unanswered = await ring(
                rt,
                self.agent_id,
                target=hop.target,
                app_args=("agent", rt.call_id, self.hop_id),
                caller_id=rt.plan.agent_caller_id,
                timeout_s=hop.ring_timeout_s,
                on_ringing=lambda: self._progress("ringing"),
            )
            if unanswered is not None:
                return self._end(unanswered.outcome, unanswered.cause, unanswered.text)
            if not hop.require_accept:
                self._progress("answered")
                return HopResult(self.hop_id, HopOutcome.CONNECTED, self.agent_id)
            return await self._ask_to_accept()
        except CallerGone:
            # Left during the announcement while an early-dialled agent rings: as normal
            # as any hangup race; the leg is cancelled at once and the trail says when.
            during = " during the announcement" if self.during_announcement() else ""
            await quietly(rt.port.hangup(self.agent_id))
            self._end(HopOutcome.CANCELLED, None, f"caller hung up{during}")
            raise

    def _progress(self, event: str) -> None:
        self.rt.audit.emit(HopProgress(hop_id=self.hop_id, event=event, at=self.rt.clock()))

    def _end(self, outcome: HopOutcome, cause: int | None, cause_text: str | None) -> HopResult:
        self.rt.audit.emit(
            HopEnded(
                hop_id=self.hop_id,
                outcome=outcome,
                at=self.rt.clock(),
                cause_code=cause,
                cause_text=cause_text,
                dtmf=self.dtmf,
            )
        )
        return HopResult(self.hop_id, outcome)

    async def _ask_to_accept(self) -> HopResult:
        rt, plan = self.rt, self.rt.plan
        self._progress("answered")
        rt.transition(CallState.AGENT_PROMPT, f"{self.describe()} answered, asking for key")
        all_prompts = [p for p in (plan.line_prompt, plan.accept_prompt) if p]
        prompts = list(all_prompts)
        playback_id = await self._play_next(prompts)
        deadline = rt.deadline_in(_PROMPT_MAX_S)
        while True:
            event = await rt.next_event(deadline)
            if event is None:
                await quietly(rt.port.hangup(self.agent_id))
                return self._end(HopOutcome.NOT_ACCEPTED, None, "no key pressed")
            if isinstance(event, PlaybackFinished) and event.playback_id == playback_id:
                playback_id = await self._play_next(prompts)
                if playback_id is None:  # prompts done: the accept window starts
                    deadline = rt.deadline_in(plan.accept_timeout_s)
            elif isinstance(event, Reconnected):
                # A key pressed during the gap is lost: ask again, never "not accepted"
                # for a key this service could not hear.
                if playback_id is not None:
                    await rt.port.stop_playback(playback_id)
                log.info(
                    "call %s: %s: prompt replayed after a gap", rt.call_id[:8], self.describe()
                )
                prompts = list(all_prompts)
                playback_id = await self._play_next(prompts)
                deadline = rt.deadline_in(_PROMPT_MAX_S)
            elif isinstance(event, DtmfReceived) and event.channel_id == self.agent_id:
                # Only the agent's own channel counts; the digit is untrusted data.
                digit = event.digit if event.digit in VALID_DTMF else "?"
                self.dtmf = ((self.dtmf or "") + digit)[-16:]
                if digit == plan.accept_digit:
                    self._progress("accepted")
                    return HopResult(self.hop_id, HopOutcome.ACCEPTED, self.agent_id, playback_id)
                if playback_id is not None:
                    await rt.port.stop_playback(playback_id)
                await quietly(rt.port.hangup(self.agent_id))
                return self._end(HopOutcome.DECLINED, None, f"wrong key {digit!r}")
            elif (
                isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id == self.agent_id
            ):
                cause, text = self._agent_cause(event)
                return self._end(HopOutcome.DECLINED, cause, f"hung up at prompt ({text})")

    def _agent_cause(self, event: ChannelHungUp | ChannelLeft) -> tuple[int | None, str]:
        """The agent's own Q.850 cause: on ChannelDestroyed, or on the hangup request
        that precedes StasisEnd (ChannelDestroyed may never reach us after it)."""
        if isinstance(event, ChannelHungUp):
            return event.cause, event.cause_text
        cause, text = self.rt.hangup_causes.get(self.agent_id, (None, "left"))
        return cause, text

    async def _play_next(self, prompts: list[str]) -> str | None:
        while prompts:
            sound = prompts.pop(0)
            playback_id = self.rt.new_id("pb")
            uri = self.rt.sounds.uri(sound, self.rt.language)
            if await self.rt.port.play(self.agent_id, uri, playback_id, self.rt.language):
                return playback_id
        return None

    def end_left_before_bridge(self, when: str = "right after accepting") -> None:
        """The agent pressed the key and hung up before the bridge could be built."""
        cause, text = self.rt.hangup_causes.get(self.agent_id, (None, "left"))
        self._end(HopOutcome.DECLINED, cause, f"hung up {when} ({text})")

    def end_cancelled(self, why: str) -> None:
        """Stopped after the agent accepted or while a ring-all leg: the caller left
        before the bridge, or another agent of the same hop accepted first (this leg
        is hung up)."""
        self._end(HopOutcome.CANCELLED, None, why)

    def end_after_talk(self, cause: int | None, cause_text: str | None) -> None:
        """Close the audit of an accepted hop when the conversation ends."""
        self.rt.audit.emit(
            HopEnded(
                hop_id=self.hop_id,
                outcome=HopOutcome.ACCEPTED if self.hop.require_accept else HopOutcome.CONNECTED,
                at=self.rt.clock(),
                cause_code=cause,
                cause_text=cause_text,
                dtmf=self.dtmf,
            )
        )
