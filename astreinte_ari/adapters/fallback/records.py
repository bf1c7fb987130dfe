"""Fallback call records: the JSON-lines spool format and its audit events (pure).

The AGI (and, for the last resort, the dialplan) append one JSON object per
step of a call to a spool file; when the service is back it turns each call's
steps into the same audit events the call flow emits. Everything here is
deterministic (ids derive from Asterisk's UNIQUEID) so that importing twice
writes nothing twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

SPOOL_SUFFIX = ".jsonl"  # written by the AGI, one per call
LASTRESORT_SUFFIX = ".lastresort.json"  # written by the dialplan (FILE()), one line
CALLER_MAX = 256  # caller data is untrusted: bounded here, escaped by JSON
# Q.850 cause 21 = call rejected (603/403); others behind CONGESTION are "unreachable".
_CAUSE_REJECTED = 21


def call_id_for(uniqueid: str) -> str:
    """The audit call id of a fallback call: the same id the service gives that channel."""
    return call_id_for_channel(uniqueid)


def bounded(value: str | None, limit: int = CALLER_MAX) -> str:
    return (value or "")[:limit]


class SpoolFile:
    """Append-only JSON lines, each fsync'd before the call goes on."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: Mapping[str, Any]) -> None:
        # ensure_ascii: caller names with control or non-UTF-8 bytes stay one safe line.
        line = json.dumps(dict(record), ensure_ascii=True, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)


def hop_outcome(
    dialstatus: str, key: str, hangupcause: str = "", *, require_accept: bool = True
) -> HopOutcome:
    """Dial's DIALSTATUS (+ the key the agent pressed at the prompt) -> hop outcome.

    `key` is "" when the prompt never ran, "none" when the agent answered but
    pressed nothing (typically a personal voicemail), else the digit.
    """
    if key == "1" and require_accept:
        return HopOutcome.ACCEPTED
    if key == "none":
        return HopOutcome.NOT_ACCEPTED
    if key:
        return HopOutcome.DECLINED
    match dialstatus:
        case "ANSWER":
            # With press-1 required, an answer without a key means the caller left
            # during the prompt (the agent never accepted).
            return HopOutcome.CONNECTED if not require_accept else HopOutcome.CANCELLED
        case "BUSY":
            return HopOutcome.BUSY
        case "NOANSWER":
            return HopOutcome.NO_ANSWER
        case "CANCEL":
            return HopOutcome.CANCELLED
        case "CONGESTION" | "CHANUNAVAIL":
            cause = int(hangupcause) if hangupcause.isdigit() else 0
            return HopOutcome.REJECTED if cause == _CAUSE_REJECTED else HopOutcome.UNREACHABLE
        case _:
            return HopOutcome.FAILED


