"""Calls that end before alerting runs (the database was down at start) still alert."""

from __future__ import annotations

import logging
from collections.abc import Callable

from astreinte_ari.callflow.closed import CallClosed

log = logging.getLogger(__name__)

_MAX_HELD = 10_000  # a long outage at start must not grow memory without bound


class AlertFeed:
    """Holds ended calls until the alert engine starts, then hands them over once.

    After `attach`, the engine is a call listener of its own: the feed goes quiet.
    """

    def __init__(self) -> None:
        self._held: list[CallClosed] = []
        self._attached = False

    def on_call_closed(self, closed: CallClosed) -> None:
        if self._attached:
            return
        if len(self._held) >= _MAX_HELD:
            log.error("call %s ended before alerting started: not alerted", closed.call_id[:8])
            return
        self._held.append(closed)

    def attach(self, deliver: Callable[[CallClosed], None]) -> int:
        held, self._held = self._held, []
        self._attached = True
        for closed in held:
            try:
                deliver(closed)
            except Exception:
                log.exception("alerting failed for held call %s", closed.call_id[:8])
        return len(held)
