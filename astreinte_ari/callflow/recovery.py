"""Calls found on the PBX after a restart: re-attach them instead of losing them.

After a crash or restart, Asterisk still holds the channels in Stasis. A
bridged conversation continues untouched and is re-attached to its audit
rows; a caller who was waiting gets the next hop (or voicemail); the hops
the previous process left open are closed as interrupted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.callflow.audit_events import HopEnded
from astreinte_ari.callflow.call import CallFlow
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome

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
        ended_by, cause, cause_text = await self._until_hangup(agent_id, bridge_id)
        talk_s = None
        if point.answered_at is not None:
            talk_s = round((rt.clock() - point.answered_at).total_seconds(), 1)
        if point.accepted_hop_id is not None:
            rt.audit.emit(
                HopEnded(
                    hop_id=point.accepted_hop_id,
                    outcome=HopOutcome.ACCEPTED,
                    at=rt.clock(),
                    cause_code=cause,
                    cause_text=cause_text,
                )
            )
        self._end(
            CallOutcome.ACCEPTED,
            f"talked {talk_s}s (re-attached after restart), ended by {ended_by}",
            talk_s=talk_s,
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
        await self._guarded(self._run_plan(first_hop=next_hop, announce=False))

    def _point_or_new(self) -> ResumePoint:
        """Without an audit record (database down at restart) the call starts a new one."""
        if self.point is not None:
            return self.point
        rt = self.rt
        self._emit_started()
        log.warning("call %s: no audit record to resume, recorded anew", rt.call_id[:8])
        return ResumePoint(call_id=rt.call_id, last_seq=0, hops_tried=0, open_hop_ids=())
