"""The state machine of one inbound call: announce, cascade, bridge or voicemail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.callflow.audit_events import CallAnswered, CallEnded, CallStarted
from astreinte_ari.callflow.hop import HopAttempt
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.runtime import CallerGone, CallRuntime
from astreinte_ari.callflow.telephony import Channel, ChannelHungUp, ChannelLeft, TelephonyError
from astreinte_ari.callflow.voicemail import VoicemailSink, take_voicemail
from astreinte_ari.routing.plan import CallPlan, FinalAction

log = logging.getLogger("astreinte_ari.call")


@dataclass(frozen=True, slots=True)
class CallClosed:
    """What other parts of the service (alerts, metrics) learn about an ended call."""

    call_id: str
    plan: CallPlan
    caller_number: str  # untrusted
    caller_name: str  # untrusted
    outcome: CallOutcome
    detail: str
    started_at: datetime
    ended_at: datetime
    last_state: CallState  # state before ended: where an abandoned caller was
    voicemail_path: str | None = None
    accepted_person_id: str | None = None


class CallFlow:
    def __init__(
        self,
        rt: CallRuntime,
        caller: Channel,
        voicemail: VoicemailSink,
        admission: asyncio.Semaphore | None = None,
    ) -> None:
        self.admission = admission
        self._has_slot = False
        self.rt = rt
        self.caller = caller
        self.voicemail = voicemail
        self.ended = False
        self.closed: CallClosed | None = None
        self._started_at = rt.clock()
        self._accepted_by: str | None = None
        self._ringback_on = False
        self._hop: HopAttempt | None = None

    async def run(self) -> None:
        self._emit_started()
        await self._guarded(self._run_admitted())

    async def _run_admitted(self) -> None:
        try:
            await self._admit()
            await self._run_plan()
        finally:
            self._release()

    async def _admit(self) -> None:
        """Take a cascade slot; during a burst, wait on hold for one."""
        slots, rt = self.admission, self.rt
        if slots is None:
            return
        if not slots.locked():
            await slots.acquire()
            self._has_slot = True
            return
        rt.transition(CallState.QUEUED, "every cascade slot busy: the caller waits on hold")
        await rt.play_and_wait(rt.caller_channel_id, "astreinte-please-wait")
        await self._start_ringback()
        acquire = asyncio.ensure_future(slots.acquire())
        try:
            while not acquire.done():
                # Poll, so that a caller who hangs up while waiting is noticed
                # (CallerGone) without cancelling a pending queue read.
                await rt.next_event(rt.deadline_in(0.2))
        except BaseException:
            if acquire.done() and not acquire.cancelled():
                slots.release()
            else:
                acquire.cancel()
            raise
        self._has_slot = True
        await self._stop_ringback()  # the announcement comes next

    def _release(self) -> None:
        if self._has_slot and self.admission is not None:
            self._has_slot = False
            self.admission.release()

    def _emit_started(self) -> None:
        rt, plan = self.rt, self.rt.plan
        rt.audit.emit(
            CallStarted(
                call_id=rt.call_id,
                did=plan.did,
                line_name=plan.line_name,
                period=plan.period.value,
                caller_number=self.caller.caller_number,
                caller_name=self.caller.caller_name,
                channel_id=self.caller.id,
                at=self._started_at,
            )
        )

    async def _guarded(self, body: Awaitable[None]) -> None:
        """Run the call's body; whatever happens, the call ends audited."""
        rt = self.rt
        try:
            await body
        except CallerGone as gone:
            where = f"{rt.state.value}" + (f" ({self._hop.describe()})" if self._hop else "")
            why = gone.cause_text
            if gone.cause is not None:
                why = f"caller hung up, cause {gone.cause} {gone.cause_text}"
            self._end(CallOutcome.ABANDONED, f"abandoned at {where}: {why}")
        except Exception as exc:
            log.exception("call %s failed", rt.call_id[:8])
            self._end(CallOutcome.FAILED, f"internal error in {rt.state.value}: {exc!r}"[:300])
        finally:
            if rt.caller_present:
                await self._quietly(rt.port.hangup(rt.caller_channel_id))
            if not self.ended:
                self._end(CallOutcome.FAILED, f"cancelled in {rt.state.value}")

    async def _run_plan(self, first_hop: int = 1, announce: bool = True) -> None:
        rt, plan = self.rt, self.rt.plan
        announcements = [s for s in (plan.recorded_notice, plan.announcement) if s]
        if announcements and announce:
            rt.transition(CallState.ANNOUNCING, f"period {plan.period.value}")
            for sound in announcements:
                await rt.play_and_wait(rt.caller_channel_id, sound)
        for seq, hop in enumerate(plan.hops, start=1):
            if seq < first_hop:
                continue
            if not self._ringback_on:
                await self._start_ringback()
            self._hop = HopAttempt(rt, seq, hop)
            result = await self._hop.run()
            if result.outcome in (HopOutcome.ACCEPTED, HopOutcome.CONNECTED):
                assert result.agent_channel_id is not None
                await self._talk(self._hop, result.agent_channel_id, result.prompt_playback_id)
                return
        self._hop = None
        self._release()  # voicemail does not need a cascade slot
        await self._stop_ringback()
        reason = plan.note or (
            f"all {len(plan.hops)} hops failed" if plan.hops else "nobody to ring"
        )
        if plan.final is FinalAction.VOICEMAIL:
            result = await take_voicemail(rt, self.voicemail, reason)
            self._end(result.outcome, result.detail, vm_path=result.path, vm_s=result.seconds)
            return
        await rt.play_and_wait(rt.caller_channel_id, "astreinte-no-one")
        self._end(CallOutcome.NO_ONE, reason)

    async def _talk(self, hop: HopAttempt, agent_id: str, prompt: str | None) -> None:
        rt = self.rt
        bridge_id = rt.new_id("bridge")
        # Three independent objects (the agent's prompt, the caller's ringback, a new
        # bridge): one round trip of wall time instead of three before the bridging.
        await asyncio.gather(
            rt.port.stop_playback(prompt) if prompt else asyncio.sleep(0),
            self._stop_ringback(),
            rt.port.create_bridge(bridge_id),
        )
        try:
            await rt.port.add_to_bridge(bridge_id, (rt.caller_channel_id, agent_id))
            rt.transition(CallState.BRIDGED, f"{hop.describe()} accepted")
            rt.audit.emit(
                CallAnswered(
                    call_id=rt.call_id,
                    hop_id=hop.hop_id,
                    person_id=hop.hop.person_id,
                    at=rt.clock(),
                )
            )
        except BaseException:  # from here on, _until_hangup tears the bridge down
            await self._quietly(rt.port.destroy_bridge(bridge_id))
            raise
        rt.caller_may_leave = True
        self._release()  # the conversation does not hold a cascade slot
        self._accepted_by = hop.hop.person_id
        loop_start = rt.deadline_in(0)
        ended_by, cause, cause_text = await self._until_hangup(agent_id, bridge_id)
        talk_s = round(rt.deadline_in(0) - loop_start, 1)
        hop.end_after_talk(cause, cause_text)
        outcome = CallOutcome.ACCEPTED if hop.hop.require_accept else CallOutcome.CONNECTED
        self._end(
            outcome,
            f"talked {talk_s}s with {hop.hop.person_id}, ended by {ended_by}",
            talk_s=talk_s,
        )

    async def _until_hangup(
        self, agent_id: str, bridge_id: str
    ) -> tuple[str, int | None, str | None]:
        """Wait until either party hangs up, then tear down the bridge and the other leg;
        returns (who ended: "caller"/"agent", Q.850 cause, cause text)."""
        rt = self.rt
        try:
            ended = await self._wait_for_end(agent_id)
        finally:
            await self._quietly(rt.port.destroy_bridge(bridge_id))
        other = agent_id if ended[0] == "caller" else rt.caller_channel_id
        await self._quietly(rt.port.hangup(other))
        return ended

    async def _wait_for_end(self, agent_id: str) -> tuple[str, int | None, str | None]:
        rt = self.rt
        while True:
            event = await rt.next_event(None)
            if not rt.caller_present:
                if rt.caller_cause is None:
                    await self._cause_after_leave(rt.caller_channel_id)
                cause, text = rt.caller_cause or (None, "caller left")
                return "caller", cause, text
            if isinstance(event, ChannelHungUp | ChannelLeft) and event.channel_id == agent_id:
                if isinstance(event, ChannelLeft):
                    event = await self._cause_after_leave(agent_id) or event
                if isinstance(event, ChannelHungUp):
                    return "agent", event.cause, event.cause_text
                return "agent", None, "agent left"

    async def _cause_after_leave(self, channel_id: str) -> ChannelHungUp | None:
        """StasisEnd comes before ChannelDestroyed: wait briefly for the hangup cause."""
        rt = self.rt
        deadline = rt.deadline_in(0.5)
        while (event := await rt.next_event(deadline)) is not None:
            if isinstance(event, ChannelHungUp) and event.channel_id == channel_id:
                return event  # (for the caller, next_event has noted the cause)
        return None

    async def _start_ringback(self) -> None:
        self._ringback_on = True
        await self.rt.port.start_hold(self.rt.caller_channel_id, self.rt.sounds.hold_class)

    async def _stop_ringback(self) -> None:
        if self._ringback_on:
            self._ringback_on = False
            await self._quietly(self.rt.port.stop_hold(self.rt.caller_channel_id))

    def _end(
        self,
        outcome: CallOutcome,
        detail: str,
        *,
        talk_s: float | None = None,
        vm_path: str | None = None,
        vm_s: float | None = None,
    ) -> None:
        if self.ended:
            return
        self.ended = True
        rt = self.rt
        last_state = rt.state
        rt.transition(CallState.ENDED, f"{outcome.value}: {detail}"[:500])
        ended_at = rt.clock()
        rt.audit.emit(
            CallEnded(
                call_id=rt.call_id,
                outcome=outcome,
                at=ended_at,
                detail=detail[:500],
                talk_seconds=talk_s,
                voicemail_path=vm_path,
                voicemail_seconds=vm_s,
            )
        )
        self.closed = CallClosed(
            call_id=rt.call_id,
            plan=rt.plan,
            caller_number=self.caller.caller_number,
            caller_name=self.caller.caller_name,
            outcome=outcome,
            detail=detail,
            started_at=self._started_at,
            ended_at=ended_at,
            last_state=last_state,
            voicemail_path=vm_path,
            accepted_person_id=self._accepted_by,
        )

    @staticmethod
    async def _quietly(action: object) -> None:
        """Cleanup must never mask the call's real ending."""
        try:
            await action  # type: ignore[misc]
        except TelephonyError as exc:
            log.warning("cleanup action failed: %s", exc)
