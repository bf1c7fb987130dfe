"""What an alert is, and what acknowledging one means, as plain values.

An alert is a tracked obligation: it stays open (re-notified, escalated) until
someone acknowledges it. `next_step` is the index of the next notification in
the policy's sequence (policy.py), so a restart resumes exactly where the
previous process stopped. The store (adapters/store/alerts.py) keeps these
values; the rules about them live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Alert states: scheduled (shift start not yet due), open, acked, expired
# (shift start deadline passed), exhausted (max rounds), closed.
OPEN_STATES = ("scheduled", "open")


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    kind: str  # missed_call | shift_start | shift_cover | shift_missed | test_call_failed
    state: str
    policy: str
    chain: tuple[str, ...]  # person ids, in escalation order
    opened_at: datetime  # base of the schedule
    next_step: int
    next_at: datetime | None
    deadline_at: datetime | None
    call_id: str | None
    line_did: str | None
    line_name: str | None
    language: str | None
    caller_number: str | None
    voicemail_path: str | None
    team: str | None
    rota: str | None
    shift_start: datetime | None
    shift_end: datetime | None
    parent_id: str | None
    acked_at: datetime | None
    acked_by: str | None
    ack_via: str | None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class ShiftOverride:
    """A person routed calls instead of the rota for [start, end): a recorded replacement."""

    team: str
    rota: str
    person_id: str
    start: datetime
    end: datetime
    alert_id: str | None


@dataclass(frozen=True, slots=True)
class Settled:
    """Open alerts of `kind` under `parent_id` that an acknowledgement answers: they
    are closed, each with an event naming `person_id` and `detail`."""

    parent_id: str | None
    kind: str
    person_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Everything one acknowledgement writes; the store writes it in one transaction,
    so a replacement is never routed without its alert being acknowledged, nor the
    other way round."""

    alert_id: str
    by: str
    via: str
    at: datetime
    override: ShiftOverride | None = None
    settles: Settled | None = None
    detail: str | None = None  # how, in words ("acknowledged by SMS reply from +33...")


def acknowledgement(
    alert: Alert, *, by: str, via: str, now: datetime, detail: str | None = None
) -> Acknowledgement:
    """What acknowledging `alert` means.

    Acknowledging a shift_cover alert records the replacement as on call for the
    rest of that shift (the router honours overrides), and answers the
    supervisor's "shift not confirmed" alert of the same shift: the shift is covered.
    """
    if alert.kind != "shift_cover" or not (alert.team and alert.rota and alert.shift_end):
        return Acknowledgement(alert.id, by, via, now, detail=detail)
    replacement = alert.chain[0]
    return Acknowledgement(
        alert.id,
        by,
        via,
        now,
        override=ShiftOverride(
            team=alert.team,
            rota=alert.rota,
            person_id=replacement,
            start=max(now, alert.shift_start or now),
            end=alert.shift_end,
            alert_id=alert.id,
        ),
        settles=Settled(
            parent_id=alert.parent_id,
            kind="shift_missed",
            person_id=replacement,
            detail=f"shift covered: {replacement} acknowledged the cover",
        ),
        detail=detail,
    )
