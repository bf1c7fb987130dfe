"""Webhooks: events delivered over HTTP in the background, retried with backoff.

The publisher is alerting's EventSink (alerting/ports.py). Each event goes to
every webhook subscribed to it as one background delivery: 2xx is delivered;
429/503 wait Retry-After (seconds or an HTTP date, capped) else the backoff;
other 5xx and network errors wait the backoff (doubled each time); any other
4xx is refused for good (logged, counted, not retried). Every try carries the
same idempotency key. With a spool (webhook_spool.py) a delivery still waiting
when the service stops is delivered again at the next start.

URLs and secrets are never logged: a webhook is named by its configuration name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import aiohttp

from astreinte_ari.adapters.notify.webhook_payloads import Target, build_request
from astreinte_ari.adapters.notify.webhook_spool import DeliverySpool
from astreinte_ari.alerting.ports import AlertEvent
from astreinte_ari.config import secrets
from astreinte_ari.config.alerting import WebhookConfig

log = logging.getLogger(__name__)
# result(channel, sent): the deliveries-by-channel-and-result counter, channel "webhook:<name>"
Result = Callable[[str, bool], None]
_WAIT_FOR = frozenset({429, 503})  # statuses whose Retry-After is honoured
_URL_RE = re.compile(r"^https?://\S+$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _secret(env: str | None, file: Path | None, *, what: str, setting: str) -> str:
    try:
        return secrets.resolve_secret(env, file, what=what)
    except secrets.SecretError:
        if file is not None:
            raise  # the file's own problem (unreadable, empty) says more
        where = f"environment variable {env}" if env else f"{setting}_env"
        raise secrets.SecretError(f"{what} not found: set {where} or give {setting}_file") from None


def matrix_retry_after(reply: bytes) -> float | None:
    """Matrix's rate limit answer: {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": N}."""
    try:
        asked = json.loads(reply).get("retry_after_ms")
    except (ValueError, AttributeError):
        return None
    return asked / 1000 if isinstance(asked, int | float) and asked >= 0 else None


def resolve_target(name: str, spec: WebhookConfig, base_dir: Path) -> Target:
    """The webhook with its URL and secrets read from the environment or files;
    raises SecretError naming the webhook and what is missing (never a value)."""

    def file(path: Path | None) -> Path | None:
        return base_dir / path if path is not None and not path.is_absolute() else path

    url = spec.url
    if url is None:
        url = _secret(
            spec.url_env, file(spec.url_file), what=f"URL of webhook {name}", setting="url"
        ).rstrip("/")
        if not _URL_RE.match(url):  # the value itself is a secret: not in the message
            source = f"environment variable {spec.url_env}" if spec.url_env else spec.url_file
            raise secrets.SecretError(f"URL of webhook {name} from {source} is not an http(s) URL")
    secret = token = None
    if spec.kind == "generic":
        what = f"signing secret of webhook {name}"
        secret = _secret(spec.secret_env, file(spec.secret_file), what=what, setting="secret")
    if spec.kind == "matrix":
        what = f"access token of webhook {name}"
        token = _secret(spec.token_env, file(spec.token_file), what=what, setting="token")
    return Target(
        name=name,
        kind=spec.kind,
        url=url,
        secret=secret.encode() if secret else None,
        room=spec.room,
        token=token,
        headers=tuple((key, _with_env(value, name, key)) for key, value in spec.headers.items()),
    )


def _with_env(value: str, webhook: str, header: str) -> str:
    def env(m: re.Match[str]) -> str:
        found = os.environ.get(m.group(1))
        if found is None:
            raise secrets.SecretError(
                f"environment variable {m.group(1)} (header {header} of webhook {webhook}) "
                "is not set"
            )
        return found

    return _ENV_RE.sub(env, value)


