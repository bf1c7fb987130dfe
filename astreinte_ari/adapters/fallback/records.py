"""Fallback call records -> audit events (pure).

The AGI (and, for the last resort, the dialplan) append one JSON object per
step of a call to a spool file (spool.py); the importer turns each call's
steps into the same audit events the call flow emits, plus a summary for the
missed-call alerts. Everything here is deterministic (ids derive from the
channel's UNIQUEID, callflow/identity.py) so that importing twice writes
nothing twice, and a call the service started is completed, not duplicated.

Times: the call starts when it ARRIVED (ASTREINTE_ARRIVED, stamped by the
dialplan before Answer), a hop is answered when the accept gosub ran on the
agent's leg, accepted when the agent pressed 1; the talk time runs from there.
Spool files from before these fields existed are still read (older estimates).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from astreinte_ari.adapters.fallback.spool import (
    CALLER_MAX,
    LASTRESORT_SUFFIX,
    SPOOL_SUFFIX,
    bounded,
    dialplan_time,
    hop_outcome,
)
from astreinte_ari.adapters.fallback.unclaimed import unclaimed_events, unclaimed_step
from astreinte_ari.callflow.audit_events import (
    AuditEvent,
    CallAnswered,
    CallEnded,
    CallStarted,
    HopEnded,
    HopProgress,
    HopStarted,
    StateChanged,
)
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState, HopOutcome

__all__ = [
    "CALLER_MAX",
    "LASTRESORT_SUFFIX",
    "SPOOL_SUFFIX",
    "FallbackRecord",
    "ImportedCall",
    "bounded",
    "call_audit_events",
    "call_id_for",
    "fallback_record",
    "hop_outcome",
]

# Why the fallback had the call (first transition); other values are untrusted.
_WHY = {
    "watchdog": "service did not take the call in time (watchdog)",
    "draining": "service stopping (draining)",
}
_NOT_CONNECTED = "service not connected"


def call_id_for(uniqueid: str) -> str:
    """The audit call id of a fallback call: the same id the service gives that channel."""
    return call_id_for_channel(uniqueid)


@dataclass(frozen=True, slots=True)
class ImportedCall:
    """One fallback call now in the audit trail: what the missed-call alerts need."""

    call_id: str
    did: str
    line_name: str
    caller_number: str  # untrusted, as received (bounded)
    caller_name: str  # untrusted, as received (bounded)
    started_at: datetime
    ended_at: datetime
    outcome: CallOutcome
    last_state: CallState  # the state before ENDED (alerting.missed_calls.is_missed)
    detail: str
    trigger: str  # stasis (service not connected) | watchdog | draining | unclaimed
    person_ids: tuple[str, ...] = ()  # whom the fallback rang, in order
    voicemail_path: str | None = None
    accepted_person_id: str | None = None
    # Its end was already in the trail before this import (re-import after a
    # crash between commit and file move, or the service ended it itself).
    was_recorded: bool = False


@dataclass(frozen=True, slots=True)
class FallbackRecord:
    events: list[AuditEvent]
    summary: ImportedCall


def _num(value: Any) -> float | None:
    """A positive number, or a time the dialplan stamped (spool.dialplan_time)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return dialplan_time(value)
    return number if number > 0 else None


