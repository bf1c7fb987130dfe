"""One call in the fallback cascade: ring each hop (press 1 to accept), then voicemail.

Driven by agi.py over pyst2 (a scripted channel in tests). Each step is
appended to the call's spool file before the call goes on; a step the spool
cannot take is said in Asterisk's log and retried with the next one, never a
reason to stop ringing. Light imports only: the caller is waiting.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from astreinte_ari.adapters.fallback.spool import (
    SpoolFile,
    bounded,
    hop_outcome,
    log_summary,
    parse_epoch,
    spool_key,
)
from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.routing.menu import after_choice, apply_caller_route
from astreinte_ari.routing.plan import CallPlan, FinalAction, Hop

# Written by the accept gosub on the agent's leg, read back on the caller's.
KEY_VAR = "SHARED(ASTREINTE_FB_KEY)"
ANSWERED_VAR = "SHARED(ASTREINTE_FB_ANSWERED_AT)"
ACCEPTED_VAR = "SHARED(ASTREINTE_FB_ACCEPTED_AT)"
ACCEPT_GOSUB = "astreinte-fallback-accept"
# Values that go into Dial()'s option string: no , ^ ( ) | or spaces allowed.
_DIAL_SAFE_RE = re.compile(r"[A-Za-z0-9/+@._:-]+")
_WAV_HEADER = 44
_BYTES_PER_S = 16000  # 8 kHz, 16-bit mono (Record() to .wav)
_MIN_MESSAGE_S = 1.0
_ARRIVAL_MAX_AGE_S = 3600.0  # an older ASTREINTE_ARRIVED is not this call's


class FallbackPbx(Protocol):
    """What the fallback needs from the channel (pyst2 in production, a fake in tests)."""

    def exec_app(self, app: str, data: str) -> bool:
        """Run a dialplan application; False once the caller has hung up."""

    def get(self, name: str) -> str: ...

    def set(self, name: str, value: str) -> None: ...

    def verbose(self, message: str, level: int) -> None:
        """A line in Asterisk's log; never raises."""

    def read_key(self, prompt: str, timeout_s: int) -> str:
        """Play `prompt` (a key cuts it short), then wait `timeout_s` for one key; the
        key, or "" (none, the prompt failed, or the caller left)."""


@dataclass(frozen=True, slots=True)
class CallerInfo:
    channel: str
    uniqueid: str
    number: str  # untrusted
    name: str  # untrusted


class UnsafeValue(ValueError):
    """A configured value that cannot be put into a Dial() option string."""


def _safe(value: str) -> str:
    if not _DIAL_SAFE_RE.fullmatch(value):
        raise UnsafeValue(f"{value!r} cannot be passed to Dial()")
    return value


def dial_data(hop: Hop, plan: CallPlan, caller_channel: str, sounds_dir: Path) -> str:
    """Dial() arguments for one hop: ringback to the caller, press-1 gosub on answer."""
    options = "r"
    if hop.require_accept:
        prompt = _safe(str(sounds_dir / plan.language / plan.accept_prompt))
        args = "^".join((_safe(caller_channel), prompt, str(plan.accept_timeout_s)))
        options += f"U({ACCEPT_GOSUB}^{args})"
    # A ring-all hop dials its members at once (A&B): Dial's first to answer gets
    # the press-1 prompt, the others stop ringing then (not at the key, as in the service).
    dial = "&".join(_safe(part) for part in hop.dial_string.split("&"))
    return f"{dial},{hop.ring_timeout_s},{options}"


def _wav_seconds(path: Path) -> float:
    try:
        return max(0.0, (path.stat().st_size - _WAV_HEADER) / _BYTES_PER_S)
    except OSError:
        return 0.0


def _seconds(value: str) -> float:
    try:
        return max(0.0, float(value or 0))
    except ValueError:
        return 0.0


