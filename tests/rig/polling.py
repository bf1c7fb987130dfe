"""Wait for a condition with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")


def wait_until(
    probe: Callable[[], _T | None], *, timeout: float, what: str, every: float = 0.1
) -> _T:
    """Call `probe` until it returns something truthy, and return that; fail after `timeout` s
    naming `what` was awaited (and the last value seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {timeout} s (last seen: {value!r})")
        time.sleep(every)