def _at(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _int(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() else None


@dataclass
class _Builder:
    call_id: str
    events: list[AuditEvent] = field(default_factory=list)
    seq: int = 0
    state: CallState = CallState.RECEIVED
    last_state: CallState = CallState.RECEIVED
    answered_by: str | None = None
    rung: list[str] = field(default_factory=list)

    def move(self, to: CallState, reason: str, at: float) -> None:
        self.seq += 1
        self.events.append(StateChanged(self.call_id, self.seq, self.state, to, reason, _at(at)))
        self.last_state, self.state = self.state, to


def _answered_at(start: float, end: Mapping[str, Any]) -> float | None:
    stamped = _num(end.get("answered_at"))
    if stamped is not None:
        return stamped
    if end.get("dialstatus") == "ANSWER" or end.get("key"):
        # Older spool files: Dial's whole seconds only.
        dialed, answered = _num(end.get("dialedtime")) or 0, _num(end.get("answeredtime")) or 0
        return start + dialed - answered
    return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _hop(b: _Builder, start: Mapping[str, Any], end: Mapping[str, Any] | None) -> None:
    seq = _int(start.get("seq")) or len(b.rung) + 1
    hop_id = f"{b.call_id}-h{seq}"
    started = _num(start.get("at")) or 0.0
    person = str(start.get("person_id", ""))
    label = str(start.get("label", ""))
    if b.state is not CallState.DIALING:
        b.move(CallState.DIALING, f"hop {seq}: ringing {label or person} (fallback)", started)
    b.rung.append(person)
    b.events.append(
        HopStarted(
            call_id=b.call_id,
            hop_id=hop_id,
            seq=seq,
            label=label,
            person_id=person,
            person_name=str(start.get("person_name", "")),
            number=str(start.get("number", "")),
            at=_at(started),
            target_kind=_text_or_none(start.get("kind")),
            target=_text_or_none(start.get("target")),
        )
    )
    if end is None:
        b.events.append(
            HopEnded(hop_id, HopOutcome.FAILED, _at(started), cause_text="no result recorded")
        )
        return
    ended = _num(end.get("at")) or started
    try:
        outcome = HopOutcome(str(end.get("outcome")))
    except ValueError:
        outcome = HopOutcome.FAILED
    answered = _answered_at(started, end)
    if answered is not None:
        b.events.append(HopProgress(hop_id, "answered", _at(answered)))
        if outcome is not HopOutcome.CONNECTED and (end.get("key") or end.get("answered_at")):
            b.move(
                CallState.AGENT_PROMPT, f"hop {seq}: {person} answered, press-1 prompt", answered
            )
    taken = None
    if outcome is HopOutcome.ACCEPTED:
        taken = _num(end.get("accepted_at")) or ended  # older files: the hop's end
        b.events.append(HopProgress(hop_id, "accepted", _at(taken)))
        b.move(CallState.BRIDGED, f"hop {seq}: {person} pressed 1 (fallback)", taken)
    elif outcome is HopOutcome.CONNECTED:
        taken = answered or ended
        b.move(CallState.BRIDGED, f"hop {seq}: {person} answered (fallback)", taken)
    key = str(end.get("key") or "")
    b.events.append(
        HopEnded(
            hop_id,
            outcome,
            _at(ended),
            cause_code=_int(end.get("hangupcause")),
            cause_text=f"DIALSTATUS={end.get('dialstatus') or '-'}",
            dtmf=key if key and key != "none" else None,
        )
    )
    if taken is not None:
        b.events.append(CallAnswered(b.call_id, hop_id, person, _at(taken)))
        b.answered_by = person


def _unique(steps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Steps without repeats (a write retried after a full disk may land twice)."""
    seen: set[str] = set()
    out: list[Mapping[str, Any]] = []
    for step in steps:
        text = json.dumps(step, sort_keys=True, default=str)
        if text not in seen:
            seen.add(text)
            out.append(step)
    return out


def fallback_record(
    key: str,
    steps: Sequence[Mapping[str, Any]],
    *,
    found_at: float,
    line_name: Callable[[str], str | None] = lambda did: None,
) -> FallbackRecord:
    """Audit events and summary of one fallback call from its spool steps.

    `key` is the file name's UNIQUEID key; `found_at` stands in for times the
    record lacks (its files' mtime). A call with neither an `end` nor a
    `lastresort` step is reported as failed: the importer only passes such a
    call once its files are stale. `line_name` names the line of a DID for the
    dialplan's unclaimed-call records (the AGI's records carry it).
    """
    steps = _unique([s for s in steps if isinstance(s, Mapping)])
    unclaimed = unclaimed_step(steps)
    if unclaimed is not None:  # the dialplan's own record: the fallback never had it
        events, fields = unclaimed_events(key, unclaimed, found_at=found_at, line_name=line_name)
        return FallbackRecord(events, ImportedCall(**fields))
    b = _Builder(call_id_for(key))
    call = next((s for s in steps if s.get("event") == "call"), None)
    last = next((s for s in steps if s.get("event") == "lastresort"), None)
    end = next((s for s in steps if s.get("event") == "end"), None)
    first = call or last or (steps[0] if steps else {})
    taken = _num(first.get("at")) or found_at
    arrived = _num(first.get("arrived") if call else first.get("call_start"))
    started = arrived or taken
    trigger = str(first.get("trigger") or "stasis")
    trigger = trigger if trigger in _WHY else "stasis"
    b.events.append(
        CallStarted(
            call_id=b.call_id,
            did=str(first.get("did", "")),
            line_name=str(call.get("line_name", "")) if call else "(unknown: fallback AGI failed)",
            period=str(call.get("period", "")) if call else "unknown",
            caller_number=bounded(str(first.get("caller_number", ""))),
            caller_name=bounded(str(first.get("caller_name", ""))),
            channel_id=bounded(str(first.get("channel", ""))),
            at=_at(started),
        )
    )
    why = _WHY.get(trigger, _NOT_CONNECTED)
    how = "dialplan fallback (AGI)" if call else "dialplan fallback, AGI failed"
    b.move(CallState.DIALING, f"{why}: {how}", max(taken, started))
    for step in steps:  # a caller route or the menu's choice (cascade.py _routed)
        if step.get("event") == "route":
            at = _num(step.get("at")) or taken
            b.move(CallState.DIALING, f"{bounded(str(step.get('detail', '')))} (fallback)", at)
    ends: dict[int | None, Mapping[str, Any]] = {}
    for step in steps:
        if step.get("event") == "hop_end":
            ends.setdefault(_int(step.get("seq")), step)
    hops: dict[int | None, Mapping[str, Any]] = {}
    for step in steps:
        if step.get("event") == "hop":
            hops.setdefault(_int(step.get("seq")), step)
    for seq, hop in hops.items():
        _hop(b, hop, ends.get(seq))
    for step in steps:
        if step.get("event") == "voicemail":
            at = _num(step.get("at")) or taken
            b.move(CallState.RECORDING, "every hop failed: voicemail (fallback)", at)
    if end is not None:
        try:
            outcome = CallOutcome(str(end.get("outcome")))
        except ValueError:
            outcome = CallOutcome.FAILED
        ended_at = _num(end.get("at")) or taken
        detail = f"{end.get('detail', '')} (dialplan fallback)"
        voicemail = str(end.get("voicemail_path") or "") or None
        b.move(CallState.ENDED, detail, ended_at)
        b.events.append(
            CallEnded(
                b.call_id,
                outcome,
                _at(ended_at),
                detail,
                talk_seconds=_num(end.get("talk_seconds")),
                voicemail_path=voicemail,
                voicemail_seconds=_num(end.get("voicemail_seconds")),
            )
        )
    elif last is not None:
        outcome, detail, ended_at = _last_resort(b, last, seq=len(hops) + 1)
        voicemail = None
    else:
        ended_at = max(_num(s.get("at")) or taken for s in steps) if steps else taken
        outcome = CallOutcome.FAILED
        detail = (
            "fallback record incomplete: the AGI stopped before the end of the call"
            if steps
            else "fallback record lost: the spool could not be written (see Asterisk's log)"
        )
        voicemail = None
        b.move(CallState.ENDED, detail, ended_at)
        b.events.append(CallEnded(b.call_id, outcome, _at(ended_at), detail))
    summary = ImportedCall(
        call_id=b.call_id,
        did=str(first.get("did", "")),
        line_name=str(call.get("line_name", "")) if call else "",
        caller_number=bounded(str(first.get("caller_number", ""))),
        caller_name=bounded(str(first.get("caller_name", ""))),
        started_at=_at(started),
        ended_at=_at(ended_at),
        outcome=outcome,
        last_state=b.last_state,
        detail=detail,
        trigger=trigger,
        person_ids=tuple(p for p in b.rung if p),
        voicemail_path=voicemail,
        accepted_person_id=b.answered_by or None,
    )
    return FallbackRecord(b.events, summary)


def call_audit_events(uniqueid: str, steps: Sequence[Mapping[str, Any]]) -> list[AuditEvent]:
    """The audit events alone (see fallback_record)."""
    return fallback_record(uniqueid, steps, found_at=0.0).events


def _last_resort(
    b: _Builder, last: Mapping[str, Any], *, seq: int
) -> tuple[CallOutcome, str, float]:
    dialled = _num(last.get("at")) or _num(last.get("call_start")) or 0.0
    ended = _num(last.get("ended")) or dialled
    target = str(last.get("target", ""))
    status, cause = str(last.get("dialstatus", "")), str(last.get("hangupcause", ""))
    if target:
        # The published dial string: its kind is not in AstDB, so it stays unknown.
        hop = {"seq": seq, "label": "last-resort", "number": target, "at": dialled}
        hop["target"] = target
        outcome = hop_outcome(status, "", cause, require_accept=False)
        hop_end = {
            "at": ended,
            "dialstatus": status,
            "hangupcause": cause,
            "dialedtime": last.get("dialedtime"),
            "answeredtime": last.get("answeredtime"),
        }
        _hop(b, hop, {**hop_end, "outcome": outcome.value})
    if not target:
        call_outcome, detail = CallOutcome.FAILED, "AGI failed and no last-resort number in AstDB"
    elif status == "ANSWER":
        call_outcome, detail = CallOutcome.CONNECTED, f"last resort {target} answered"
    elif status == "CANCEL" or not status:
        call_outcome, detail = CallOutcome.ABANDONED, f"caller left while ringing {target}"
    else:
        call_outcome, detail = CallOutcome.NO_ONE, f"last resort {target}: {status}"
    detail += f" (AGI status {last.get('agi_status') or '-'}, dialplan fallback)"
    b.move(CallState.ENDED, detail, ended)
    b.events.append(CallEnded(b.call_id, call_outcome, _at(ended), detail))
    return call_outcome, detail, ended
