"""The state machine of one inbound call: announce, cascade, bridge or voicemail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.callflow.audit_events import CallAnswered, CallEnded, CallStarted
from astreinte_ari.callflow.conversation import end_test_call, quietly, until_hangup
from astreinte_ari.callflow.hop import HopAttempt
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome, outcome_of_test_call
from astreinte_ari.callflow.runtime import CallerGone, CallRuntime
from astreinte_ari.callflow.telephony import (
    Channel,
    ChannelHungUp,
    ChannelLeft,
    TakeResult,
    TelephonyError,
)
from astreinte_ari.callflow.voicemail import VoicemailSink, take_voicemail
from astreinte_ari.routing.plan import CallPlan, FinalAction

log = logging.getLogger("astreinte_ari.call")
FALLBACK_CONTEXT = ("astreinte-fallback", "s")


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
        self._started_at = caller.created_at or rt.clock()
        self._accepted_by: str | None = None
        self._ringback_on = False
        self._hop: HopAttempt | None = None
        # Set when the dialplan fallback has the call (watchdog fired, or draining):
        # its import completes this call's record, so this flow writes no ending.
        self.handed_off: str | None = None

    async def run(self, *, draining: bool = False) -> None:
        """Take the call, then run its plan. CallStarted is already on record: the
        service emits it before any request to the PBX (record_start)."""
        await self._guarded(self._take_then_run(draining))

    def record_start(self) -> None:
        """The call is on record before anything can fail (journal first)."""
        self._emit_started()

    async def _take_then_run(self, draining: bool) -> None:
        rt = self.rt
        try:
            taken = await rt.port.take_call(rt.caller_channel_id)
        except TelephonyError:
            # A PBX error, not a verdict: take the call; at worst the watchdog hands
            # it to the fallback later, and the flow records the caller leaving.
            log.exception("could not disarm the dialplan watchdog of %s", rt.caller_channel_id)
            taken = TakeResult.TAKEN
        if taken is TakeResult.TAKEN and draining:
            taken = await self._hand_to_fallback()
            if taken is TakeResult.ELSEWHERE:
                return  # handed over on purpose: the fallback completes the record
        if taken is TakeResult.ELSEWHERE:
            self._handed_off("already taken by the dialplan watchdog (it fired first)")
        elif taken is TakeResult.GONE:
            await self._settle_gone()
        else:
            await self._run_admitted()

    async def _hand_to_fallback(self) -> TakeResult:
        """Stopping: the dialplan fallback takes new calls (it completes this record)."""
        rt = self.rt
        # The fallback says why it ran; the variable's value is ours, never the caller's.
        trigger = {"ASTREINTE_FB_TRIGGER": "draining"}
        if await rt.port.continue_in_dialplan(
            rt.caller_channel_id, *FALLBACK_CONTEXT, variables=trigger
        ):
            self.handed_off = "service stopping (draining)"
            log.info("call %s: draining, handed to the dialplan fallback", rt.call_id[:8])
            return TakeResult.ELSEWHERE
        return TakeResult.GONE

    def _handed_off(self, why: str) -> None:
        self.handed_off = why
        log.warning("call %s: %s; the fallback records the rest", self.rt.call_id[:8], why)

    async def _settle_gone(self) -> None:
        """The channel vanished before the service took the call: did the caller hang
        up (abandoned, on record now), or did the fallback take it first (its
        import completes the record)? The events already sent for the channel say."""
        rt = self.rt
        deadline = rt.deadline_in(2.0)
        rt.caller_may_leave = True  # look at the caller's events instead of unwinding
        event = None
        while (event := await rt.next_event(deadline)) is not None:
            if isinstance(event, ChannelLeft | ChannelHungUp) and (
                event.channel_id == rt.caller_channel_id
            ):
                break
        if event is None:
            log.warning(
                "call %s: channel gone before it was taken, no event says how: "
                "left to the reconciliation with the PBX's records",
                rt.call_id[:8],
            )
            self.handed_off = "unsettled"
        elif rt.caller_ended_by_pbx:
            why = rt.caller_cause[1] if rt.caller_cause else "hung up by the PBX"
            self._end(
                CallOutcome.FAILED, f"ended by the PBX at received: {why}", at=rt.caller_left_at
            )
        elif rt.caller_cause is not None or isinstance(event, ChannelHungUp):
            # A hangup request or ChannelDestroyed while ours: the caller hung up.
            cause, text = rt.caller_cause or (None, "caller left")
            why = f"caller hung up, cause {cause} {text}" if cause is not None else text
            self._end(CallOutcome.ABANDONED, f"abandoned at received: {why}", at=rt.caller_left_at)
        else:
            # Left the application alive (no hangup request first): the dialplan has it.
            self._handed_off("already taken by the dialplan watchdog (left the application alive)")

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
            hop = self._hop if self._hop is not None and self._hop.started else None
            where = f"{rt.state.value}" + (f" ({hop.describe()})" if hop else "")
            if gone.by_pbx:  # not the caller's doing: nobody may count it as abandoned
                detail = f"ended by the PBX at {where}: {gone.cause_text}"
                self._end(CallOutcome.FAILED, detail, at=gone.at)
                return
            why = gone.cause_text
            if gone.cause is not None:
                why = f"caller hung up, cause {gone.cause} {gone.cause_text}"
            self._end(CallOutcome.ABANDONED, f"abandoned at {where}: {why}", at=gone.at)
        except Exception as exc:
            log.exception("call %s failed", rt.call_id[:8])
            self._end(CallOutcome.FAILED, f"internal error in {rt.state.value}: {exc!r}"[:300])
        finally:
            if rt.caller_present and self.handed_off is None:
                await self._quietly(rt.port.hangup(rt.caller_channel_id))
            if not self.ended and self.handed_off is None:
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
                if await self._talk(self._hop, result.agent_channel_id, result.prompt_playback_id):
                    return
        self._hop = None
        self._release()  # voicemail does not need a cascade slot
        await self._stop_ringback()
        reason = plan.note or (
            f"all {len(plan.hops)} hops failed" if plan.hops else "nobody to ring"
        )
        if plan.final is FinalAction.VOICEMAIL:
            result = await take_voicemail(rt, self.voicemail, reason)
            self._end(
                result.outcome,
                result.detail,
                vm_path=result.path,
                vm_s=result.seconds,
                at=result.at,
            )
            return
        await rt.play_and_wait(rt.caller_channel_id, "astreinte-no-one")
        self._end(CallOutcome.NO_ONE, reason)

    async def _talk(self, hop: HopAttempt, agent_id: str, prompt: str | None) -> bool:
        """Bridge the caller and the agent until one hangs up; False if the agent left
        at the very moment of bridging (the cascade goes on)."""
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
            if not await rt.port.add_to_bridge(bridge_id, (rt.caller_channel_id, agent_id)):
                await rt.ensure_caller_present()  # raises if it was the caller who left
                await self._quietly(rt.port.destroy_bridge(bridge_id))
                await self._quietly(rt.port.hangup(agent_id))
                hop.end_left_before_bridge()
                return False
            rt.transition(CallState.BRIDGED, f"{hop.describe()} accepted")
            answered_at = rt.clock()
            rt.audit.emit(
                CallAnswered(
                    call_id=rt.call_id,
                    hop_id=hop.hop_id,
                    person_id=hop.hop.person_id,
                    at=answered_at,
                )
            )
        except BaseException:  # from here on, _until_hangup tears the bridge down
            await self._quietly(rt.port.destroy_bridge(bridge_id))
            raise
        rt.caller_may_leave = True
        self._release()  # the conversation does not hold a cascade slot
        self._accepted_by = hop.hop.person_id
        if rt.plan.test_call:  # the path is proven: nobody to talk to (selftest.py)
            end = await end_test_call(rt, agent_id, bridge_id)
        else:
            end = await until_hangup(rt, agent_id, bridge_id)
        talk_s = round(max(0.0, (end.at - answered_at).total_seconds()), 1)
        hop.end_after_talk(end.cause, end.cause_text)
        outcome = CallOutcome.ACCEPTED if hop.hop.require_accept else CallOutcome.CONNECTED
        self._end(
            outcome,
            f"talked {talk_s}s with {hop.hop.person_id}, ended by {end.by}",
            talk_s=talk_s,
            at=end.at,
        )
        return True

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
        at: datetime | None = None,
    ) -> None:
        if self.ended:
            return
        self.ended = True
        rt = self.rt
        if rt.plan.test_call:
            outcome, detail = outcome_of_test_call(outcome), f"test call: {detail}"
            if rt.failed_prompts:  # the caller would not have heard it: not a pass
                outcome = CallOutcome.TEST_FAILED
                detail = f"{detail}; but failed to play: {', '.join(rt.failed_prompts)}"
        last_state = rt.state
        rt.transition(CallState.ENDED, f"{outcome.value}: {detail}"[:500])
        ended_at = at or rt.clock()
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

    _quietly = staticmethod(quietly)
