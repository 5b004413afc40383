"""Reference solutions for chapter 04 (coroutines)."""

from __future__ import annotations

import asyncio
from collections.abc import Generator

__all__ = ["PREDICTION", "averager", "countdown"]


def averager() -> Generator[float | None, float, None]:
    """Yield the running average of every number sent in (prime with ``next`` first)."""
    total, count = 0.0, 0
    average: float | None = None
    while True:
        value = yield average
        total += value
        count += 1
        average = total / count


async def countdown(name: str, n: int, log: list[str]) -> None:
    """Log ``name`` + n..1, handing the loop to others after each step."""
    for i in range(n, 0, -1):
        log.append(f"{name}{i}")
        await asyncio.sleep(0)


#: a1 and b1 run in start order; sleep(0) queues a behind b; helper() runs inside a, no switch.
PREDICTION = ["a1", "b1", "a2", "helper", "a3", "b2"]
