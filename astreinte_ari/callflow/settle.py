"""A caller channel that vanished before the service could take the call.

Either the caller hung up (the call is abandoned, on record now), the PBX ended
it, or the dialplan fallback took it first (its import completes the record).
The events already sent for the channel say which; none at all leaves it to the
reconciliation with the PBX's own records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.callflow.outcomes import CallOutcome
from astreinte_ari.callflow.runtime import CallRuntime
from astreinte_ari.callflow.telephony import ChannelHungUp, ChannelLeft

log = logging.getLogger("astreinte_ari.call")
_LOOK_S = 2.0  # how long the events already sent for the channel may take to arrive


@dataclass(frozen=True, slots=True)
class GoneVerdict:
    """outcome set: end the call so. handed_off set: the dialplan has it. Neither:
    nothing says how (the reconciliation decides)."""

    outcome: CallOutcome | None = None
    detail: str = ""
    at: datetime | None = None
    handed_off: str | None = None


async def settle_gone(rt: CallRuntime) -> GoneVerdict:
    deadline = rt.deadline_in(_LOOK_S)
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
        return GoneVerdict()
    if rt.caller_ended_by_pbx:
        why = rt.caller_cause[1] if rt.caller_cause else "hung up by the PBX"
        return GoneVerdict(
            CallOutcome.FAILED, f"ended by the PBX at received: {why}", rt.caller_left_at
        )
    if rt.caller_cause is not None or isinstance(event, ChannelHungUp):
        # A hangup request or ChannelDestroyed while ours: the caller hung up.
        cause, text = rt.caller_cause or (None, "caller left")
        why = f"caller hung up, cause {cause} {text}" if cause is not None else text
        return GoneVerdict(
            CallOutcome.ABANDONED, f"abandoned at received: {why}", rt.caller_left_at
        )
    # Left the application alive (no hangup request first): the dialplan has it.
    return GoneVerdict(
        handed_off="already taken by the dialplan watchdog (left the application alive)"
    )
