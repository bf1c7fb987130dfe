"""The fallback's plan cache: who the AGI rings, precomputed minute by minute.

Loading and validating the YAML costs the AGI ~200 ms of imports (pydantic,
the config model, public holidays) while the caller waits for the first
mobile to ring. The service (and the AGI itself after a call that had to read
the YAML) writes `<spool_dir>/plan-cache.json`: for each line, the plans of
the next 36 hours as [from, to) segments, sampled every minute (rota handoffs,
overrides and business hours are minute-precise), bound to the SHA-256 of the
YAML it came from. The AGI uses it only when the YAML still has that hash and
`now` falls in a segment; otherwise it reads the YAML, which stays the
reference. Reading the cache needs only json, hashlib and routing.plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astreinte_ari.routing.plan import (
    AnnouncementMode,
    BusyAgents,
    CallerRoutePlan,
    CallPlan,
    DialTarget,
    FinalAction,
    Hop,
    MenuChoicePlan,
    MenuPlan,
    Period,
    RecordingPolicy,
    TargetKind,
    VoicemailPolicy,
)

if TYPE_CHECKING:
    import logging

    from astreinte_ari.config.model import AppConfig
    from astreinte_ari.routing.router import OnCallOverride

CACHE_NAME = "plan-cache.json"
# 2: hops carry a typed target (kind, address, dial string); 3: ring-all members;
# 4: a line's menu and caller routes, each with its target line's plan.
FORMAT = 4
HORIZON = timedelta(hours=36)
REFRESH_BEFORE = timedelta(hours=24)  # rewrite once less than this is left ahead
_STEP_S = 60


@dataclass(frozen=True, slots=True)
class CachedSetup:
    """What the AGI needs for one call, without the configuration."""

    plan: CallPlan
    spool_dir: Path
    sounds_dir: Path


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def plan_to_json(plan: CallPlan) -> dict[str, Any]:
    return asdict(plan)  # enums are StrEnums: they serialise as their values


def _target_from_json(data: Mapping[str, Any]) -> DialTarget:
    fields = dict(data)
    fields["kind"] = TargetKind(fields["kind"])
    fields["members"] = tuple(_target_from_json(m) for m in fields.get("members", ()))
    return DialTarget(**fields)


def _hop_from_json(data: Mapping[str, Any]) -> Hop:
    fields = dict(data)
    fields["target"] = _target_from_json(fields["target"])
    fields["members"] = tuple(_hop_from_json(m) for m in fields.get("members", ()))
    return Hop(**fields)


def plan_from_json(data: Mapping[str, Any]) -> CallPlan:
    """Raises (KeyError, TypeError, ValueError) on a cache from another version."""
    fields = dict(data)
    fields["period"] = Period(fields["period"])
    fields["final"] = FinalAction(fields["final"])
    fields["hops"] = tuple(_hop_from_json(hop) for hop in fields["hops"])
    fields["voicemail"] = VoicemailPolicy(**fields["voicemail"])
    fields["busy_agents"] = BusyAgents(fields.get("busy_agents", BusyAgents.SKIP))
    if fields.get("recording") is not None:
        fields["recording"] = RecordingPolicy(**fields["recording"])
    fields["announcement_mode"] = AnnouncementMode(fields.get("announcement_mode", "full"))
    menu = fields.get("menu")
    if menu is not None:
        choices = tuple(
            MenuChoicePlan(c["key"], c["label"], plan_from_json(c["plan"])) for c in menu["choices"]
        )
        fields["menu"] = MenuPlan(menu["prompt"], menu["timeout_s"], menu["default_key"], choices)
    fields["caller_routes"] = tuple(
        CallerRoutePlan(r["label"], tuple(r["callers"]), plan_from_json(r["plan"]))
        for r in fields.get("caller_routes", ())
    )
    return CallPlan(**fields)


def read_cached_setup(
    cache_dir: str | Path, config_path: str, did: str, now: float, *, any_config: bool = False
) -> CachedSetup | None:
    """The cached plan for `did` at `now`, or None (no cache, other configuration,
    out of range, unreadable). `any_config`: accept a cache made from an earlier
    version of this file (the YAML is broken now: its last good plan)."""
    try:
        with open(Path(cache_dir) / CACHE_NAME, encoding="utf-8") as fh:
            cache = json.load(fh)
        if cache.get("format") != FORMAT:
            return None
        if cache.get("config_path") != os.path.realpath(config_path):
            return None
        if not any_config and cache.get("config_sha256") != file_sha256(config_path):
            return None
        for start, end, index in cache["lines"].get(did, ()):
            if start <= now < end:
                return CachedSetup(
                    plan_from_json(cache["plans"][index]),
                    Path(cache["spool_dir"]),
                    Path(cache["sounds_dir"]),
                )
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    return None


def build_plan_cache(
    config: AppConfig,
    start: datetime,
    *,
    horizon: timedelta = HORIZON,
    on_call_override: OnCallOverride | None = None,
) -> dict[str, Any]:
    """The cache document for `config` from `start` (floored to the minute)."""
    import threading

    from astreinte_ari.routing import router

    first = int(start.timestamp()) // _STEP_S * _STEP_S
    count = int(horizon.total_seconds()) // _STEP_S
    plans: list[dict[str, Any]] = []
    index_of: dict[str, int] = {}
    lines: dict[str, list[list[float]]] = {}
    # Silence the router's per-sample log lines, in this thread only.
    builder = threading.get_ident()

    def quiet(record: logging.LogRecord) -> bool:
        return record.thread != builder

    router.log.addFilter(quiet)
    try:
        for did in config.lines:
            segments: list[list[float]] = []
            for step in range(count):
                at = first + step * _STEP_S
                plan = router.build_plan(
                    config, did, datetime.fromtimestamp(at, UTC), on_call_override=on_call_override
                )
                if plan is None:
                    continue
                data = plan_to_json(plan)
                key = json.dumps(data, sort_keys=True)
                if key not in index_of:
                    index_of[key] = len(plans)
                    plans.append(data)
                index = index_of[key]
                if segments and segments[-1][2] == index and segments[-1][1] == at:
                    segments[-1][1] = at + _STEP_S
                else:
                    segments.append([at, at + _STEP_S, index])
            lines[did] = segments
    finally:
        router.log.removeFilter(quiet)
    return {
        "format": FORMAT,
        "config_path": os.path.realpath(config.source_path),
        "config_sha256": file_sha256(config.source_path),
        "spool_dir": str(config.fallback_spool_dir),
        "sounds_dir": str(config.sounds_dir),
        "generated_at": start.timestamp(),
        "valid_until": first + count * _STEP_S,
        "plans": plans,
        "lines": lines,
    }


def _current(path: Path, config: AppConfig, now: datetime) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            cache = json.load(fh)
        return bool(
            cache.get("format") == FORMAT
            and cache.get("config_path") == os.path.realpath(config.source_path)
            and cache.get("config_sha256") == file_sha256(config.source_path)
            and cache.get("spool_dir") == str(config.fallback_spool_dir)
            and float(cache.get("valid_until", 0)) - now.timestamp()
            > REFRESH_BEFORE.total_seconds()
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def refresh_plan_cache(
    config: AppConfig,
    now: datetime,
    *,
    force: bool = False,
    on_call_override: OnCallOverride | None = None,
) -> bool:
    """Rewrite `<spool_dir>/plan-cache.json` unless it is current; True if written.

    Blocking (~0.1 ms per line and minute sampled): run it in a thread from the
    event loop. The write is atomic (temporary file + rename in the spool).
    `force`: rewrite anyway (e.g. an on-call replacement changed `on_call_override`).
    Raises OSError when the spool cannot be written.
    """
    spool = config.fallback_spool_dir
    path = spool / CACHE_NAME
    if not force and _current(path, config, now):
        return False
    import tempfile  # here, not at import: the AGI reads the cache, rarely writes it

    data = json.dumps(build_plan_cache(config, now, on_call_override=on_call_override))
    spool.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=spool, prefix=".plan-cache-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o640)  # the AGI runs as asterisk, in the spool's group
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m astreinte_ari.adapters.fallback.plancache CONFIG`: write the cache now."""
    import sys

    from astreinte_ari.schedule.validate import load_checked_config

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: plancache CONFIG_YAML", file=sys.stderr)
        return 2
    config = load_checked_config(args[0])
    refresh_plan_cache(config, datetime.now(UTC), force=True)
    print(f"plan cache written to {config.fallback_spool_dir / CACHE_NAME}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
