"""The state machine of one inbound call: announce, cascade, bridge or voicemail."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable
from datetime import datetime

from astreinte_ari.callflow.admission import wait_for_slot
from astreinte_ari.callflow.announcement import AnnouncedSound, Announcement, ready_to_bridge
from astreinte_ari.callflow.call_record import record_ended, record_started
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.conversation import quietly
from astreinte_ari.callflow.engaged import EngagedTargets, record_skipped_hop
from astreinte_ari.callflow.hop import HopAttempt, HopResult
from astreinte_ari.callflow.menu import take_menu_choice
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.recording import (
    ConversationRecorder,
    notice_told,
    recorder_for,
    tell_caller,
)
from astreinte_ari.callflow.ringall import RingAll
from astreinte_ari.callflow.runtime import CallerGone, CallRuntime
from astreinte_ari.callflow.settle import settle_gone
from astreinte_ari.callflow.talk import bridge_and_talk
from astreinte_ari.callflow.telephony import (
    Channel,
    TakeResult,
    TelephonyError,
)
from astreinte_ari.callflow.voicemail import VoicemailSink, take_voicemail
from astreinte_ari.routing.busy import Turn, cascade_turns
from astreinte_ari.routing.plan import FinalAction, Hop

log = logging.getLogger("astreinte_ari.call")
FALLBACK_CONTEXT = ("astreinte-fallback", "s")


class CallFlow:
    def __init__(
        self,
        rt: CallRuntime,
        caller: Channel,
        voicemail: VoicemailSink,
        admission: asyncio.Semaphore | None = None,
        engaged: EngagedTargets | None = None,
    ) -> None:
        self.admission = admission
        # The phones the service holds for all its calls (busy agents are not rung
        # again); a registry of its own when the flow runs alone (tests).
        self.engaged = engaged if engaged is not None else EngagedTargets()
        self._has_slot = False
        self.rt = rt
        self.caller = caller
        self.voicemail = voicemail
        self.ended = False
        self.closed: CallClosed | None = None
        self._started_at = caller.created_at or rt.clock()
        self._accepted_by: str | None = None
        self._ringback_on = False
        self._hop: HopAttempt | RingAll | None = None
        # Early dial: the announcement playing on its own while hops ring.
        self._announcement: Announcement | None = None
        self._agent_accepted = False  # the caller goes to the bridge next: no ringback
        self._recording_notice_heard = False  # no recording unless the caller was told
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
        """The channel vanished before the service took the call: on record now, or
        the fallback's (its import completes the record)."""
        verdict = await settle_gone(self.rt)
        if verdict.handed_off is not None:
            self._handed_off(verdict.handed_off)
        elif verdict.outcome is None:
            self.handed_off = "unsettled"  # the reconciliation with the PBX decides
        else:
            self._end(verdict.outcome, verdict.detail, at=verdict.at)

    async def _run_admitted(self) -> None:
        try:
            await self._admit()
            await self._run_plan()
        finally:
            self._release()

    async def _admit(self) -> None:
        """Take a cascade slot; during a burst, wait on hold for one."""
        if self.admission is not None:
            await wait_for_slot(self.rt, self.admission, self._start_ringback, self._stop_ringback)
            self._has_slot = True

    def _busy_with(self, hop: Hop) -> str | None:
        return self.engaged.holder(hop.target, self.rt.call_id)

    def _release(self) -> None:
        if self._has_slot and self.admission is not None:
            self._has_slot = False
            self.admission.release()

    def _emit_started(self) -> None:
        record_started(self.rt, self.caller, self._started_at)

    async def _guarded(self, body: Awaitable[None]) -> None:
        """Run the call's body; whatever happens, the call ends audited."""
        rt = self.rt
        try:
            await body
        except CallerGone as gone:
            hop = self._hop if self._hop is not None and self._hop.started else None
            where = f"{rt.state.value}" + (f" ({hop.describe()})" if hop else "")
            if self._announcing() and rt.state is not CallState.ANNOUNCING:
                where += " during the announcement"
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

    async def _run_plan(
        self, first_hop: int = 1, announce: bool = True, menu_reason: str | None = None
    ) -> None:
        rt, plan = self.rt, self.rt.plan
        announcements = [s for s in (plan.recorded_notice, plan.announcement) if s]
        # With a menu nobody is rung before the caller chooses: no early dial.
        early = plan.early_dial and bool(plan.hops) and plan.menu is None
        notes = "; ".join(n for n in (plan.routed, plan.note) if n)  # caller route, rate limit
        if (announcements or plan.recording) and announce:
            why = f"period {plan.period.value}" + (", early dial: hop 1 rings meanwhile" * early)
            why += f"; {notes}" if notes else ""
            rt.transition(CallState.ANNOUNCING, why)
            if early:
                await self._announce_while_ringing(announcements)
            else:
                if plan.recording is not None:
                    self._recording_notice_heard = await tell_caller(rt, plan.recording)
                for sound in announcements:
                    await rt.play_and_wait(rt.caller_channel_id, sound)
        elif notes and plan.hops and announce and plan.menu is None:  # on the trail all the same
            rt.transition(CallState.DIALING, notes)
        if plan.menu is not None:  # the caller's key: the chosen line's plan from now on
            plan = await take_menu_choice(
                rt,
                plan.menu,
                resumed=not announce,
                hops_rung=first_hop > 1,
                recorded=menu_reason,
            )
        skipped = 0
        for turn in cascade_turns(plan.hops, self._busy_with, plan.busy_agents, first_hop):
            if not turn.ring:  # on another on-call call: passed over, on the trail
                record_skipped_hop(rt, turn.seq, turn.hop, str(uuid.uuid4()), turn.reason() or "")
                skipped += 1
                continue
            if turn.busy_with is not None:
                rt.transition(CallState.DIALING, f"hop {turn.seq}: {turn.reason()}")
            if not self._ringback_on and not self._announcing():
                await self._start_ringback()
            if await self._ring(turn):
                return
        self._hop = None
        if self._announcement is not None:  # heard in full before voicemail or "no one"
            await self._announcement.until_over()
        self._release()  # voicemail does not need a cascade slot
        await self._stop_ringback()
        busy = f" ({skipped} not rung: on another on-call call)" if skipped else ""
        reason = f"all {len(plan.hops)} hops failed{busy}" if plan.hops else "nobody to ring"
        if plan.note:  # e.g. the rate limit rule that reduced the plan
            reason = f"{reason}; {plan.note}" if plan.hops else plan.note
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

    async def _ring(self, turn: Turn) -> bool:
        """Ring one turn's hop (one person, or everyone of a ring-all hop at once);
        True once its accepted agent and the caller have talked."""
        rt = self.rt
        result: HopResult | None = None
        if turn.hop.members:
            ring_all = RingAll(rt, turn.seq, turn.hop, self._busy_with, turn.busy_with is not None)
            ring_all.during_announcement = self._announcing
            self._hop = ring_all
            with self.engaged.engage(turn.hop.target, rt.call_id):
                won = await ring_all.run()
            if won is None:
                return False
            attempt, result = won  # only the winner's phone stays engaged for the talk
        else:
            attempt = HopAttempt(rt, turn.seq, turn.hop)
            attempt.during_announcement = self._announcing
        self._hop = attempt
        with self.engaged.engage(attempt.hop.target, rt.call_id):
            if result is None:
                result = await attempt.run()
            if result.outcome not in (HopOutcome.ACCEPTED, HopOutcome.CONNECTED):
                return False
            assert result.agent_channel_id is not None
            prompt, on_hold = result.prompt_playback_id, False
            if self._announcing():
                ready = await self._caller_ready(attempt, prompt)
                if ready is None:
                    return False  # the agent left while waiting: the cascade goes on
                prompt, on_hold = ready
            return await self._talk(attempt, prompt, on_hold)

    async def _announce_while_ringing(self, announcements: list[str]) -> None:
        """Early dial: the announcement plays on its own while the cascade rings. The
        recording notice comes first and is never cut: an agent who accepts waits
        until it is over, so nobody is recorded before hearing it."""
        rt, policy = self.rt, self.rt.plan.recording
        notice = [AnnouncedSound(policy.notice, False)] if policy is not None else []
        sounds = notice + [AnnouncedSound(s, s != rt.plan.recorded_notice) for s in announcements]

        told: list[bool] = []  # the notice's one ending (it plays once)

        def sound_end(name: str, in_full: bool) -> None:
            if policy is not None and name == policy.notice and not told:
                told.append(in_full)
                self._recording_notice_heard = in_full
                notice_told(rt, policy, in_full)

        self._announcement = Announcement(rt, sounds, self._announcement_over, sound_end)
        await self._announcement.start()

    def _announcing(self) -> bool:
        return self._announcement is not None and self._announcement.playing

    async def _announcement_over(self) -> None:
        """The early-dial announcement ended while a hop goes on: the caller hears
        the ringback from now on (unless an agent has accepted: the bridge is next;
        or the cascade is over: voicemail is next)."""
        if self._hop is not None and not self._agent_accepted and not self.ended:
            await self._quietly(self._start_ringback())

    async def _caller_ready(
        self, hop: HopAttempt, prompt: str | None
    ) -> tuple[str | None, bool] | None:
        """The agent accepted during the announcement. `until_accepted`: it is cut
        short, the bridge is next (the prompt still to stop with its setup). `full`, or
        a notice that is never cut still playing: the agent waits on hold until it
        ends. (prompt to stop, agent on hold), or None: the agent left (hop ended)."""
        assert self._announcement is not None
        self._agent_accepted = True
        ready = await ready_to_bridge(self.rt, self._announcement, hop, prompt)
        self._agent_accepted = ready is not None
        return ready

    async def _talk(self, hop: HopAttempt, prompt: str | None, agent_on_hold: bool) -> bool:
        """Bridge the caller and the agent until one hangs up; False if the agent left
        at the very moment of bridging (the cascade goes on)."""
        # A test call proves the path, it records nobody (no conversation).
        recorder = None if self.rt.plan.test_call else self._recorder(hop.agent_id)

        def bridged() -> None:
            self._release()  # the conversation does not hold a cascade slot
            self._accepted_by = hop.hop.person_id

        talked = await bridge_and_talk(
            self.rt,
            hop,
            prompt=prompt,
            agent_on_hold=agent_on_hold,
            recorder=recorder,
            stop_ringback=self._stop_ringback,
            on_bridged=bridged,
        )
        if talked is None:
            return False
        outcome = CallOutcome.ACCEPTED if hop.hop.require_accept else CallOutcome.CONNECTED
        detail = f"talked {talked.seconds}s with {hop.hop.person_id}, ended by {talked.end.by}"
        self._end(outcome, detail, talk_s=talked.seconds, at=talked.end.at)
        return True

    def _recorder(self, agent_id: str) -> ConversationRecorder | None:
        """The conversation's recorder, if the line records and the caller was told."""
        heard = self._recording_notice_heard
        return recorder_for(self.rt, self.rt.plan.recording, self.voicemail, agent_id, heard)

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
        self.closed = record_ended(
            self.rt,
            self.caller,
            outcome,
            detail,
            started_at=self._started_at,
            during_announcement=self._announcing(),
            accepted_by=self._accepted_by,
            talk_s=talk_s,
            vm_path=vm_path,
            vm_s=vm_s,
            at=at,
        )

    _quietly = staticmethod(quietly)
