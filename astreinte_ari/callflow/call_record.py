"""A call's start and end on record: CallStarted, CallEnded and the CallClosed that
the rest of the service (alerts, metrics) learns. Kept apart from the state
machine (call.py): what is written, not when."""

from __future__ import annotations

from datetime import datetime

from astreinte_ari.callflow.audit_events import CallEnded, CallStarted
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, outcome_of_test_call
from astreinte_ari.callflow.runtime import CallRuntime
from astreinte_ari.callflow.telephony import Channel


def record_started(rt: CallRuntime, caller: Channel, started_at: datetime) -> None:
    """The call's first event: its line, period and caller (untrusted) on record."""
    plan = rt.plan
    rt.audit.emit(
        CallStarted(
            call_id=rt.call_id,
            did=plan.did,
            line_name=plan.line_name,
            period=plan.period.value,
            caller_number=caller.caller_number,
            caller_name=caller.caller_name,
            channel_id=caller.id,
            at=started_at,
        )
    )


def record_ended(
    rt: CallRuntime,
    caller: Channel,
    outcome: CallOutcome,
    detail: str,
    *,
    started_at: datetime,
    during_announcement: bool,
    accepted_by: str | None,
    talk_s: float | None = None,
    vm_path: str | None = None,
    vm_s: float | None = None,
    at: datetime | None = None,
) -> CallClosed:
    """The call's last transition and CallEnded on record; what others learn of it."""
    if rt.plan.test_call:
        outcome, detail = outcome_of_test_call(outcome), f"test call: {detail}"
        if rt.failed_prompts:  # the caller would not have heard it: not a pass
            outcome = CallOutcome.TEST_FAILED
            detail = f"{detail}; but failed to play: {', '.join(rt.failed_prompts)}"
    # A caller who left during an early-dial announcement left during the
    # announcement (not "after it, while we rang": alerts tell them apart).
    last_state = CallState.ANNOUNCING if during_announcement else rt.state
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
    return CallClosed(
        call_id=rt.call_id,
        plan=rt.plan,
        caller_number=caller.caller_number,
        caller_name=caller.caller_name,
        outcome=outcome,
        detail=detail,
        started_at=started_at,
        ended_at=ended_at,
        last_state=last_state,
        voicemail_path=vm_path,
        accepted_person_id=accepted_by,
    )