def _at(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _int(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() else None


@dataclass
class _Builder:
    call_id: str
    events: list[AuditEvent] = field(default_factory=list)
    seq: int = 0
    state: CallState = CallState.RECEIVED

    def move(self, to: CallState, reason: str, at: datetime) -> None:
        self.seq += 1
        self.events.append(StateChanged(self.call_id, self.seq, self.state, to, reason, at))
        self.state = to


def _hop_events(b: _Builder, start: Mapping[str, Any], end: Mapping[str, Any] | None) -> None:
    hop_id = f"{b.call_id}-h{int(start['seq'])}"
    at = _at(start["at"])
    b.events.append(
        HopStarted(
            call_id=b.call_id,
            hop_id=hop_id,
            seq=int(start["seq"]),
            label=str(start.get("label", "")),
            person_id=str(start.get("person_id", "")),
            person_name=str(start.get("person_name", "")),
            number=str(start.get("number", "")),
            at=at,
        )
    )
    if end is None:
        b.events.append(HopEnded(hop_id, HopOutcome.FAILED, at, cause_text="no result recorded"))
        return
    ended = _at(end["at"])
    dialed, answered = float(end.get("dialedtime") or 0), float(end.get("answeredtime") or 0)
    if end.get("dialstatus") == "ANSWER" or end.get("key"):
        b.events.append(
            HopProgress(hop_id, "answered", _at(float(start["at"]) + dialed - answered))
        )
    outcome = HopOutcome(end["outcome"])
    if outcome is HopOutcome.ACCEPTED:
        b.events.append(HopProgress(hop_id, "accepted", _at(end.get("accepted_at", end["at"]))))
    status = f"DIALSTATUS={end.get('dialstatus') or '-'}"
    b.events.append(
        HopEnded(
            hop_id,
            outcome,
            ended,
            cause_code=_int(end.get("hangupcause")),
            cause_text=status,
            dtmf=(end.get("key") or None) if end.get("key") != "none" else None,
        )
    )
    if outcome in (HopOutcome.ACCEPTED, HopOutcome.CONNECTED):
        b.events.append(CallAnswered(b.call_id, hop_id, str(start.get("person_id", "")), ended))


def call_audit_events(uniqueid: str, steps: Sequence[Mapping[str, Any]]) -> list[AuditEvent]:
    """Audit events for one fallback call from its spool steps (AGI, then last resort).

    A call with neither an `end` nor a `lastresort` step is reported as failed:
    the caller only imports such a call once its file is stale.
    """
    b = _Builder(call_id_for(uniqueid))
    call = next((s for s in steps if s.get("event") == "call"), None)
    last = next((s for s in steps if s.get("event") == "lastresort"), None)
    end = next((s for s in steps if s.get("event") == "end"), None)
    first = call or last or steps[0]
    start_at = _at(first.get("at") if call else (first.get("call_start") or first.get("at")))
    b.events.append(
        CallStarted(
            call_id=b.call_id,
            did=str(first.get("did", "")),
            line_name=str(call.get("line_name", "")) if call else "(unknown: fallback AGI failed)",
            period=str(call.get("period", "")) if call else "unknown",
            caller_number=bounded(str(first.get("caller_number", ""))),
            caller_name=bounded(str(first.get("caller_name", ""))),
            channel_id=str(first.get("channel", "")),
            at=start_at,
        )
    )
    if call and call.get("trigger") == "watchdog":
        reason = "service connected but did not take the call in time: dialplan fallback (AGI)"
    else:
        reason = "service not connected: dialplan fallback (AGI)"
    b.move(CallState.DIALING, reason if call else "service not connected, AGI failed", start_at)
    hop_ends = {int(s["seq"]): s for s in steps if s.get("event") == "hop_end"}
    hops = [s for s in steps if s.get("event") == "hop"]
    for hop in hops:
        _hop_events(b, hop, hop_ends.get(int(hop["seq"])))
    for step in steps:
        if step.get("event") == "voicemail":
            b.move(CallState.RECORDING, "every hop failed: voicemail (fallback)", _at(step["at"]))
    if end is not None:
        outcome = CallOutcome(end["outcome"])
        ended, detail = _at(end["at"]), f"{end.get('detail', '')} (dialplan fallback)"
        voicemail = end.get("voicemail_path") or None
        b.move(CallState.ENDED, detail, ended)
        b.events.append(
            CallEnded(
                b.call_id,
                outcome,
                ended,
                detail,
                talk_seconds=end.get("talk_seconds"),
                voicemail_path=voicemail,
                voicemail_seconds=end.get("voicemail_seconds"),
            )
        )
        return b.events
    if last is not None:
        _last_resort_events(b, last, seq=len(hops) + 1)
        return b.events
    at = _at(steps[-1].get("at", first.get("at")))
    detail = "fallback record incomplete: the AGI stopped before the end of the call"
    b.move(CallState.ENDED, detail, at)
    b.events.append(CallEnded(b.call_id, CallOutcome.FAILED, at, detail))
    return b.events


def _last_resort_events(b: _Builder, last: Mapping[str, Any], *, seq: int) -> None:
    ended = _at(last.get("ended") or last.get("at"))
    target = str(last.get("target", ""))
    status, cause = str(last.get("dialstatus", "")), str(last.get("hangupcause", ""))
    if target:
        hop = {"seq": seq, "label": "last-resort", "number": target, "at": last.get("at")}
        outcome = hop_outcome(status, "", cause, require_accept=False)
        hop_end = {"at": ended.timestamp(), "dialstatus": status, "hangupcause": cause}
        _hop_events(b, hop, {**hop_end, "outcome": outcome.value})
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
    b.events.append(CallEnded(b.call_id, call_outcome, ended, detail))
