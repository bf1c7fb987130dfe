"""Asterisk's Channel Event Logging (CEL) as written by cel_custom, read back.

The PBX writes one CSV line per channel event whether or not the service is
listening (dialplan/cel_custom_astreinte.conf gives the mapping):

    "HANGUP","1764516265.123456","1764516260.42","1764516260.42",
    "PJSIP/caller-00000001","astreinte-inbound","+33180000001","Stasis",
    "{""hangupcause"":16,""hangupsource"":""PJSIP/caller-00000001"",...}"

eventtype, eventtime (epoch with microseconds: cel.conf's default dateformat),
uniqueid, linkedid, channel name, context, exten, application, extra (JSON for
HANGUP). No caller data is mapped: the file holds no personal data beyond what
the PBX's own logs hold. Lines are appended in time order, so a read for
"since T" binary-searches its start instead of scanning the whole file.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from astreinte_ari.callflow.reconcile import ChannelHistory

log = logging.getLogger(__name__)

_FIELDS = ("type", "time", "uniqueid", "linkedid", "channel", "context", "exten", "app", "extra")
# Events of different channels may reach the file slightly out of order.
_SLACK = timedelta(seconds=30)
_SEARCH_STOP = 64 * 1024  # below this many bytes, scan instead of bisecting


@dataclass
class _Building:
    channel: str = ""
    answered_at: datetime | None = None
    bridged_at: datetime | None = None
    ended_at: datetime | None = None
    cause: int | None = None
    source: str = ""
    extra: dict[str, object] = field(default_factory=dict)


def parse_line(line: str) -> dict[str, str] | None:
    """One CEL line as a dict of the mapped fields; None for a torn or foreign line."""
    try:
        row = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None
    if len(row) < len(_FIELDS):
        return None
    return dict(zip(_FIELDS, row, strict=False))


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _apply(building: _Building, row: dict[str, str], at: datetime) -> None:
    kind = row["type"]
    building.channel = building.channel or row["channel"]
    if kind == "ANSWER" and building.answered_at is None:
        building.answered_at = at
    elif kind == "BRIDGE_ENTER" and building.bridged_at is None:
        building.bridged_at = at
    elif kind == "HANGUP":
        building.ended_at = at
        try:
            extra = json.loads(row["extra"] or "{}")
        except ValueError:
            extra = {}
        if isinstance(extra, dict):
            cause = extra.get("hangupcause")
            building.cause = (
                int(cause) if isinstance(cause, int | str) and str(cause).isdigit() else None
            )
            source = extra.get("hangupsource")
            building.source = source if isinstance(source, str) else ""
    elif kind == "CHAN_END" and building.ended_at is None:
        building.ended_at = at


class CelFile:
    """PbxRecords over a cel_custom CSV file (callflow.reconcile.PbxRecords)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    @property
    def available(self) -> bool:
        return self.path is not None and os.access(self.path, os.R_OK)

    async def history(
        self, channel_ids: Collection[str], since: datetime
    ) -> dict[str, ChannelHistory]:
        return await asyncio.to_thread(self.read_history, set(channel_ids), since)

    def read_history(self, channel_ids: set[str], since: datetime) -> dict[str, ChannelHistory]:
        if self.path is None or not channel_ids:
            return {}
        found: dict[str, _Building] = {}
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._start_offset(handle, since - _SLACK))
                for raw in handle:
                    if not raw.endswith(b"\n"):
                        break  # being written right now
                    line = raw.decode("utf-8", errors="replace")
                    row = parse_line(line)
                    if row is None or row["uniqueid"] not in channel_ids:
                        continue
                    at = _time(row["time"])
                    if at is not None:
                        _apply(found.setdefault(row["uniqueid"], _Building()), row, at)
        except OSError as exc:
            log.warning("cannot read the PBX's CEL records %s: %s", self.path, exc)
            return {}
        names = {b.channel: cid for cid, b in found.items()}
        return {
            cid: ChannelHistory(
                channel_id=cid,
                answered_at=b.answered_at,
                bridged_at=b.bridged_at,
                ended_at=b.ended_at,
                cause=b.cause,
                hangup_source=names.get(b.source, b.source),
            )
            for cid, b in found.items()
        }

    @staticmethod
    def _start_offset(handle: BinaryIO, since: datetime) -> int:
        """Offset of a line at or before the first one written at `since` (bisection)."""
        handle.seek(0, os.SEEK_END)
        lo, hi = 0, handle.tell()
        target = since.timestamp()
        while hi - lo > _SEARCH_STOP:
            mid = (lo + hi) // 2
            handle.seek(mid)
            handle.readline()  # skip the partial line
            row = parse_line(handle.readline().decode("utf-8", errors="replace"))
            at = _time(row["time"]) if row else None
            if at is None or at.timestamp() < target:
                lo = mid
            else:
                hi = mid
        return lo
