"""The cascade slots: a burst of calls waits on hold instead of ringing everyone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from astreinte_ari.callflow.outcomes import CallState
from astreinte_ari.callflow.runtime import CallRuntime

_POLL_S = 0.2


async def wait_for_slot(
    rt: CallRuntime,
    slots: asyncio.Semaphore,
    start_ringback: Callable[[], Awaitable[None]],
    stop_ringback: Callable[[], Awaitable[None]],
) -> None:
    """Take a cascade slot; during a burst, the caller waits on hold for one. Returns
    holding the slot; a caller who hangs up meanwhile raises CallerGone, slot-less."""
    if not slots.locked():
        await slots.acquire()
        return
    rt.transition(CallState.QUEUED, "every cascade slot busy: the caller waits on hold")
    await rt.play_and_wait(rt.caller_channel_id, "astreinte-please-wait")
    await start_ringback()
    acquire = asyncio.ensure_future(slots.acquire())
    try:
        while not acquire.done():
            # Poll, so that a caller who hangs up while waiting is noticed
            # (CallerGone) without cancelling a pending queue read.
            await rt.next_event(rt.deadline_in(_POLL_S))
    except BaseException:
        if acquire.done() and not acquire.cancelled():
            slots.release()
        else:
            acquire.cancel()
        raise
    await stop_ringback()  # the announcement comes next
