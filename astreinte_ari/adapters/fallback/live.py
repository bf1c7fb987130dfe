"""The fallback spool while the service runs: imported as calls end, never forgotten.

Calls the dialplan fallback handles while the service is up (the watchdog fired,
the service was draining) join the trail within seconds and raise the same
missed-call alerts as the service's own; the reconciliation leaves a call alone
while the fallback still holds a record of it to import.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from astreinte_ari.adapters.fallback.importer import EventSink, import_fallback_spool
from astreinte_ari.adapters.fallback.records import ImportedCall
from astreinte_ari.adapters.fallback.spool import RECORD_SUFFIXES
from astreinte_ari.adapters.fallback.watcher import watch_fallback_spool
from astreinte_ari.callflow.closed import CallClosed
from astreinte_ari.callflow.identity import uniqueid_key
from astreinte_ari.config.model import AppConfig
from astreinte_ari.routing.plan import CallPlan

log = logging.getLogger(__name__)


class FallbackLink:
    def __init__(
        self,
        config: Callable[[], AppConfig],
        writer: EventSink,
        engine: Engine,
        plan_for: Callable[[str, datetime], CallPlan | None],
        announce: Callable[[CallClosed], None],
    ) -> None:
        self._config = config
        self._writer = writer
        self._engine = engine
        self._plan_for = plan_for
        self._announce = announce
        self.imported = 0

    def spool_dir(self) -> Path:
        return self._config().fallback_spool_dir

    def pending_for(self, channel_id: str) -> bool:
        """Whether the fallback holds a not-yet-imported record of this channel's call."""
        key, folder = uniqueid_key(channel_id), self.spool_dir()
        return any((folder / f"{key}{suffix}").exists() for suffix in RECORD_SUFFIXES)

    def _import_once(self) -> list[ImportedCall]:
        return import_fallback_spool(self._config(), self._writer, self._engine)

    def _on_imported(self, call: ImportedCall) -> None:
        self.imported += 1
        log.info("fallback call %s imported: %s (%s)", call.call_id[:8], call.outcome, call.trigger)
        if call.was_recorded:
            return  # announced by whoever recorded its end (re-import after a crash)
        plan = self._plan_for(call.did, call.started_at)
        if plan is None:
            log.error(
                "fallback call %s: no line for DID %r: nobody to alert", call.call_id[:8], call.did
            )
            return
        self._announce(
            CallClosed(
                call_id=call.call_id,
                plan=plan,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                outcome=call.outcome,
                detail=call.detail,
                started_at=call.started_at,
                ended_at=call.ended_at,
                last_state=call.last_state,
                voicemail_path=call.voicemail_path,
                accepted_person_id=call.accepted_person_id,
            )
        )

    async def keep_importing(self, stop: asyncio.Event) -> None:
        await watch_fallback_spool(self.spool_dir, self._import_once, self._on_imported, stop=stop)
