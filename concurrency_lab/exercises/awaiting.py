"""What the checks of chapters 05 and 06 share: jobs to await, and the verdicts on awaiting them.

An answer there takes an awaitable (a coroutine to gather, to time out, to wait for): these
helpers build logged jobs, close the ones an unfinished answer never awaited, and check the
two things every such answer must get right, the job's own result and the job's own errors.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from concurrency_lab.exercises.harness import expect

__all__ = ["closing", "expect_in_time", "expect_own_error", "sleeper"]

Job = Coroutine[Any, Any, Any]


@contextlib.contextmanager
def closing(*coros: Job) -> Iterator[None]:
    """Close coroutines an unfinished answer never awaited (no "never awaited" warnings)."""
    try:
        yield
    finally:
        for coro in coros:
            if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
                coro.close()


def sleeper(
    sleep: Callable[[float], Awaitable[Any]], cancelled: type[BaseException], log: list[str]
) -> Callable[[float, str], Coroutine[Any, Any, str]]:
    """Jobs that sleep ``seconds`` (on the loop ``sleep`` belongs to) and return ``value``;
    a cancelled one appends ``"cancelled"`` to ``log`` before it lets the cancel through."""

    async def work(seconds: float, value: str) -> str:
        try:
            await sleep(seconds)
        except cancelled:
            log.append("cancelled")
            raise
        return value

    return work


async def expect_in_time(call: Callable[[Job], Awaitable[Any]], fast: Job, hint: str) -> None:
    """``await call(fast)``, on a job that ends well within the timeout, gives its own result."""
    with closing(fast):
        got = await call(fast)
    expect(got == "fast", f"a job well within the timeout gave {got!r}, expected 'fast'", hint)


async def expect_own_error(
    call: Callable[[Job], Awaitable[Any]], *, came_out_as: str, swallowed: str, hint: str
) -> None:
    """``await call(job)``, with a job that raises KeyError, must let that KeyError out."""

    async def broken() -> None:
        raise KeyError("broken")

    failing = broken()
    try:
        with closing(failing):
            await call(failing)
    except KeyError:
        return
    except BaseException as error:
        expect(False, f"{came_out_as} {error!r}", hint)
    expect(False, swallowed, hint)
