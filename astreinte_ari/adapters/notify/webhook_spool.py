"""Webhook deliveries kept on disk until they end, so a restart does not lose them.

One small JSON file per (webhook, event) in <journal_dir>/webhooks/, written when
the event is published and removed when its delivery ends (delivered, refused,
or out of retries). Each failed try is counted in the file, so a service that
restarts (or crash-loops) goes on with the tries left instead of starting over.
At start, and every 30 s, the files nobody is delivering (left by the previous
process, or by `astreinte alerts ack`) are delivered: the idempotency key is
the same, so a receiver that had already got one ignores it. The files hold the event (caller
number, voicemail link), never a URL or secret: owner-only permissions.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from astreinte_ari.alerting.ports import AlertEvent
from astreinte_ari.config.alerting import WebhookConfig

log = logging.getLogger(__name__)
_DATES = ("at", "shift_start", "shift_end")
_FIELDS = {f.name for f in fields(AlertEvent)}


def _encode(event: AlertEvent) -> dict[str, Any]:
    values = asdict(event)
    for name in _DATES:
        if values[name] is not None:
            values[name] = values[name].isoformat()
    return values


def _decode(values: dict[str, Any]) -> AlertEvent:
    values = {k: v for k, v in values.items() if k in _FIELDS}
    for name in _DATES:
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    return AlertEvent(**values)


class Spooled(NamedTuple):
    webhook: str
    event: AlertEvent
    tries: int  # tries that failed already (0: none made, or the process died in one)


class DeliverySpool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, webhook: str, event_id: str) -> Path:
        # Webhook names are [a-z0-9_-] and event ids "<hex>-<event>": no dot, no slash.
        return self.folder / f"{webhook}.{event_id}.json"

    def ensure_folder(self) -> None:
        """Create the folder; made by root (the CLI), it goes to the service's user,
        the owner of the nearest existing folder above it."""
        if self.folder.is_dir():
            return
        anchor = self.folder
        while not anchor.exists() and anchor != anchor.parent:
            anchor = anchor.parent
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        owner = anchor.stat()
        if os.geteuid() == 0 and owner.st_uid != 0:
            os.chown(self.folder, owner.st_uid, owner.st_gid)

    def save(self, webhook: str, event: AlertEvent, tries: int = 0) -> None:
        """Keep `event` for `webhook`, with the count of tries that failed so far."""
        self.ensure_folder()
        path = self._path(webhook, event.id)
        temporary = path.with_suffix(".tmp")
        data = json.dumps(
            {"webhook": webhook, "event": _encode(event), "tries": tries}, ensure_ascii=False
        )
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(data)
        owner = self.folder.stat()
        if os.geteuid() == 0 and owner.st_uid != 0:  # root's CLI, for the service's user
            os.chown(temporary, owner.st_uid, owner.st_gid)
        temporary.replace(path)  # whole or absent, even if the process dies here

    def save_for(self, webhooks: Mapping[str, WebhookConfig], event: AlertEvent) -> int:
        """Keep `event` for every webhook that wants it (the CLI's way: the running
        service picks the files up); how many."""
        wanted = [name for name, spec in webhooks.items() if spec.wants(event.event)]
        for name in wanted:
            self.save(name, event)
        return len(wanted)

    def done(self, webhook: str, event_id: str) -> None:
        self._path(webhook, event_id).unlink(missing_ok=True)

    def pending(self) -> list[Spooled]:
        """What the previous process left undelivered, oldest first; unreadable files
        are set aside (renamed .bad), not retried forever."""
        if not self.folder.is_dir():
            return []
        found: list[tuple[float, Spooled]] = []
        for path in self.folder.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                tries = int(data.get("tries", 0))  # files of older versions: none counted
                if tries < 0:
                    raise ValueError(f"tries {tries}")
                kept = Spooled(str(data["webhook"]), _decode(data["event"]), tries)
                found.append((path.stat().st_mtime, kept))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.error("webhook spool: %s unreadable (%s): set aside", path.name, exc)
                path.replace(path.with_suffix(".bad"))
        return [kept for _, kept in sorted(found, key=lambda f: f[0])]
