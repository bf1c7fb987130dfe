"""The one place where real edges (ARI, database, files) are built and injected."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from astreinte_ari.adapters.ari.client import AriClient
from astreinte_ari.adapters.ari.events import bridge_from_json, channel_from_json, event_from_json
from astreinte_ari.adapters.ari.telephony import AriTelephony
from astreinte_ari.adapters.store.journal import JournaledAuditWriter
from astreinte_ari.adapters.store.migrate import create_db_engine, ensure_migrated
from astreinte_ari.callflow.runtime import SoundLibrary
from astreinte_ari.callflow.telephony import DialRefused, Resynced
from astreinte_ari.config.model import AppConfig, NumberNotAllowed
from astreinte_ari.routing.plan import CallPlan
from astreinte_ari.routing.router import build_plan
from astreinte_ari.service import OnCallService

log = logging.getLogger(__name__)

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
GRACEFUL_STOP_S = 30.0


class StartupError(Exception):
    """The service cannot start; the message says how to fix it."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class FileVoicemailStore:
    """Voicemail messages as WAV files under recordings_dir/YYYY/MM/<call>.wav."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, call_id: str, data: bytes, at: datetime) -> str:
        folder = self.root / f"{at:%Y}" / f"{at:%m}"
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{call_id}.wav"
        tmp = final.with_suffix(".part")
        # Write, fsync, rename: a crash never leaves half a message under the final name.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        return str(final)


def check_ari_url(url: str) -> None:
    """The ARI login is PBX-admin: plain HTTP only to this machine."""
    parts = urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        raise StartupError(
            f"ari.url {url!r} sends the PBX admin password in clear over the network: "
            "use https:// or run the service on the Asterisk host (127.0.0.1)"
        )


def dial_guard(config: AppConfig):  # type: ignore[no-untyped-def]
    def dial_string_for(number: str) -> str:
        try:
            return config.trunk.dial_string(number)
        except NumberNotAllowed as exc:
            log.error("refused to dial %r: %s", number, exc)
            raise DialRefused(str(exc)) from exc

    return dial_string_for


async def run_service(config: AppConfig, stop: asyncio.Event | None = None) -> int:
    check_ari_url(config.ari.url)
    engine = create_db_engine(config.database_url())
    ensure_migrated(engine)  # raises DatabaseNotMigrated with the fix command
    config.recordings_dir.mkdir(parents=True, exist_ok=True)
    # Journal first: audit events survive a database outage and a crash during it.
    writer = JournaledAuditWriter(engine, config.journal_dir)
    client = AriClient(config.ari.url, config.ari.username, config.ari_password(), config.ari.app)
    telephony = AriTelephony(client, dial_guard(config))

    def plan_for(did: str, now: datetime) -> CallPlan | None:
        return build_plan(config, did, now)

    service = OnCallService(
        port=telephony,
        audit=writer,
        sounds=SoundLibrary(PurePosixPath(config.sounds_dir)),
        voicemail=FileVoicemailStore(config.recordings_dir),
        plan_for=plan_for,
        clock=utcnow,
    )

    async def on_message(data: dict[str, object]) -> None:
        event = event_from_json(data)
        if event is not None:
            await service.handle(event)

    async def on_connect() -> None:
        channels = tuple(channel_from_json(c) for c in await client.list_channels())
        bridges = tuple(bridge_from_json(b) for b in await client.list_bridges())
        await service.handle(Resynced(channels=channels, bridges=bridges))
        log.info(
            "astreinte ready: app %r, %d line(s), %d channel(s) on the PBX",
            config.ari.app,
            len(config.lines),
            len(channels),
        )

    # -- feature hooks (alerting, metrics, live reload) are wired below this line --

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await client.open()
    events = asyncio.create_task(client.run_events(on_message, on_connect))
    stopper = asyncio.create_task(stop.wait())
    fatal = asyncio.create_task(service.fatal.wait())
    await asyncio.wait({events, stopper, fatal}, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set() and service.active_calls:
        log.info("stopping: waiting for %d call(s) in progress", service.active_calls)
        await service.wait_idle(GRACEFUL_STOP_S)
    client.stop()
    for task in (events, stopper, fatal):
        task.cancel()
    await asyncio.gather(events, stopper, fatal, return_exceptions=True)
    await client.close()
    await writer.flush()
    writer.close()
    engine.dispose()
    log.info("astreinte stopped")
    return 3 if service.fatal.is_set() else 0
