"""Reference solutions for chapter 05 (Tasks and Futures)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from concurrency_lab.exercises.ch05 import blocking_fetch

__all__ = ["fetch_all", "gather_with_limit", "with_timeout"]

T = TypeVar("T")


async def gather_with_limit(limit: int, *aws: Awaitable[Any]) -> list[Any]:
    """Like ``asyncio.gather``, but at most ``limit`` awaitables run at the same time."""
    semaphore = asyncio.Semaphore(limit)

    async def limited(aw: Awaitable[Any]) -> Any:
        async with semaphore:
            return await aw

    return await asyncio.gather(*(limited(aw) for aw in aws))


async def fetch_all(xs: list[int]) -> list[int]:
    """Each blocking call in a worker thread, all at once; the loop stays free."""
    return await asyncio.gather(*(asyncio.to_thread(blocking_fetch, x) for x in xs))


async def with_timeout(aw: Awaitable[T], seconds: float, default: T) -> T:
    """``aw``'s result, or ``default`` if it takes longer than ``seconds`` (then it's cancelled)."""
    try:
        async with asyncio.timeout(seconds):
            return await aw
    except TimeoutError:
        return default
