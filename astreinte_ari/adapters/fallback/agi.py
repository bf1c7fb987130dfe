"""The fallback AGI: rings the on-call cascade when the service is not connected.

Run by Asterisk as AGI(astreinte-fallback,<did>,<config file>) from the
[astreinte-fallback] context. It reads the same YAML as the service (no
database), resolves the plan for the DID with the service's own router, and
dials each hop through the trunk with its ring timeout; the agent must press 1
(Dial U() gosub [astreinte-fallback-accept]) so that a personal voicemail never
takes the call; then voicemail (Record() to the spool). Every step is appended
(fsync'd) to <spool>/<UNIQUEID>.jsonl, imported later into the audit trail.

It sets ASTREINTE_FB_RESULT=done once the call is fully handled; anything
else (an exception, a missing Python) leaves the dialplan to ring the
last-resort number. Uses pyst2's `asterisk.agi` (its `fastagi` does not import
on Python 3).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from astreinte_ari.adapters.fallback.records import SpoolFile, bounded, hop_outcome
from astreinte_ari.callflow.outcomes import CallOutcome, HopOutcome
from astreinte_ari.config.loader import load_config
from astreinte_ari.routing.plan import CallPlan, FinalAction, Hop
from astreinte_ari.routing.router import build_plan

RESULT_VAR = "ASTREINTE_FB_RESULT"
KEY_VAR = "SHARED(ASTREINTE_FB_KEY)"  # written by the accept gosub on the agent's leg
ACCEPT_GOSUB = "astreinte-fallback-accept"
# Values that go into Dial()'s option string: no , ^ ( ) | or spaces allowed.
_DIAL_SAFE_RE = re.compile(r"[A-Za-z0-9/+@._:-]+")
_WAV_HEADER = 44
_BYTES_PER_S = 16000  # 8 kHz, 16-bit mono (Record() to .wav)
_MIN_MESSAGE_S = 1.0


class FallbackPbx(Protocol):
    """What the fallback needs from the channel (pyst2 in production, a fake in tests)."""

    def exec_app(self, app: str, data: str) -> bool:
        """Run a dialplan application; False once the caller has hung up."""

    def get(self, name: str) -> str: ...

    def set(self, name: str, value: str) -> None: ...


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
    return f"{_safe(hop.dial_string)},{hop.ring_timeout_s},{options}"


def _wav_seconds(path: Path) -> float:
    try:
        return max(0.0, (path.stat().st_size - _WAV_HEADER) / _BYTES_PER_S)
    except OSError:
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
        name = re.sub(r"[^0-9.]", "", caller.uniqueid) or f"{clock():.6f}"
        self.spool = SpoolFile(spool_dir / f"{name}.jsonl")
        self.uniqueid = name

    def _log(self, event: str, **fields: Any) -> None:
        self.spool.append({"event": event, "uniqueid": self.uniqueid, "at": self.clock(), **fields})

    def _end(self, outcome: CallOutcome, detail: str, **fields: Any) -> None:
        self._log("end", outcome=outcome.value, detail=detail, **fields)

    def run(self) -> CallOutcome:
        plan = self.plan
        self._log(
            "call",
            did=plan.did,
            line_name=plan.line_name,
            period=plan.period.value,
            caller_number=bounded(self.caller.number),
            caller_name=bounded(self.caller.name),
            channel=self.caller.channel,
            # Set by the dialplan's T extension: the service was connected but did
            # not take the call in time (frozen), rather than not connected at all.
            trigger="watchdog" if self.pbx.get("ASTREINTE_WATCHDOG_FIRED") == "1" else "stasis",
        )
        # Agents see the line's number, never the caller's (untrusted) identity.
        self.pbx.set("CALLERID(name)", "")
        self.pbx.set("CALLERID(num)", plan.agent_caller_id)
        for seq, hop in enumerate(plan.hops, 1):
            outcome, present = self._dial(seq, hop)
            if outcome in (HopOutcome.ACCEPTED, HopOutcome.CONNECTED):
                talk = float(self.pbx.get("ANSWEREDTIME") or 0)
                result = CallOutcome(outcome.value)  # accepted | connected
                self._end(
                    result, f"{outcome.value}: talked with {hop.person_id}", talk_seconds=talk
                )
                return result
            if not present:
                self._end(CallOutcome.ABANDONED, f"abandoned at dialing (hop {seq})")
                return CallOutcome.ABANDONED
        if plan.final is FinalAction.VOICEMAIL:
            return self._voicemail()
        self.pbx.exec_app("Playback", str(self.sounds_dir / plan.language / "astreinte-no-one"))
        self._end(CallOutcome.NO_ONE, "every hop failed, no voicemail configured")
        return CallOutcome.NO_ONE

    def _dial(self, seq: int, hop: Hop) -> tuple[HopOutcome, bool]:
        self._log(
            "hop",
            seq=seq,
            label=hop.label,
            person_id=hop.person_id,
            person_name=hop.person_name,
            number=hop.number,
        )
        self.pbx.set(KEY_VAR, "")
        present = self.pbx.exec_app(
            "Dial", dial_data(hop, self.plan, self.caller.channel, self.sounds_dir)
        )
        status = self.pbx.get("DIALSTATUS")
        cause = self.pbx.get("HANGUPCAUSE")
        key = self.pbx.get(KEY_VAR)
        outcome = hop_outcome(status, key, cause, require_accept=hop.require_accept)
        if not present and outcome not in (HopOutcome.ACCEPTED, HopOutcome.CONNECTED):
            outcome = HopOutcome.CANCELLED  # the caller left before anyone took the call
        self._log(
            "hop_end",
            seq=seq,
            dialstatus=status,
            hangupcause=cause,
            key=key,
            dialedtime=self.pbx.get("DIALEDTIME"),
            answeredtime=self.pbx.get("ANSWEREDTIME"),
            outcome=outcome.value,
        )
        return outcome, present

    def _voicemail(self) -> CallOutcome:
        plan = self.plan
        folder = self.spool_dir / "voicemail"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.uniqueid}.wav"
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


def handle_call(
    pbx: FallbackPbx,
    env: Mapping[str, str],
    did: str,
    config_path: str,
    clock: Callable[[], float] = time.time,
) -> CallOutcome:
    """Load the configuration, resolve the plan for `did` now, run the cascade.

    Raises on any problem before the cascade (configuration, unknown DID): the
    dialplan then rings the last-resort number.
    """
    config = load_config(config_path)
    plan = build_plan(config, did, datetime.fromtimestamp(clock(), UTC))
    if plan is None:
        raise LookupError(f"DID {did!r} is not a configured line")
    spool_dir = config.fallback_spool_dir
    spool_dir.mkdir(parents=True, exist_ok=True)
    caller = CallerInfo(
        channel=env.get("agi_channel", ""),
        uniqueid=env.get("agi_uniqueid", ""),
        number=env.get("agi_callerid", ""),
        name=env.get("agi_calleridname", ""),
    )
    call = FallbackCall(pbx, plan, caller, spool_dir, config.sounds_dir, clock)
    outcome = call.run()
    pbx.set(RESULT_VAR, "done")
    return outcome


class Pyst2Pbx:
    """FallbackPbx over pyst2's AGI (stdin/stdout with Asterisk)."""

    def __init__(self, agi: Any) -> None:
        self.agi = agi

    def exec_app(self, app: str, data: str) -> bool:
        from asterisk.agi import AGIAppError

        try:
            self.agi.appexec(app, data)
        except AGIAppError:  # -1: the caller hung up (AGISIGHUP=no: no signal)
            return False
        return True

    def get(self, name: str) -> str:
        return str(self.agi.get_variable(name) or "")

    def set(self, name: str, value: str) -> None:
        self.agi.set_variable(name, value)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from asterisk.agi import AGI

    # pyst2 narrates every command on stderr: keep Asterisk's console quiet.
    agi = AGI(stderr=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    did = args[0] if args else ""
    config_path = args[1] if len(args) > 1 else ""
    try:
        outcome = handle_call(Pyst2Pbx(agi), agi.env, did, config_path)
    except Exception as exc:  # any failure: the dialplan takes the last resort
        sys.stderr.write(f"astreinte-fallback: {type(exc).__name__}: {exc}\n")
        with contextlib.suppress(Exception):
            agi.verbose(f"astreinte-fallback failed: {type(exc).__name__}", 1)
        return 1
    agi.verbose(f"astreinte-fallback: {outcome.value}", 3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
