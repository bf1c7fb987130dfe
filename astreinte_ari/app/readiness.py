"""Is the running service ready to take on-call calls? The answer of /readyz, the
STATUS= line `systemctl status` shows, and the "astreinte ready" / "astreinte NOT
ready" lines of the log all come from one evaluation of these checks:

- ari: the websocket is connected (and GET /asterisk/info answers: the version);
- application: the ARI application is registered (GET /applications/<app>);
- sip_transport: Asterisk itself answers SIP at pbx.sip (health.py says why a probe);
- trunk: the trunk's PJSIP endpoint is not offline, when trunk.dial names one;
- storage: the database takes writes, or else the audit journal can (calls are
  journalled while the database is away, so either one keeps the trail).

systemd gets READY=1 once calls are taken over ARI (ari + application): holding it
back for a deaf transport or an offline trunk would have systemd kill and restart
a service that restarting cannot help, and that still serves what does get through.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlalchemy import Engine, text

from astreinte_ari.adapters.ari.client import AriClient, AriError
from astreinte_ari.adapters.pbx.checks import (
    ARI_TIMEOUT_S,
    Check,
    check_application,
    check_sip_transport,
    check_trunk,
)
from astreinte_ari.adapters.store.migrate import mask_url
from astreinte_ari.adapters.systemd import SystemdNotifier
from astreinte_ari.aio import within
from astreinte_ari.config.model import AppConfig

log = logging.getLogger("astreinte_ari.app.compose")

CACHE_S = 10.0  # /readyz answers from a report this recent (each SIP probe is a PBX log line)
RECHECK_S = 300.0  # besides every ARI (dis)connection
STORAGE_TIMEOUT_S = 3.0
MIN_FREE_BYTES = 1 << 20
_CALLS_TAKEN = ("ari", "application")


def database_writable(engine: Engine) -> None:
    """Raises unless the database takes a write (a no-op update, rolled back): a
    read-only file, a full disk or a read-only replica fail here."""
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
        finally:
            transaction.rollback()


def journal_problem(directory: Path) -> str | None:
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"journal {directory} is not writable"
    st = os.statvfs(directory)
    if st.f_bavail * st.f_frsize < MIN_FREE_BYTES:
        return f"journal {directory}: disk full"
    return None


async def check_storage(engine: Engine, journal_dir: Path) -> Check:
    try:
        await within(asyncio.to_thread(database_writable, engine), STORAGE_TIMEOUT_S)
        database = None
    except TimeoutError:
        database = f"database {mask_url(engine.url)} did not answer within {STORAGE_TIMEOUT_S:g} s"
    except Exception as exc:  # any driver error: the reason goes to the report
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        database = f"database {mask_url(engine.url)} refuses writes: {reason}"
    journal = journal_problem(journal_dir)
    if database is None:
        also = journal or f"journal {journal_dir} writable"
        return Check("storage", True, f"database {mask_url(engine.url)} writable; {also}")
    if journal is None:
        return Check("storage", True, f"{database}; calls are journalled in {journal_dir}")
    return Check(
        "storage",
        False,
        f"{database}; {journal}: no audit record can be kept",
        "free disk space / restart the database; see the service's log",
    )


@dataclass(frozen=True, slots=True)
class ReadyReport:
    checks: tuple[Check, ...]
    at: datetime
    # This node, its role and every node's heartbeat (app/cluster.py ClusterNode.view);
    # informative: a follower is as ready to take calls as the leader.
    cluster: dict[str, object] | None = None

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def taking_calls(self) -> bool:
        """ARI connected and the application registered: Stasis() reaches the service."""
        return all(c.ok for c in self.checks if c.name in _CALLS_TAKEN)

    def key(self) -> tuple[tuple[str, bool, str], ...]:
        """What changes the verdict (details of passing checks, e.g. free space, do not)."""
        return tuple((c.name, c.ok, "" if c.ok else c.detail) for c in self.checks)

    def summary(self) -> str:
        if self.ready:
            return "ready: " + "; ".join(f"{c.name}: {c.detail}" for c in self.checks)
        return "NOT ready: " + "; ".join(f"{c.name}: {c.detail}" for c in self.checks if not c.ok)

    def as_json(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "checked_at": self.at.isoformat(timespec="milliseconds"),
            "checks": [c.as_json() for c in self.checks],
            **({"cluster": self.cluster} if self.cluster is not None else {}),
        }


async def _safe(name: str, check: Awaitable[Check]) -> Check:
    try:
        return await check
    except Exception as exc:  # a bug in a check must not make /readyz answer 500
        log.exception("readiness check %s failed", name)
        return Check(name, False, f"check failed: {exc!r}")


async def _unknown(name: str) -> Check:
    return Check(name, False, "not checked: ARI not connected")


class Readiness:
    """Evaluates the checks; concurrent askers share one evaluation, and a recent
    report is reused (`max_age_s`)."""

    def __init__(
        self,
        client: AriClient,
        config: Callable[[], AppConfig],
        engine: Engine,
        journal_dir: Path,
        *,
        version: str | None = None,
        cluster_view: Callable[[], dict[str, object]] | None = None,
    ) -> None:
        self._client = client
        self._cluster_view = cluster_view
        self._config = config
        self._engine = engine
        self._journal_dir = journal_dir
        self.version = version  # last seen over ARI: the probe compares the SIP Server with it
        self._last: tuple[float, ReadyReport] | None = None
        self._running: asyncio.Future[ReadyReport] | None = None

    async def report(self, max_age_s: float = CACHE_S) -> ReadyReport:
        if self._last is not None and time.monotonic() - self._last[0] <= max_age_s:
            if self._cluster_view is not None:  # cheap, in memory: always current
                return dataclasses.replace(self._last[1], cluster=self._cluster_view())
            return self._last[1]
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._evaluate())
        # Shielded: a /readyz client that goes away must not cancel the shared run.
        return await asyncio.shield(self._running)

    async def _ari(self, config: AppConfig) -> Check:
        if not self._client.connected.is_set():
            why = self._client.last_error or "connecting"
            return Check("ari", False, f"not connected to {config.ari.url}: {why}")
        try:
            info = await within(self._client.asterisk_info(), ARI_TIMEOUT_S)
        except (AriError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            return Check("ari", False, f"{config.ari.url} does not answer: {exc or 'timeout'}")
        self.version = str((info.get("system") or {}).get("version") or self.version or "")
        return Check("ari", True, f"connected to {config.ari.url} (Asterisk {self.version})")

    async def _evaluate(self) -> ReadyReport:
        config = self._config()
        ari = await _safe("ari", self._ari(config))
        storage = _safe("storage", check_storage(self._engine, self._journal_dir))
        sip = _safe("SIP transport", check_sip_transport(config, self.version))
        if ari.ok:
            app = _safe("application", check_application(self._client, config.ari.app))
            trunk = _safe("trunk", check_trunk(self._client, config))
        else:
            app = _unknown("application")
            trunk = _unknown("trunk")
        checks = await asyncio.gather(app, sip, trunk, storage)  # in parallel
        cluster = self._cluster_view() if self._cluster_view is not None else None
        report = ReadyReport((ari, *checks), datetime.now(UTC), cluster)
        self._last = (time.monotonic(), report)
        return report


async def keep_readiness(
    readiness: Readiness,
    notifier: SystemdNotifier,
    wake: asyncio.Event,
    *,
    every_s: float = RECHECK_S,
) -> None:
    """Re-evaluate at each `wake` (ARI connected or lost) and every `every_s`; log each
    change of verdict, keep systemd's STATUS= current, send READY=1 once calls are taken."""
    announced: tuple[tuple[str, bool, str], ...] | None = None
    told_ready = False
    while True:
        with contextlib.suppress(TimeoutError):
            await within(wake.wait(), every_s)
        wake.clear()
        report = await readiness.report(max_age_s=0)
        status = report.summary()
        if report.taking_calls and not told_ready:
            told_ready = notifier.ready(status) or not notifier.enabled
        else:
            notifier.status(status)
        if report.key() != announced:
            announced = report.key()
            if report.ready:
                log.info("astreinte %s", status)
            else:
                log.error("astreinte %s", status)
