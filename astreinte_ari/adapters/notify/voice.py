"""Voice-call alerts: the notifier side of callflow.alert_call.

The call itself (ring, read the alert, 1 = acknowledge, 2 = call the caller
back and bridge) is a call flow on the call-flow runtime; this adapter turns
an alert message into what that call plays, waits until the service is
connected to the PBX (a step due during a restart waits instead of failing),
and reports the result the way every notifier does.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from astreinte_ari.alerting.ports import (
    Acknowledge,
    AlertMessage,
    Delivery,
    NotifyError,
    Progress,
    Recipient,
)
from astreinte_ari.callflow.alert_call import (
    AlertCallFailed,
    AlertCallSpec,
    AlertCallState,
    CallBack,
    alert_call_machine,
    run_alert_call,
)
from astreinte_ari.callflow.identity import new_object_id
from astreinte_ari.callflow.runtime import LegRuntime, StateMachine
from astreinte_ari.routing.plan import DialTarget

log = logging.getLogger(__name__)
READY_WAIT_S = 60.0  # after a restart, ARI is usually back within seconds
RETRY_AFTER_S = 30.0

PROMPTS = {
    "missed_call": "astreinte-alert-missed",
    "shift_start": "astreinte-shift-start",
    "shift_cover": "astreinte-shift-start",
    "shift_missed": "astreinte-alert-missed",
    "test_call_failed": "astreinte-alert-test-failed",
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


class OutboundCalls(Protocol):
    """What the call dispatcher offers outbound call flows."""

    def outbound_leg(
        self,
        *,
        call_id: str,
        channel_id: str,
        language: str,
        machine: StateMachine[AlertCallState],
    ) -> contextlib.AbstractContextManager[LegRuntime[AlertCallState]]: ...

    async def wait_ready(self, timeout: float) -> bool: ...


def prompts_for(message: AlertMessage) -> tuple[str, ...]:
    """What the call reads: the alert, the caller's number, the keys offered."""
    items = [PROMPTS.get(message.kind, "astreinte-alert-missed")]
    if message.kind == "missed_call" and message.caller_number:
        # Our own digit prompts: Asterisk's `digits:` needs its core sounds in the
        # line's language, which a PBX may not have (French often missing).
        items.extend(f"astreinte-digit-{d}" for d in message.caller_number if d.isdigit())
    if message.kind != "shift_start":
        items.append("astreinte-alert-press-1-ack")
    if message.can_call_back:
        items.append("astreinte-alert-press-2-callback")
    return tuple(items)


class VoiceNotifier:
    channel = "voice"

    def __init__(
        self,
        *,
        calls: OutboundCalls,
        caller_id: str,
        ring_timeout_s: int,
        next_hop_seq: Callable[[str], int],
        dial_target: Callable[[str], DialTarget],
    ) -> None:
        self.calls = calls
        # A number -> what to dial through the trunk (routing.targets.trunk_target), once
        # per alert call; raises ValueError (NumberNotAllowed) outside the allow-list.
        # The telephony adapter checks the target again right before each originate.
        self.dial_target = dial_target
        self.caller_id = caller_id
        self.ring_timeout_s = ring_timeout_s
        self.next_hop_seq = next_hop_seq

    async def send(
        self,
        to: Recipient,
        message: AlertMessage,
        acknowledge: Acknowledge | None = None,
        progress: Progress | None = None,
    ) -> Delivery:
        if not await self.calls.wait_ready(READY_WAIT_S):
            raise NotifyError(
                f"voice call to {to.mobile}: the PBX is not connected yet",
                retry_after=RETRY_AFTER_S,
            )

        def record(from_state: AlertCallState, to_state: AlertCallState, why: str) -> None:
            if progress is not None:
                progress(f"call {from_state} -> {to_state}: {why}")

        try:
            target = self.dial_target(to.mobile)
        except ValueError as exc:
            raise NotifyError(f"voice call to {to.mobile} refused: {exc}") from None
        spec = AlertCallSpec(
            alert_id=message.alert_id,
            person_id=to.person_id,
            person_name=to.name,
            number=to.mobile,
            target=target,
            prompts=prompts_for(message),
            caller_id=self.caller_id,
            ring_timeout_s=self.ring_timeout_s,
            call_back=self._call_back(message),
        )
        leg = self.calls.outbound_leg(
            call_id=message.alert_id,
            channel_id=new_object_id("alert"),  # identity.ALERT_LEG
            language=message.language,
            machine=alert_call_machine(record),
        )
        with leg as rt:
            try:
                result = await run_alert_call(rt, spec, acknowledge)
            except AlertCallFailed as exc:
                raise NotifyError(str(exc)) from None
        return Delivery(result.detail, acked=result.acked, called_back=result.called_back)

    def _call_back(self, message: AlertMessage) -> CallBack | None:
        if not (message.can_call_back and message.call_id and message.caller_number):
            return None
        call_id, number = message.call_id, message.caller_number
        try:
            target, refused = self.dial_target(number), ""
        except ValueError as exc:  # a caller's number outside the allow-list: never dialled
            target, refused = None, str(exc)
        return CallBack(call_id, number, lambda: self.next_hop_seq(call_id), target, refused)
