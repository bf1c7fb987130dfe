"""The fallback spool as the AGI writes it: one JSON-lines file per call.

Kept free of heavy imports (no pydantic, no SQLAlchemy): the AGI imports it
while a caller waits for the first mobile to ring.

A write that fails (disk full, read-only file system, permissions) never
stops the call: the record stays queued and is written, in order, with the
next record that can be written; the caller of `append` is told (to log it).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from astreinte_ari.callflow.identity import uniqueid_key
from astreinte_ari.callflow.outcomes import HopOutcome

SPOOL_SUFFIX = ".jsonl"  # written by the AGI, one per call
LASTRESORT_SUFFIX = ".lastresort.json"  # written by the dialplan (FILE()), one line
UNCLAIMED_SUFFIX = ".unclaimed.json"  # the dialplan's record of a call no service took
# Every file of a call in the spool (longest first: a key never ends with one).
RECORD_SUFFIXES = (LASTRESORT_SUFFIX, UNCLAIMED_SUFFIX, SPOOL_SUFFIX)
CALLER_MAX = 256  # caller data is untrusted: bounded here, escaped by JSON
# Q.850 cause 21 = call rejected (603/403); others behind CONGESTION are "unreachable".
_CAUSE_REJECTED = 21
_EPOCH_RE = re.compile(r"[0-9]{9,11}(?:\.[0-9]{1,6})?")
_STAMP_RE = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{1,6}")
_LOG_SAFE_RE = re.compile(r"[^A-Za-z0-9+._:/=-]")


def bounded(value: str | None, limit: int = CALLER_MAX) -> str:
    return (value or "")[:limit]


def spool_key(uniqueid: str, default: str) -> str:
    """The call's key in file names: Asterisk's UNIQUEID reduced by uniqueid_key
    (the systemname prefix survives), or `default` when nothing is left of it."""
    return uniqueid_key(uniqueid) or uniqueid_key(default)


def dialplan_time(value: object) -> float | None:
    """Epoch seconds of a time the dialplan stamped: STRFTIME(,UTC,%Y%m%dT%H%M%S.%3q)
    ("20261130T173807.123", UTC), or an epoch as older spool files hold; None if
    absent or malformed."""
    text = str(value or "").strip()
    if _EPOCH_RE.fullmatch(text):
        return float(text)
    if _STAMP_RE.fullmatch(text):
        try:
            return datetime.strptime(text, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return None
    return None


def parse_epoch(value: str | None, *, not_before: float, not_after: float) -> float | None:
    """A dialplan time (dialplan_time), or None if absent, malformed or implausible."""
    at = dialplan_time(value)
    return at if at is not None and not_before <= at <= not_after else None


def log_summary(record: Mapping[str, Any]) -> str:
    """One line for Asterisk's log about a record the spool could not take: key
    fields reduced to plain characters, caller data left out (untrusted)."""
    keys = ("event", "uniqueid", "did", "seq", "person_id", "outcome", "arrived", "at")
    parts = []
    for key in keys:
        if record.get(key) not in (None, ""):
            value = _LOG_SAFE_RE.sub("", str(record[key]))[:64]
            parts.append(f"{key}={value}")
    return " ".join(parts)


class SpoolFile:
    """Append-only JSON lines, each write fsync'd before the call goes on."""

    def __init__(self, path: Path, on_error: Callable[[OSError, int], None] | None = None) -> None:
        self.path = path
        self.on_error = on_error  # (error, records still unwritten)
        self.pending: list[dict[str, Any]] = []
        self._lines: list[bytes] = []
        self._torn = False  # a failed write may have left half a line at the end

    def add(self, record: Mapping[str, Any]) -> None:
        """Queue a record for the next append (one write for several records)."""
        # ensure_ascii: caller names with control or non-UTF-8 bytes stay one safe line.
        line = json.dumps(dict(record), ensure_ascii=True, sort_keys=True) + "\n"
        self.pending.append(dict(record))
        self._lines.append(line.encode("ascii"))

    def append(self, record: Mapping[str, Any] | None = None) -> bool:
        """Write every queued record (and `record`); False if they stay queued."""
        if record is not None:
            self.add(record)
        if not self._lines:
            return True
        # After a failed write, start on a fresh line: a torn fragment then spoils
        # only itself (the importer skips unreadable lines and duplicates).
        data = (b"\n" if self._torn else b"") + b"".join(self._lines)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self._torn = True
            if self.on_error is not None:
                self.on_error(exc, len(self._lines))
            return False
        self._torn = False
        self.pending.clear()
        self._lines.clear()
        return True


def hop_outcome(
    dialstatus: str, key: str, hangupcause: str = "", *, require_accept: bool = True
) -> HopOutcome:
    """Dial's DIALSTATUS (+ the key the agent pressed at the prompt) -> hop outcome.

    `key` is "" when the prompt never ran, "none" when the agent answered but
    pressed nothing (typically a personal voicemail), else the digit.
    """
    if key == "1" and require_accept:
        return HopOutcome.ACCEPTED
    if key == "none":
        return HopOutcome.NOT_ACCEPTED
    if key:
        return HopOutcome.DECLINED
    match dialstatus:
        case "ANSWER":
            # With press-1 required, an answer without a key means the caller left
            # during the prompt (the agent never accepted).
            return HopOutcome.CONNECTED if not require_accept else HopOutcome.CANCELLED
        case "BUSY":
            return HopOutcome.BUSY
        case "NOANSWER":
            return HopOutcome.NO_ANSWER
        case "CANCEL":
            return HopOutcome.CANCELLED
        case "CONGESTION" | "CHANUNAVAIL":
            cause = int(hangupcause) if hangupcause.isascii() and hangupcause.isdigit() else 0
            return HopOutcome.REJECTED if cause == _CAUSE_REJECTED else HopOutcome.UNREACHABLE
        case _:
            return HopOutcome.FAILED
