"""Live edits: poll the YAML file, validate a changed one, keep the last good.

Polling a content hash (not mtime, not inotify) works on every filesystem and
catches editors that replace the file. A changed file is validated with
`load` (the service passes schedule.validate.load_checked_config, so that a reload
refuses what a start refuses); if valid, `on_change(config, version)` runs, else `on_error`
gets the ConfigError (the same one `astreinte check` prints) and the last good
configuration stays live. Each distinct bad content is reported once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from astreinte_ari.config.loader import ConfigError, ConfigIssue, load_config
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

Load = Callable[[Path], AppConfig]
OnChange = Callable[[AppConfig, str], Awaitable[None] | None]
OnError = Callable[[ConfigError], Awaitable[None] | None]


def content_version(data: bytes) -> str:
    """The version id of a configuration text: its SHA-256, hex."""
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


class ConfigWatcher:
    def __init__(
        self,
        path: str | Path,
        initial: AppConfig,
        on_change: OnChange,
        *,
        on_error: OnError | None = None,
        interval: float = 1.0,
        load: Load = load_config,
    ) -> None:
        self.path = Path(path)
        self.config = initial  # the last good configuration
        self._on_change = on_change
        self._on_error = on_error
        self.interval = interval
        self._load = load
        data = _read(self.path)
        self.version = content_version(data) if data is not None else ""
        self.text = data.decode("utf-8", "replace") if data is not None else ""
        self.previous_text: str | None = None  # the text before the last accepted change
        self._seen = self.version  # last content looked at, good or bad
        self._task: asyncio.Task[None] | None = None

    async def check_once(self) -> bool:
        """Look at the file now; True if a new configuration was accepted."""
        data = _read(self.path)
        version = content_version(data) if data is not None else "missing"
        if version == self._seen:
            return False
        try:
            config = await asyncio.to_thread(self._load, self.path)
        except ConfigError as exc:
            self._seen = version
            log.error("configuration %s refused, keeping the last good one:\n%s", self.path, exc)
            await self._call(self._on_error, exc)
            return False
        if _read(self.path) != data:
            return False  # changed while we validated it: judge the newer one next time
        self._seen = version
        self.previous_text, self.text = self.text, (data or b"").decode("utf-8", "replace")
        self.config, self.version = config, version
        log.info("configuration %s reloaded (version %s)", self.path, version[:12])
        await self._call(self._on_change, config, version)
        return True

    async def _call(self, callback: Callable[..., object] | None, *args: object) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a failing callback must not stop the watcher
            log.exception("configuration watcher callback failed")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check_once()
            except Exception:
                log.exception("configuration watcher: unexpected error")

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"config-watcher {self.path}")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["ConfigError", "ConfigIssue", "ConfigWatcher", "content_version"]
