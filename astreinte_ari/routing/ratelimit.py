"""Per-caller rate limit on the on-call lines (pure: time is passed in).

A number that calls again and again (a stuck auto-dialler, a prank, an angry
caller) must not ring the on-call person every time: past the limit it hears
the announcement and can leave a voicemail, which still raises an alert.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from datetime import datetime, timedelta

from astreinte_ari.routing.plan import CallPlan, FinalAction

_MAX_KEY = 64  # caller IDs are untrusted: bound what we keep in memory
_MAX_TRACKED = 10_000


class CallerRateLimiter:
    def __init__(self, max_calls: int, window: timedelta, include_anonymous: bool) -> None:
        self.max_calls = max_calls
        self.window = window
        self.include_anonymous = include_anonymous
        self._seen: dict[tuple[str, str], deque[datetime]] = {}

    def admit(self, did: str, caller_number: str, now: datetime) -> bool:
        """Record one call; False when this caller is over the limit on this line."""
        number = caller_number.strip()[:_MAX_KEY]
        if not number and not self.include_anonymous:
            return True
        key = (did, number)
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        times.append(now)
        if len(self._seen) > _MAX_TRACKED:
            self._forget_idle(now)
        return len(times) <= self.max_calls

    def _forget_idle(self, now: datetime) -> None:
        for key in [k for k, t in self._seen.items() if not t or now - t[-1] >= self.window]:
            del self._seen[key]


def limited_plan(plan: CallPlan, max_calls: int, window: timedelta) -> CallPlan:
    """The same line, announcement and voicemail, but nobody rung."""
    minutes = int(window.total_seconds() // 60)
    return dataclasses.replace(
        plan,
        hops=(),
        final=FinalAction.VOICEMAIL,
        note=f"caller rate limit: more than {max_calls} calls in {minutes} min",
    )
