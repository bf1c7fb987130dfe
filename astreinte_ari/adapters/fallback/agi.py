"""The fallback AGI: rings the on-call cascade when the service does not take the call.

Run by Asterisk as AGI(astreinte-fallback,<did>,<config file>[,<spool dir>])
from [astreinte-fallback]. The plan for the DID comes from the plan cache the
service keeps in the spool (third argument, from AstDB) when it is current for
this YAML, else from the YAML itself with the service's own router (the
reference; those imports cost ~200 ms, so they are made only then). Each hop
is dialled with its ring timeout and the dial string the plan resolved for its
target (a mobile through the trunk, or a SIP endpoint of the PBX); the agent must press 1
(Dial U() gosub [astreinte-fallback-accept]) so that a personal voicemail never
takes the call; then voicemail (Record() to the spool). Every step is appended
(fsync'd) to <spool>/<UNIQUEID key>.jsonl, imported into the audit trail by
the service (watcher.py); a step the spool cannot take is logged and retried
with the next one, never a reason to stop ringing.

It sets ASTREINTE_FB_RESULT=done once the call is fully handled; anything
else (an exception, a missing Python) leaves the dialplan to ring the
last-resort number. Uses pyst2's `asterisk.agi` (its `fastagi` does not import
on Python 3), over stdin/stdout wrappers that cannot fail on caller bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from astreinte_ari.adapters.fallback.cascade import CallerInfo, FallbackCall, FallbackPbx
from astreinte_ari.adapters.fallback.plancache import CachedSetup, read_cached_setup
from astreinte_ari.callflow.outcomes import CallOutcome

RESULT_VAR = "ASTREINTE_FB_RESULT"
_VERBOSE_UNSAFE_RE = re.compile(r"[^ -~]|[\"\\]")  # AGI VERBOSE takes one quoted line


class UnknownLine(LookupError):
    """The DID is not a line of the configuration."""


def _setup_from_yaml(config_path: str, did: str, now: float) -> CachedSetup:
    # The heavy imports (pydantic, the config model) only when the cache cannot serve.
    from astreinte_ari.routing.router import build_plan
    from astreinte_ari.schedule.validate import load_checked_config

    config = load_checked_config(config_path)
    plan = build_plan(config, did, datetime.fromtimestamp(now, UTC))
    if plan is None:
        raise UnknownLine(f"DID {did!r} is not a configured line")
    return CachedSetup(plan, config.fallback_spool_dir, config.sounds_dir)


def resolve_setup(
    pbx: FallbackPbx, did: str, config_path: str, cache_dir: str, now: float
) -> tuple[CachedSetup, str]:
    """The plan for `did` at `now` and where it came from: cache | yaml | cache-last-good.

    Raises when there is none (unknown DID, broken YAML and no cache): the
    dialplan then rings the last-resort number.
    """
    if cache_dir:
        cached = read_cached_setup(cache_dir, config_path, did, now)
        if cached is not None:
            return cached, "cache"
    try:
        return _setup_from_yaml(config_path, did, now), "yaml"
    except UnknownLine:
        raise
    except Exception as exc:
        # A broken YAML edit: ring whom the last good version of this file named,
        # as the service does (it keeps the last good configuration live).
        if not cache_dir:
            raise
        cached = read_cached_setup(cache_dir, config_path, did, now, any_config=True)
        if cached is None:
            raise
        pbx.verbose(
            f"astreinte-fallback: configuration unusable ({type(exc).__name__}), "
            "using the plan cache of its last good version",
            1,
        )
        return cached, "cache-last-good"


def handle_call(
    pbx: FallbackPbx,
    env: Mapping[str, str],
    did: str,
    config_path: str,
    clock: Callable[[], float] = time.time,
    *,
    cache_dir: str = "",
) -> CallOutcome:
    """Resolve the plan for `did` now, run the cascade, set ASTREINTE_FB_RESULT=done.

    Raises on any problem before the cascade (configuration, unknown DID): the
    dialplan then rings the last-resort number. Spool problems never raise.
    """
    setup, source = resolve_setup(pbx, did, config_path, cache_dir, clock())
    try:
        setup.spool_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # read-only, permissions: the cascade still runs
        pbx.verbose(f"astreinte-fallback: spool {setup.spool_dir}: {exc.strerror or exc}", 1)
    caller = CallerInfo(
        channel=env.get("agi_channel", ""),
        uniqueid=env.get("agi_uniqueid", ""),
        number=env.get("agi_callerid", ""),
        name=env.get("agi_calleridname", ""),
    )
    call = FallbackCall(pbx, setup.plan, caller, setup.spool_dir, setup.sounds_dir, clock)
    call.plan_source = source
    outcome = call.run()
    pbx.set(RESULT_VAR, "done")
    if source == "yaml" and cache_dir:
        _refresh_cache(pbx, config_path, clock())
    return outcome


def _refresh_cache(pbx: FallbackPbx, config_path: str, now: float) -> None:
    """After a call that had to read the YAML (the caller is gone): make the next fast."""
    try:
        from astreinte_ari.adapters.fallback.plancache import refresh_plan_cache
        from astreinte_ari.schedule.validate import load_checked_config

        refresh_plan_cache(load_checked_config(config_path), datetime.fromtimestamp(now, UTC))
    except Exception as exc:
        pbx.verbose(f"astreinte-fallback: plan cache not written: {type(exc).__name__}", 1)


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

    def read_key(self, prompt: str, timeout_s: int) -> str:
        from asterisk.agi import AGIError

        try:  # GET OPTION: the prompt (cut by any key), then up to timeout ms for one
            return str(self.agi.get_option(prompt, "0123456789*#", timeout_s * 1000) or "")
        except AGIError:  # the prompt could not play, or the caller left: the Dial says
            return ""

    def verbose(self, message: str, level: int) -> None:
        text = _VERBOSE_UNSAFE_RE.sub("?", message)[:400]
        if level <= 1:  # problems also on stderr: Asterisk's console / the journal
            with contextlib.suppress(Exception):
                sys.stderr.write(text + "\n")
        with contextlib.suppress(Exception):
            self.agi.verbose(text, level)


def open_agi(stdin: io.BufferedIOBase, stdout: io.BufferedIOBase) -> Any:
    """pyst2's AGI over text wrappers that cannot fail on caller bytes.

    Asterisk passes caller data as raw bytes (an INVITE's `%FF%FE` arrives as
    0xFF 0xFE): the AGI environment is decoded with surrogateescape (stored
    escaped by the audit writer), pyst2's narration goes nowhere, and what we
    send back is encoded with replacement rather than raising.
    """
    from asterisk.agi import AGI

    text_in = io.TextIOWrapper(stdin, encoding="utf-8", errors="surrogateescape")
    text_out = io.TextIOWrapper(
        stdout, encoding="utf-8", errors="replace", line_buffering=True, write_through=True
    )
    quiet = open(os.devnull, "w", encoding="utf-8", errors="replace")  # noqa: SIM115 - process-long
    return AGI(stdin=text_in, stdout=text_out, stderr=quiet)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    did = args[0] if args else ""
    config_path = args[1] if len(args) > 1 else ""
    cache_dir = args[2] if len(args) > 2 else ""
    agi: Any = None
    try:
        agi = open_agi(sys.stdin.buffer, sys.stdout.buffer)
        pbx = Pyst2Pbx(agi)
        outcome = handle_call(pbx, agi.env, did, config_path, cache_dir=cache_dir)
        pbx.verbose(f"astreinte-fallback: {outcome.value}", 3)
    except Exception as exc:  # any failure: the dialplan takes the last resort
        message = f"astreinte-fallback failed: {type(exc).__name__}: {exc}"
        if agi is not None:
            Pyst2Pbx(agi).verbose(message, 1)
        else:
            with contextlib.suppress(Exception):
                sys.stderr.write(_VERBOSE_UNSAFE_RE.sub("?", message) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
