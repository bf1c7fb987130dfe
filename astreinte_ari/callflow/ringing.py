"""Ring one leg and wait until it answers: shared by every hop and every outbound call.

An inbound call's hop to a person, a voice alert to a person and the call-back
to a caller all originate a leg into Stasis and wait for StasisStart (answered)
or ChannelDestroyed (not answered, with its Q.850 cause). What that cause
means is decided once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from astreinte_ari.callflow.causes import unanswered_leg_text
from astreinte_ari.callflow.conversation import quietly
from astreinte_ari.callflow.outcomes import HopOutcome
from astreinte_ari.callflow.runtime import LegRuntime
from astreinte_ari.callflow.telephony import (
    ChannelEntered,
    ChannelHungUp,
    ChannelRinging,
    DialRefused,
    TelephonyError,
)
from astreinte_ari.routing.plan import DialTarget

# Margin over Asterisk's own originate timeout before we cancel the leg ourselves.
RING_MARGIN_S = 3.0


@dataclass(frozen=True, slots=True)
class Unanswered:
    """Why a leg was never answered: what the trail records."""

    outcome: HopOutcome
    cause: int | None
    text: str


def classify_failure(cause: int, ringing: bool) -> HopOutcome:
    """Q.850 cause of a leg that never answered -> hop outcome."""
    if cause == 17:
        return HopOutcome.BUSY
    if cause == 21:
        return HopOutcome.REJECTED
    if cause in (0, 16, 18, 19):  # our timeout, normal clearing, SIP timeout, no answer
        return HopOutcome.NO_ANSWER if ringing else HopOutcome.UNREACHABLE
    return HopOutcome.UNREACHABLE


async def ring(
    rt: LegRuntime[Any],
    channel_id: str,
    *,
    target: DialTarget,
    app_args: tuple[str, ...],
    caller_id: str | None,
    timeout_s: int,
    on_ringing: Callable[[], None] = lambda: None,
) -> Unanswered | None:
    """Originate `channel_id` to `target` (its dial string as resolved when the call's
    plan was made); None once it is answered (in Stasis).

    The leg's events must be routed to `rt` (rt.own) before this is called.
    A leg that is never answered is hung up; the reason is returned, never raised.
    """
    try:
        await rt.port.originate(
            channel_id=channel_id,
            target=target,
            app_args=app_args,
            caller_id=caller_id,
            timeout_s=timeout_s,
        )
    except DialRefused as exc:  # not allowed by the configuration: never dialled
        return Unanswered(HopOutcome.REFUSED, None, str(exc))
    except TelephonyError as exc:
        return Unanswered(HopOutcome.FAILED, None, str(exc)[:200])
    ringing = False
    deadline = rt.deadline_in(timeout_s + RING_MARGIN_S)
    while True:
        event = await rt.next_event(deadline)
        if event is None:
            await quietly(rt.port.hangup(channel_id))
            outcome = HopOutcome.NO_ANSWER if ringing else HopOutcome.UNREACHABLE
            what = "no answer" if ringing else "unreachable: no response"
            return Unanswered(outcome, None, f"{what} within {timeout_s} s (service timeout)")
        if isinstance(event, ChannelRinging) and event.channel_id == channel_id:
            if not ringing:
                ringing = True
                on_ringing()
        elif isinstance(event, ChannelHungUp) and event.channel_id == channel_id:
            outcome = classify_failure(event.cause, ringing)
            text = unanswered_leg_text(event.cause, event.cause_text, ringing)
            return Unanswered(outcome, event.cause, text)
        elif isinstance(event, ChannelEntered) and event.channel.id == channel_id:
            return None