class FallbackCall:
    """One call handled by the fallback, step by step, each step spooled first."""

    def __init__(
        self,
        pbx: FallbackPbx,
        plan: CallPlan,
        caller: CallerInfo,
        spool_dir: Path,
        sounds_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pbx, self.plan, self.caller, self.clock = pbx, plan, caller, clock
        self.spool_dir, self.sounds_dir = spool_dir, sounds_dir
        self.key = spool_key(caller.uniqueid, f"{clock():.6f}")
        self.spool = SpoolFile(spool_dir / f"{self.key}.jsonl", on_error=self._spool_failed)
        self.plan_source = "yaml"

    def _spool_failed(self, exc: OSError, unwritten: int) -> None:
        # The cascade goes on: say so in Asterisk's log, retry with the next step.
        self.pbx.verbose(
            f"astreinte-fallback: spool write failed ({exc.strerror or exc}), "
            f"{unwritten} step(s) of call {self.key} kept for the next write",
            1,
        )

    def _record(self, event: str, at: float | None = None, **fields: Any) -> dict[str, Any]:
        return {
            "event": event,
            "uniqueid": self.key,
            "at": self.clock() if at is None else at,
            **fields,
        }

    def _log(self, event: str, at: float | None = None, **fields: Any) -> None:
        self.spool.append(self._record(event, at, **fields))

    def _end(
        self, outcome: CallOutcome, detail: str, at: float | None = None, **fields: Any
    ) -> None:
        self._log("end", at, outcome=outcome.value, detail=detail, **fields)
        for record in self.spool.pending:  # the disk stayed full: Asterisk's log keeps it
            self.pbx.verbose(f"astreinte-fallback: NOT spooled: {log_summary(record)}", 1)

    def _trigger(self) -> str:
        # Set by the dialplan's T extension: connected but did not take the call in time.
        if self.pbx.get("ASTREINTE_WATCHDOG_FIRED") == "1":
            return "watchdog"
        # Set by a draining service before it hands the channel over; any other
        # value is untrusted and ignored.
        if self.pbx.get("ASTREINTE_FB_TRIGGER") == "draining":
            return "draining"
        return "stasis"

    def run(self) -> CallOutcome:
        plan, now = self.plan, self.clock()
        arrived = parse_epoch(
            self.pbx.get("ASTREINTE_ARRIVED"), not_before=now - _ARRIVAL_MAX_AGE_S, not_after=now
        )
        # Queued, not written: it goes to disk with the first hop, in one fsync.
        self.spool.add(
            self._record(
                "call",
                now,
                arrived=arrived,
                did=plan.did,
                line_name=plan.line_name,
                period=plan.period.value,
                caller_number=bounded(self.caller.number),
                caller_name=bounded(self.caller.name),
                channel=bounded(self.caller.channel),
                trigger=self._trigger(),
                plan_source=self.plan_source,
            )
        )
        plan = self.plan = self._routed(plan)
        # Agents see the line's number, never the caller's (untrusted) identity.
        self.pbx.set("CALLERID(name)", "")
        self.pbx.set("CALLERID(num)", plan.agent_caller_id)
        for seq, hop in enumerate(plan.hops, 1):
            outcome, present, times = self._dial(seq, hop)
            if outcome in (HopOutcome.ACCEPTED, HopOutcome.CONNECTED):
                ended, talk_from = times
                result = CallOutcome(outcome.value)  # accepted | connected
                detail = f"{outcome.value}: talked with {hop.person_id}"
                self._end(result, detail, ended, talk_seconds=round(ended - talk_from, 3))
                return result
            if not present:
                self._end(CallOutcome.ABANDONED, f"abandoned at dialing (hop {seq})")
                return CallOutcome.ABANDONED
        if plan.final is FinalAction.VOICEMAIL:
            return self._voicemail()
        self.pbx.exec_app("Playback", str(self.sounds_dir / plan.language / "astreinte-no-one"))
        self._end(CallOutcome.NO_ONE, "every hop failed, no voicemail configured")
        return CallOutcome.NO_ONE

    def _routed(self, plan: CallPlan) -> CallPlan:
        """A listed caller: its route's line; else the menu's choice (the caller's
        key, none or a wrong one: the default), as in the service (routing/menu.py)."""
        plan = apply_caller_route(plan, self.caller.number)
        if plan.routed is None and plan.menu is not None:
            menu = plan.menu
            prompt = str(self.sounds_dir / plan.language / menu.prompt)
            key = self.pbx.read_key(_safe(prompt), menu.timeout_s)
            plan = after_choice(plan, menu, key[:1] or None)
        if plan.routed is not None:
            self._log("route", detail=bounded(plan.routed))
        return plan

    def _dial(self, seq: int, hop: Hop) -> tuple[HopOutcome, bool, tuple[float, float]]:
        """Ring one hop; (outcome, caller still there, (end, start of talk))."""
        started = self.clock()
        self._log(
            "hop",
            started,
            seq=seq,
            label=hop.label,
            person_id=hop.person_id,
            person_name=hop.person_name,
            number=hop.number,
            kind=hop.target.kind.value,
            target=hop.dial_string,
        )
        self.pbx.set(KEY_VAR, "")
        present = self.pbx.exec_app(
            "Dial", dial_data(hop, self.plan, self.caller.channel, self.sounds_dir)
        )
        ended = self.clock()
        status = self.pbx.get("DIALSTATUS")
        cause = self.pbx.get("HANGUPCAUSE")
        key = self.pbx.get(KEY_VAR)
        dialed, answered = self.pbx.get("DIALEDTIME"), self.pbx.get("ANSWEREDTIME")
        # Stamped by the gosub on the agent's leg; one older than this hop is a
        # previous hop's (the variables are not cleared between hops).
        answered_at = parse_epoch(self.pbx.get(ANSWERED_VAR), not_before=started, not_after=ended)
        accepted_at = None
        if key == "1":
            accepted_at = parse_epoch(
                self.pbx.get(ACCEPTED_VAR), not_before=started, not_after=ended
            )
        outcome = hop_outcome(status, key, cause, require_accept=hop.require_accept)
        if not present and outcome not in (HopOutcome.ACCEPTED, HopOutcome.CONNECTED):
            outcome = HopOutcome.CANCELLED  # the caller left before anyone took the call
        self._log(
            "hop_end",
            ended,
            seq=seq,
            dialstatus=status,
            hangupcause=cause,
            key=key,
            dialedtime=dialed,
            answeredtime=answered,
            answered_at=answered_at,
            accepted_at=accepted_at,
            outcome=outcome.value,
        )
        # Talk time runs from the key press (from the answer when none is needed).
        talk_from = accepted_at or answered_at or max(started, ended - _seconds(answered))
        return outcome, present, (ended, talk_from)

    def _voicemail(self) -> CallOutcome:
        plan = self.plan
        folder = self.spool_dir / "voicemail"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.pbx.verbose(f"astreinte-fallback: voicemail folder: {exc.strerror or exc}", 1)
        path = folder / f"{self.key}.wav"
        self._log("voicemail", path=str(path))
        greeting = str(self.sounds_dir / plan.language / plan.voicemail_greeting)
        record = (
            f"{_safe(str(path))},{plan.voicemail.max_silence_s},{plan.voicemail.max_duration_s},k"
        )
        if self.pbx.exec_app("Playback", greeting):
            present = self.pbx.exec_app("Record", record)
            if present:
                self.pbx.exec_app("Playback", str(self.sounds_dir / plan.language / plan.goodbye))
        seconds = _wav_seconds(path)
        if seconds >= _MIN_MESSAGE_S:
            self._end(
                CallOutcome.VOICEMAIL,
                f"message of {seconds:.1f} s",
                voicemail_path=str(path),
                voicemail_seconds=round(seconds, 1),
            )
            return CallOutcome.VOICEMAIL
        self._end(CallOutcome.VOICEMAIL_EMPTY, "reached voicemail, left no message")
        return CallOutcome.VOICEMAIL_EMPTY
