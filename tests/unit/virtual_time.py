"""An asyncio event loop whose clock jumps ahead instead of sleeping.

The call flow waits on loop-time deadlines (ring timeout, accept window, the
voicemail's maximum length). Under this loop, whenever nothing is ready to
run, time jumps straight to the next timer: a 25 s ring timeout costs no
real time, and the audit timestamps (a clock read from loop time) say exactly
when, in the call, each thing happened. A scenario that can no longer
progress (nothing ready, no timer pending), or that runs past
SCENARIO_LIMIT_S virtual seconds, fails at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Virtual seconds a scenario may last before it is declared stuck (a loop of timers,
# such as a poll that waits for something the scenario never feeds).
SCENARIO_LIMIT_S = 3600.0


class Stalled(AssertionError):
    """The scenario waits for an event it never feeds."""


class _FastForwardSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        # The loop's own wake-up pipe only: these tests do no real I/O.
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise Stalled("no task can run and no timer is pending")
        self._loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(selector=_FastForwardSelector(self))

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, seconds)
        if self._now > SCENARIO_LIMIT_S:
            raise Stalled(f"still running after {SCENARIO_LIMIT_S:.0f} virtual seconds")


def run_in_virtual_time(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh VirtualTimeLoop; whatever it leaves
    running is cancelled afterwards (asyncio.Runner's own clean-up)."""
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main)


def virtual_time(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test on a VirtualTimeLoop (a plain test function to pytest)."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        run_in_virtual_time(test(*args, **kwargs))

    return run


class LoopClock:
    """The service's wall clock, read from loop time: audit times are scenario times."""

    def __init__(self, start: datetime) -> None:
        self.start = start

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=asyncio.get_running_loop().time())

    def seconds(self, at: datetime) -> float:
        """When `at` is, in seconds since the scenario started."""
        return round((at - self.start).total_seconds(), 3)
