"""The fallback spool while the service runs: imported as calls end, never forgotten.

Calls the dialplan fallback handles while the service is up (the watchdog fired,
the service was draining) join the trail within seconds, and the reconciliation
leaves a call alone while the fallback still has a record of it to import.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from astreinte_ari.adapters.fallback.importer import import_fallback_spool
from astreinte_ari.adapters.fallback.records import LASTRESORT_SUFFIX, SPOOL_SUFFIX
from astreinte_ari.callflow.identity import uniqueid_key
from astreinte_ari.config.model import AppConfig

log = logging.getLogger(__name__)

IMPORT_EVERY_S = 1.0


class FallbackLink:
    def __init__(self, config: Callable[[], AppConfig], writer: object) -> None:
        self._config = config
        self._writer = writer
        self.imported = 0

    def spool_dir(self) -> Path:
        return self._config().fallback_spool_dir

    def pending_for(self, channel_id: str) -> bool:
        """Whether the fallback holds a not-yet-imported record of this channel's call."""
        key = uniqueid_key(channel_id)
        folder = self.spool_dir()
        return any(
            (folder / f"{key}{suffix}").exists() for suffix in (SPOOL_SUFFIX, LASTRESORT_SUFFIX)
        )

    def _has_work(self) -> bool:
        try:
            with os.scandir(self.spool_dir()) as entries:
                return any(e.name.endswith((SPOOL_SUFFIX, LASTRESORT_SUFFIX)) for e in entries)
        except OSError:
            return False

    async def keep_importing(self) -> None:
        failing = False
        while True:
            if await asyncio.to_thread(self._has_work):
                try:
                    count = await asyncio.to_thread(
                        import_fallback_spool,
                        self._config(),
                        self._writer,  # type: ignore[arg-type]
                    )
                    self.imported += count
                    failing = False
                except Exception as exc:
                    if not failing:  # one line per outage, not one per poll
                        log.warning("fallback spool kept for a later import: %s", exc)
                    failing = True
            await asyncio.sleep(IMPORT_EVERY_S)