class WebhookPublisher:
    """alerting's EventSink: one background delivery per (event, subscribed webhook)."""

    def __init__(
        self,
        webhooks: Mapping[str, WebhookConfig],
        targets: Mapping[str, Target],
        *,
        on_result: Result | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        spool: DeliverySpool | None = None,
    ) -> None:
        self._webhooks = dict(webhooks)
        self._spool = spool
        self._targets = dict(targets)
        self._on_result = on_result
        self._clock = clock
        self._tasks: set[asyncio.Task[bool]] = set()
        self._delivering: set[tuple[str, str]] = set()  # (webhook, event id) in flight
        self._session: aiohttp.ClientSession | None = None

    def wants(self, event: str) -> bool:
        return any(spec.wants(event) for spec in self._webhooks.values())

    def publish(self, event: AlertEvent) -> None:
        for name, spec in self._webhooks.items():
            if spec.wants(event.event):
                self._keep(name, event)
                self._start(name, event)

    def resume(self) -> int:
        """Deliver what waits in the spool and nobody here is delivering (left by the
        previous process, or by `astreinte alerts ack`); how many."""
        if self._spool is None:
            return 0
        resumed = 0
        for name, event, tries in self._spool.pending():
            if (name, event.id) in self._delivering:
                continue
            spec = self._webhooks.get(name)
            if spec is None or not spec.wants(event.event):
                log.warning(
                    "webhook %s: %s %s dropped: no longer configured", name, event.event, event.id
                )
                self._spool.done(name, event.id)
                continue
            self._start(name, event, tries)
            resumed += 1
        if resumed:
            log.info("webhooks: %d spooled delivery(ies) picked up", resumed)
        return resumed

    def _keep(self, name: str, event: AlertEvent) -> None:
        if self._spool is None:
            return
        try:
            self._spool.save(name, event)
        except OSError as exc:  # delivered anyway, only not kept across a restart
            log.error("webhook %s: %s %s not spooled: %s", name, event.event, event.id, exc)

    def _start(self, name: str, event: AlertEvent, tries: int = 0) -> None:
        self._delivering.add((name, event.id))
        task = asyncio.ensure_future(self._deliver_once(name, event, tries))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_once(self, name: str, event: AlertEvent, tries: int) -> bool:
        try:
            delivered = await self.deliver(name, event, tries)
        except Exception:  # a bug here must not leave a task error unread, nor retry forever
            log.exception("webhook %s: %s %s delivery crashed", name, event.event, event.id)
            self._count(f"webhook:{name}", sent=False)
            delivered = False
        self._delivering.discard((name, event.id))
        if self._spool is not None:  # ended either way; a cancelled one stays for the next start
            try:
                self._spool.done(name, event.id)
            except OSError as exc:
                log.error("webhook %s: spool file of %s not removed: %s", name, event.id, exc)
        return delivered

    def in_flight(self) -> int:
        return len(self._tasks)

    async def deliver(self, name: str, event: AlertEvent, tries: int = 0) -> bool:
        """Deliver `event` to webhook `name`, retrying as configured; True if delivered.
        `tries`: tries that failed before (a spooled delivery): only the rest are made."""
        spec, target = self._webhooks[name], self._targets[name]
        channel = f"webhook:{name}"
        delay = float(spec.backoff) * 2 ** min(tries, 16)
        last = f"its {tries} tries were made before a restart"
        for attempt in range(tries + 1, spec.retries + 2):
            outcome, wait = await self._try(spec, target, event)
            if outcome == "delivered":
                log.info(
                    "webhook %s: %s %s delivered (try %d)", name, event.event, event.id, attempt
                )
                self._count(channel, sent=True)
                return True
            last = outcome
            if wait is None or attempt > spec.retries:
                break
            wait = min(wait if wait >= 0 else delay, float(spec.max_wait))
            delay *= 2
            self._keep_tries(name, event, attempt)
            log.warning(
                "webhook %s: %s %s try %d failed (%s), again in %.1f s",
                *(name, event.event, event.id, attempt, outcome, wait),
            )
            await asyncio.sleep(wait)
        log.error("webhook %s: %s %s NOT delivered: %s", name, event.event, event.id, last)
        self._count(channel, sent=False)
        return False

    def _keep_tries(self, name: str, event: AlertEvent, tries: int) -> None:
        """Keep the failed tries with the spooled delivery: a restart goes on from there."""
        if self._spool is None or (name, event.id) not in self._delivering:
            return
        try:
            self._spool.save(name, event, tries)
        except OSError as exc:  # retried anyway; a restart would only start over
            log.error("webhook %s: try count of %s not kept: %s", name, event.id, exc)

    async def _try(
        self, spec: WebhookConfig, target: Target, event: AlertEvent
    ) -> tuple[str, float | None]:
        """One request: ("delivered", None), or what failed and the wait before the next
        try (-1: the backoff; None: do not retry)."""
        request = build_request(target, event, str(int(time.time())))
        session = self._session_open()
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=aiohttp.ClientTimeout(total=spec.timeout),
                allow_redirects=False,  # a redirect would resend the body elsewhere
            ) as response:
                reply = await response.read()
                status = response.status
                if 200 <= status < 300:
                    return "delivered", None
                if status in _WAIT_FOR:
                    asked = retry_after(response.headers.get("Retry-After"), self._clock())
                    if asked is None and target.kind == "matrix":
                        asked = matrix_retry_after(reply)
                    return f"HTTP {status}", -1.0 if asked is None else asked
                if status >= 500 or status == 408:
                    return f"HTTP {status}", -1.0
                return f"HTTP {status} (refused, not retried)", None
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The exception text may hold the URL (a secret for Slack/Teams): its type only.
            return type(exc).__name__, -1.0

    def _session_open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def _count(self, channel: str, *, sent: bool) -> None:
        if self._on_result is not None:
            self._on_result(channel, sent)

    async def drain(self, timeout: float) -> None:
        """Wait for the deliveries in flight (tests, graceful stop)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def close(self, timeout: float = 2.0) -> None:
        """Let quick deliveries finish; those still waiting for a retry stay in the spool
        for the next start (without a spool they are lost: logged)."""
        await self.drain(timeout)
        if self._tasks:
            if self._spool is not None:
                log.warning(
                    "webhooks: %d delivery(ies) pending at stop: resumed at the next start",
                    len(self._tasks),
                )
            else:
                log.error("webhooks: %d delivery(ies) pending at stop: lost", len(self._tasks))
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def build_publisher(
    webhooks: Mapping[str, WebhookConfig],
    base_dir: Path,
    on_result: Result | None = None,
    spool_dir: Path | None = None,
) -> WebhookPublisher:
    """Raises config.secrets.SecretError naming the webhook whose secret is missing.
    `spool_dir`: where deliveries wait across restarts (None: in memory only)."""
    targets = {name: resolve_target(name, spec, base_dir) for name, spec in webhooks.items()}
    spool = DeliverySpool(spool_dir) if spool_dir is not None else None
    if spool is not None:
        spool.ensure_folder()  # the service's own folder, before any CLI writes into it
    return WebhookPublisher(webhooks, targets, on_result=on_result, spool=spool)
