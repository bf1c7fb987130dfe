"""asyncio helpers the whole service shares.

`within` replaces asyncio.wait_for: on Python 3.11 (Debian 12's), wait_for swallows a
cancellation that arrives as the awaited thing completes (CPython gh-86296, fixed in
3.12 by rewriting wait_for on asyncio.timeout). A stopping service's loops then ran
on: a node of the cluster never stopped. asyncio.timeout has no such race.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """`awaitable`'s result, or TimeoutError after `seconds` (None: no limit)."""
    async with asyncio.timeout(seconds):
        return await awaitable
