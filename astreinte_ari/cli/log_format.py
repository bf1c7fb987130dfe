"""Log formats of the command line.

- text (default): `<local time with its UTC offset> LEVEL logger: message`.
- text on the journal: when stderr is the journald stream systemd gave us
  ($JOURNAL_STREAM names its device:inode), each line starts with its syslog
  priority (`<3>` for errors...) and carries no time: journald stamps it, and
  `journalctl -p err` filters on the priority.
- `--log-format json`: one JSON object per line, for log shippers. Fields: time
  (UTC, ISO 8601 with milliseconds), level, logger, message, and call_id when
  the record carries one (`log.info(..., extra={"call_id": id})` or inside
  `with call_logging(id):`); exc_info as a string when present.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TextIO

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"

current_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "astreinte_call_id", default=None
)


@contextlib.contextmanager
def call_logging(call_id: str) -> Iterator[None]:
    """Tag every record logged in this context (asyncio task) with call_id."""
    token = current_call_id.set(call_id)
    try:
        yield
    finally:
        current_call_id.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC)
        data: dict[str, object] = {
            "time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        call_id = getattr(record, "call_id", None) or current_call_id.get()
        if call_id:
            data["call_id"] = str(call_id)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        # ensure_ascii: a hostile caller name cannot break the one-object-per-line contract.
        return json.dumps(data, ensure_ascii=True)


class TextFormatter(logging.Formatter):
    """Local time with its UTC offset: unambiguous whatever zone the reader (or a UTC
    container) is in, and still the wall clock of the people on call."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        at = datetime.fromtimestamp(record.created).astimezone()
        return at.isoformat(sep=" ", timespec="milliseconds")


def syslog_priority(levelno: int) -> int:
    """sd-daemon(3) / syslog priority of a logging level (no NOTICE level in Python)."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    return 6 if levelno >= logging.INFO else 7


class JournalFormatter(logging.Formatter):
    """`<N>LEVEL logger: message`, no time (journald stamps each entry). Every line of a
    multi-line record (a traceback) gets the prefix: journald reads each line as an
    entry, and a traceback line without it would be filed at the default priority."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def stderr_is_journal(
    stream: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """True when `stream` (stderr) is the journald stream systemd connected: systemd
    sets $JOURNAL_STREAM to its "device:inode". A child whose stderr was redirected
    elsewhere inherits the variable, hence the comparison (systemd.exec(5))."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat((sys.stderr if stream is None else stream).fileno())
    except (AttributeError, OSError, ValueError):  # no real file behind it (pytest capture)
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def text_formatter() -> logging.Formatter:
    return JournalFormatter() if stderr_is_journal() else TextFormatter()


def configure_logging(level: int, log_format: str = "text") -> None:
    """Like logging.basicConfig (which it replaces): leaves handlers someone else
    installed (pytest's, an embedding program's) alone."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_astreinte", False)]:
        root.removeHandler(old)
    root.setLevel(level)
    if root.handlers and log_format == "text":
        return  # basicConfig would not touch a configured root logger either
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else text_formatter())
    handler._astreinte = True  # type: ignore[attr-defined]
    root.addHandler(handler)


# Libraries whose INFO lines are noise for an operator: APScheduler writes two lines
# ("Running job", "executed successfully") for every 30-second job, drowning the
# calls in the journal; aiohttp.access would log every /metrics scrape if a server
# were ever built with its access log on. Their warnings and errors still show.
QUIET_LOGGERS = ("apscheduler", "aiohttp.access")


def quiet_third_party(verbose: bool) -> None:
    """Third-party INFO off unless -v (then DEBUG everywhere, as asked)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)
