"""The service's side of the signed checkpoints: sign the head every interval, after
each retention run and at a clean stop (audit_checkpoints.py says why)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from astreinte_ari.adapters.store.audit_checkpoints import Checkpoint, load_private_key, sign_head
from astreinte_ari.config.reporting import AuditConfig

log = logging.getLogger(__name__)


class Checkpointer:
    def __init__(self, engine: Engine, config: AuditConfig, clock: Callable[[], datetime]) -> None:
        assert config.signing_key_file is not None
        # Read once at start: a missing or unreadable key is a start-up error, loud.
        self._key = load_private_key(Path(config.signing_key_file))
        self._engine = engine
        self._config = config
        self._clock = clock

    async def sign(self, *, force: bool = False) -> Checkpoint | None:
        """Sign the head now if it moved; a database outage is retried next time."""
        try:
            return await asyncio.to_thread(
                sign_head,
                self._engine,
                self._key,
                self._clock(),
                witness_file=self._config.witness_file,
                force=force,
            )
        except Exception as exc:
            log.warning("audit checkpoint deferred: %s", str(exc).splitlines()[0][:200])
            return None

    async def keep_signing(self) -> None:
        while True:
            await self.sign()
            await asyncio.sleep(self._config.checkpoint_every)
