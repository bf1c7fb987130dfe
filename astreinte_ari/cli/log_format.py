"""`--log-format json`: one JSON object per line, for journald / log shippers.

Fields: time (UTC, ISO 8601 with milliseconds), level, logger, message, and
call_id when the record carries one (`log.info(..., extra={"call_id": id})`
or inside `with call_logging(id):`); exc_info as a string when present.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

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
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler._astreinte = True  # type: ignore[attr-defined]
    root.addHandler(handler)
