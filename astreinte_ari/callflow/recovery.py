"""Calls found on the PBX after a restart: re-attach them instead of losing them.

After a crash or restart, Asterisk still holds the channels in Stasis. A
bridged conversation continues untouched and is re-attached to its audit
rows; a caller who was waiting gets the next hop (or voicemail); the hops
the previous process left open are closed as interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.call import CallFlow
from astreinte_ari.callflow.conversation import until_hangup
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome
from astreinte_ari.callflow.recording import adopt_after_restart

log = logging.getLogger("astreinte_ari.call")


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """What the audit trail says about a call the previous process was handling."""

    call_id: str
    last_seq: int  # last state transition written
    hops_tried: int
    open_hop_ids: tuple[str, ...]  # hops started but never ended
    accepted_hop_id: str | None = None
    accepted_person_id: str | None = None
    answered_at: datetime | None = None
    menu_reason: str | None = None  # why the call left its menu: the caller's choice


# Transitions written after a restart whose trail could not be read in full (the
# database down, the journal already compacted) jump this far past what is known,
# so they can never take the sequence number of one that is on record already.
UNKNOWN_SEQ_GAP = 1000


def resume_point_from_events(
    call_id: str, events: Iterable[AuditEvent], base: ResumePoint | None = None
) -> ResumePoint | None:
    """Fold journalled events of one call over what the database said (`base`).

    Used when the database is down at a restart: the journal still holds the
    previous process's events. Without the call's CallStarted the journal only
    holds its tail: the sequence numbers then jump by UNKNOWN_SEQ_GAP.
    """
    mine = [e for e in events if getattr(e, "call_id", None) == call_id or _is_hop_event(e)]
    started = any(isinstance(e, CallStarted) and e.call_id == call_id for e in mine)
    if base is None and not mine:
        return None
    last_seq = base.last_seq if base else 0
    hops: dict[str, int] = {}
    ended_hops: set[str] = set()
    point = base or ResumePoint(call_id=call_id, last_seq=0, hops_tried=0, open_hop_ids=())
    accepted_hop, accepted_person, answered_at = (
        point.accepted_hop_id,
        point.accepted_person_id,
        point.answered_at,
    )
    menu_reason = point.menu_reason
    for event in mine:
        if isinstance(event, StateChanged) and event.call_id == call_id:
            last_seq = max(last_seq, event.seq)
            if event.from_state is CallState.MENU and menu_reason is None:
                menu_reason = event.reason
        elif isinstance(event, HopStarted) and event.call_id == call_id:
            hops[event.hop_id] = event.seq
        elif isinstance(event, HopEnded):
            ended_hops.add(event.hop_id)
        elif isinstance(event, CallAnswered) and event.call_id == call_id:
            accepted_hop, accepted_person, answered_at = event.hop_id, event.person_id, event.at
        elif isinstance(event, CallEnded) and event.call_id == call_id:
            return None  # ended: nothing to resume
    if base is None and not started:
        last_seq += UNKNOWN_SEQ_GAP
    open_hops = [h for h in point.open_hop_ids if h not in ended_hops]
    open_hops += [h for h in hops if h not in ended_hops and h != accepted_hop]
    return ResumePoint(
        call_id=call_id,
        last_seq=last_seq,
        hops_tried=max([point.hops_tried, *hops.values()]),
        open_hop_ids=tuple(dict.fromkeys(open_hops)),
        accepted_hop_id=accepted_hop,
        accepted_person_id=accepted_person,
        answered_at=answered_at,
        menu_reason=menu_reason,
    )


def _is_hop_event(event: AuditEvent) -> bool:
    return isinstance(event, HopEnded)  # carries no call id: matched by hop id


class ResumedCallFlow(CallFlow):
    """Continues a call started by an earlier process of the service."""

    def __init__(self, *args: object, point: ResumePoint | None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.point = point

    async def resume_bridged(self, agent_id: str, bridge_id: str) -> None:
        rt, point = self.rt, self._point_or_new()
        rt.restore(point.last_seq, CallState.BRIDGED)
        rt.transition(CallState.BRIDGED, "re-attached after a service restart")
        rt.caller_may_leave = True
        self._accepted_by = point.accepted_person_id
        await self._guarded(self._finish_talk(point, agent_id, bridge_id))

    async def _finish_talk(self, point: ResumePoint, agent_id: str, bridge_id: str) -> None:
        rt = self.rt
        recorder = await adopt_after_restart(rt, rt.plan.recording, self.voicemail, agent_id)
        end = await until_hangup(rt, agent_id, bridge_id, recorder)
        if recorder is not None:
            await recorder.finish()
        talk_s = None
        if point.answered_at is not None:
            talk_s = round(max(0.0, (end.at - point.answered_at).total_seconds()), 1)
        if point.accepted_hop_id is not None:
            rt.audit.emit(
                HopEnded(
                    hop_id=point.accepted_hop_id,
                    outcome=HopOutcome.ACCEPTED,
                    at=end.at,
                    cause_code=end.cause,
                    cause_text=end.cause_text,
                )
            )
        self._end(
            CallOutcome.ACCEPTED,
            f"talked {talk_s}s (re-attached after restart), ended by {end.by}",
            talk_s=talk_s,
            at=end.at,
        )

    async def resume_waiting(self) -> None:
        """The caller was between hops (or ringing one) when the service stopped."""
        rt, point = self.rt, self._point_or_new()
        rt.restore(point.last_seq, CallState.DIALING)
        # The previous process may have left the caller on hold: start from silence.
        await self._quietly(rt.port.stop_hold(rt.caller_channel_id))
        for hop_id in point.open_hop_ids:
            rt.audit.emit(
                HopEnded(
                    hop_id=hop_id,
                    outcome=HopOutcome.FAILED,
                    at=rt.clock(),
                    cause_text="interrupted by a service restart",
                )
            )
        next_hop = point.hops_tried + 1
        rt.transition(CallState.DIALING, f"resumed after a service restart at hop {next_hop}")
        resumed = self._run_plan(first_hop=next_hop, announce=False, menu_reason=point.menu_reason)
        await self._guarded(resumed)

    def _point_or_new(self) -> ResumePoint:
        """No record of this call on the trail: it is recorded now (same call id)."""
        if self.point is not None:
            return self.point
        rt = self.rt
        self._emit_started()
        log.warning("call %s: no audit record to resume, recorded anew", rt.call_id[:8])
        return ResumePoint(call_id=rt.call_id, last_seq=0, hops_tried=0, open_hop_ids=())
