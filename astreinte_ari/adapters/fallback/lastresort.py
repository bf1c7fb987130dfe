"""Keep the dialplan's last-resort dial strings in AstDB, over ARI.

When even the fallback AGI cannot run, [astreinte-lastresort] dials
${DB(astreinte/lastresort/<did>)}. ARI refuses to write DB() directly
("Dangerous function DB write blocked" on POST /asterisk/variable, Asterisk
16), so the service originates a Local channel into [astreinte-publish],
whose dialplan does the Set(DB(...)=...) and hangs up. The values travel as
inherited channel variables and are filtered again by the dialplan.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from astreinte_ari.adapters.ari.client import AriClient
from astreinte_ari.adapters.fallback.plancache import refresh_plan_cache
from astreinte_ari.callflow.identity import PUBLISH_LEG
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.router import OnCallOverride, build_plan

log = logging.getLogger(__name__)

PUBLISH_CONTEXT = "astreinte-publish"
_DID_RE = re.compile(r"\+?[0-9]{1,40}")
_DIAL_TARGET_RE = re.compile(r"[A-Za-z0-9/+@._-]{1,200}")
_PATH_RE = re.compile(r"[A-Za-z0-9/._-]{1,400}")


def last_resort_target(config: AppConfig, did: str, now: datetime) -> str | None:
    """The dial string of whom the plan for `did` rings first at `now` (with a menu:
    its default choice's), a mobile through the trunk or a SIP endpoint of the PBX
    (resolved and allow-listed by the router, routing/targets.py); None if nobody."""
    plan = build_plan(config, did, now)
    if plan is not None and plan.menu is not None:  # no menu there: its default choice
        plan = plan.menu.default.plan
    if plan is None or not plan.hops:
        return None
    first = plan.hops[0]
    # A ring-all hop: its first person (the last-resort dialplan dials one plain
    # target; the AGI fallback before it rings every member at once).
    return first.members[0].dial_string if first.members else first.dial_string


async def run_publish(
    client: AriClient, extension: str, variables: dict[str, str], timeout_s: float
) -> str:
    """Run [astreinte-publish] <extension>; returns the value it hands back (AstDB
    read-back, or the `check` digits for `astreinte doctor`)."""
    token = uuid.uuid4().hex
    ack = f"ASTREINTE_PUB_{token}"
    # "_" prefix: inherited by the ;2 half of the Local channel, which runs the dialplan.
    body = {f"_{k}": v for k, v in {**variables, "ASTREINTE_PUB_TOKEN": token}.items()}
    await client.request(
        "POST",
        "/channels",
        params={
            "endpoint": f"Local/{extension}@{PUBLISH_CONTEXT}/n",
            "context": PUBLISH_CONTEXT,
            "extension": "done",
            "priority": 1,
            "timeout": 5,
            "channelId": f"{PUBLISH_LEG}{token[:12]}",
        },
        body={"variables": body},
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while loop.time() < deadline:
            reply = await client.request("GET", "/asterisk/variable", params={"variable": ack})
            value = str((reply or {}).get("value") or "")
            if value:
                return value
            await asyncio.sleep(0.05)
    finally:
        await client.request("POST", "/asterisk/variable", params={"variable": ack, "value": ""})
    raise TimeoutError(f"AstDB not updated within {timeout_s} s (is [{PUBLISH_CONTEXT}] loaded?)")


async def publish_last_resort(
    client: AriClient, did: str, dial_target: str, *, verify_timeout_s: float = 2.0
) -> None:
    """Write `dial_target` as the last resort for `did` and check it landed.

    `dial_target` must already be a plan's dial string (routing/targets.py, allow-listed);
    characters outside a dial string are refused here as well.
    Raises AriError / ValueError / TimeoutError / RuntimeError.
    """
    if not _DID_RE.fullmatch(did):
        raise ValueError(f"{did!r} is not a DID")
    if not _DIAL_TARGET_RE.fullmatch(dial_target):
        raise ValueError(f"{dial_target!r} is not a plain dial string")
    variables = {"ASTREINTE_PUB_DID": did, "ASTREINTE_PUB_VALUE": dial_target}
    stored = await run_publish(client, "lastresort", variables, verify_timeout_s)
    if stored != dial_target:
        raise RuntimeError(f"AstDB holds {stored!r} for {did}, not {dial_target!r}")


async def publish_spool_dir(
    client: AriClient, spool_dir: Path, *, verify_timeout_s: float = 2.0
) -> None:
    """Tell the dialplan where to record last-resort calls (the fallback spool)."""
    value = str(spool_dir)
    if not _PATH_RE.fullmatch(value):
        raise ValueError(f"{value!r}: use only letters, digits and / . _ - in the spool path")
    stored = await run_publish(client, "spooldir", {"ASTREINTE_PUB_VALUE": value}, verify_timeout_s)
    if stored != value:
        raise RuntimeError(f"AstDB holds {stored!r} as the spool dir, not {value!r}")


async def publish_fallback_settings(client: AriClient, config: AppConfig, now: datetime) -> int:
    """Spool dir + last resort of every line (service start, each handoff); returns
    how many lines have a last resort. Errors are raised for the caller to log."""
    await publish_spool_dir(client, config.fallback_spool_dir)
    count = 0
    for did in config.lines:
        target = last_resort_target(config, did, now)
        if target is not None:
            await publish_last_resort(client, did, target)
            count += 1
    return count


async def keep_fallback_published(
    client: AriClient,
    current_config: Callable[[], AppConfig],
    clock: Callable[[], datetime],
    interval_s: float = 60.0,
    on_call_override: OnCallOverride | None = None,
) -> None:
    """Republish whenever a line's first hop changes (handoff, override, config edit),
    and keep the AGI's plan cache current (plancache.py).

    Checked every `interval_s`; publishing costs a Local channel per line, so it
    only happens when something changed or the PBX was restarted (a fresh connect
    restarts this task). The cache is rewritten when the YAML changed or less
    than a day of it is left (in a thread: ~0.1 ms per line and minute).
    """
    published: dict[str, str | None] | None = None
    cache_failing = False
    while True:
        config = current_config()
        now = clock()
        targets = {did: last_resort_target(config, did, now) for did in config.lines}
        if targets != published:
            try:
                count = await publish_fallback_settings(client, config, now)
                published = targets
                log.info("fallback last resort published for %d line(s)", count)
            except Exception:
                log.exception("could not publish the fallback settings to Asterisk")
        try:
            if await asyncio.to_thread(
                refresh_plan_cache, config, now, on_call_override=on_call_override
            ):
                log.info("fallback plan cache written to %s", config.fallback_spool_dir)
            cache_failing = False
        except Exception as exc:
            # The AGI then reads the YAML (slower, same result): one line per streak.
            if not cache_failing:
                log.warning("fallback plan cache not written: %s", exc)
            cache_failing = True
        await asyncio.sleep(interval_s)
