"""Calls no service ever took, as the dialplan recorded them (pure).

A caller who hangs up while the dialplan's watchdog is still armed was never
taken by a service: its StasisStart died unread with a killed or frozen
process, or an ARI link that dropped with it in flight. Asterisk's `h`
extension of [astreinte-inbound] then writes `<key>.unclaimed.json` to the
fallback spool (one line, caller data reduced to digits). This turns it into
the trail's record of the call: received, then abandoned before anyone took it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from astreinte_ari.adapters.fallback.spool import bounded, dialplan_time
from astreinte_ari.callflow.audit_events import AuditEvent, CallEnded, CallStarted, StateChanged
from astreinte_ari.callflow.causes import q850_text
from astreinte_ari.callflow.identity import call_id_for_channel
from astreinte_ari.callflow.outcomes import CallOutcome, CallState

UNCLAIMED_EVENT = "unclaimed"
UNCLAIMED_TRIGGER = "unclaimed"
UNKNOWN_LINE = "(unknown: no service took the call)"


def _at(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def unclaimed_step(steps: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The dialplan's unclaimed-call record among a call's spool steps, if any."""
    return next((s for s in steps if s.get("event") == UNCLAIMED_EVENT), None)


def unclaimed_detail(waited_s: float, cause: str) -> str:
    why = q850_text(int(cause)) if cause.isdigit() and int(cause) > 0 else ""  # 0: unknown
    left = f"caller hung up after {waited_s:.1f} s" + (f" ({why})" if why else "")
    return f"{left}, before any service took the call (none read it: stopped, frozen or cut off)"


def unclaimed_events(
    key: str,
    step: Mapping[str, Any],
    *,
    found_at: float,
    line_name: Callable[[str], str | None] = lambda did: None,
) -> tuple[list[AuditEvent], dict[str, Any]]:
    """The call's audit events, and the fields of its ImportedCall summary."""
    call_id = call_id_for_channel(key)
    ended = dialplan_time(step.get("ended")) or found_at
    started = dialplan_time(step.get("call_start")) or ended
    started = min(started, ended)
    did = str(step.get("did", ""))
    line = line_name(did) or UNKNOWN_LINE
    caller = bounded(str(step.get("caller_number", "")))
    detail = unclaimed_detail(ended - started, str(step.get("hangupcause", "")))
    events: list[AuditEvent] = [
        CallStarted(
            call_id=call_id,
            did=did,
            line_name=line,
            period="unknown",
            caller_number=caller,
            caller_name="",
            channel_id=bounded(str(step.get("channel", ""))),
            at=_at(started),
        ),
        StateChanged(call_id, 1, CallState.RECEIVED, CallState.ENDED, detail, _at(ended)),
        CallEnded(call_id, CallOutcome.ABANDONED, _at(ended), detail),
    ]
    summary = {
        "call_id": call_id,
        "did": did,
        "line_name": line if line != UNKNOWN_LINE else "",
        "caller_number": caller,
        "caller_name": "",
        "started_at": _at(started),
        "ended_at": _at(ended),
        "outcome": CallOutcome.ABANDONED,
        "last_state": CallState.RECEIVED,
        "detail": detail,
        "trigger": UNCLAIMED_TRIGGER,
    }
    return events, summary
