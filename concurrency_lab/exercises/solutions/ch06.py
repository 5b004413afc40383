"""Reference solutions for chapter 06 (the event loop from scratch)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from concurrency_lab import miniloop

__all__ = ["sleep", "wait_for"]


async def sleep(delay: float, result: Any = None) -> Any:
    """A timer completes a Future; the Task awaiting it is parked, the loop idles meanwhile."""
    loop = miniloop.get_running_loop()
    if delay <= 0:
        await miniloop.sleep(0)  # a bare yield: back of the ready queue
        return result
    future = loop.create_future()

    def wake() -> None:
        if not future.done():  # it may have been cancelled meanwhile
            future.set_result(result)

    timer = loop.call_later(delay, wake)
    try:
        return await future
    finally:
        timer.cancel()


async def wait_for(coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
    """``coro``'s result; after ``timeout`` seconds cancel it and raise TimeoutError."""
    loop = miniloop.get_running_loop()
    task = loop.create_task(coro)
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = task.cancel()

    timer = loop.call_later(timeout, expire)
    try:
        return await task
    except miniloop.CancelledError:
        if expired:
            raise TimeoutError(f"gave up after {timeout} s") from None
        raise
    finally:
        timer.cancel()
