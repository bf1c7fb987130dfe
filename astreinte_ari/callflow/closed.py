"""What the rest of the service learns about an ended call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from astreinte_ari.callflow.outcomes import CallOutcome, CallState
from astreinte_ari.routing.plan import CallPlan


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
