"""Chapter 05 checks: Tasks (任务), Futures, limits, timeouts and a loop kept free.

- :func:`check_gather_with_limit`: ``gather`` that runs at most ``limit`` awaitables at once.
- :func:`check_fetch_all`: call a blocking function for many inputs without blocking the loop.
- :func:`check_with_timeout`: a timeout wrapper that returns a default and cancels the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from concurrency_lab._runner import run_sync
from concurrency_lab.exercises import Verdict, expect, passed
from concurrency_lab.exercises.awaiting import closing, expect_in_time, expect_own_error, sleeper

__all__ = ["blocking_fetch", "check_fetch_all", "check_gather_with_limit", "check_with_timeout"]

GatherWithLimit = Callable[..., Coroutine[Any, Any, list[Any]]]


@contextlib.contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Keep the garbage collector from pausing the loop while we time the learner's code.

    In a notebook full of figures a full collection can take tens of milliseconds, which a
    heartbeat would blame on the answer.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def check_gather_with_limit(gather_with_limit: GatherWithLimit) -> Verdict:
    """``await gather_with_limit(limit, *aws)``: results in order, never > ``limit`` at once."""

    async def main() -> None:
        running, peak, events = 0, 0, []

        async def job(i: int, seconds: float) -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            events.append(("start", i))
            try:
                await asyncio.sleep(seconds)
            finally:
                running -= 1
                events.append(("end", i))
            return i * 10

        waits = [0.15] + [0.01] * 7
        jobs: list[Coroutine[Any, Any, Any]] = [job(i, s) for i, s in enumerate(waits)]
        with closing(*jobs):
            got = await gather_with_limit(3, *jobs)
        expect(
            list(got) == [i * 10 for i in range(8)],
            f"results {got!r}, expected [0, 10, ..., 70] in the order the jobs were given",
            "keep the results in input order, as asyncio.gather does",
        )
        expect(
            peak <= 3,
            f"{peak} jobs ran at once with limit=3",
            "wrap each awaitable in a coroutine that first does `async with semaphore:`",
        )
        expect(
            peak == 3,
            f"at most {peak} job(s) ran at once; limit=3 allows 3",
            "run the wrapped jobs concurrently with asyncio.gather, not one after the other",
        )
        expect(
            events.index(("start", 3)) < events.index(("end", 0)),
            "job 3 waited for the slow job 0 although two slots were free",
            "don't split the jobs into batches of `limit`: start a new job as soon as any ends",
        )
        running = peak = 0
        jobs = [job(i, 0.001) for i in range(3)]
        with closing(*jobs):
            await gather_with_limit(1, *jobs)
        expect(
            peak == 1,
            f"limit=1 still ran {peak} jobs at once",
            "make the semaphore from `limit`: asyncio.Semaphore(limit)",
        )

        async def boom() -> None:
            raise ValueError("boom")

        jobs = [job(0, 0.001), boom()]
        try:
            with closing(*jobs):
                await gather_with_limit(2, *jobs)
        except ValueError:
            pass
        except BaseException as error:
            expect(False, f"a job's ValueError came out as {error!r}", "let it propagate")
        else:
            expect(False, "an exception inside a job was swallowed", "let it propagate")

    run_sync(main)
    return passed("gather_with_limit", "in order, at most `limit` at once, no batching")


def blocking_fetch(x: int) -> int:
    """A synchronous 'download' that blocks its thread for 0.1 s (do not change it)."""
    time.sleep(0.1)
    return 2 * x


def check_fetch_all(fetch_all: Callable[[list[int]], Awaitable[list[int]]]) -> Verdict:
    """``await fetch_all(xs)`` returns ``[blocking_fetch(x) for x in xs]``, loop kept free."""

    async def main() -> tuple[list[int], float, float]:
        ticks: list[float] = []
        stop = asyncio.Event()

        async def heartbeat() -> None:
            while not stop.is_set():
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.01)
        started = time.perf_counter()
        got = await fetch_all([1, 2, 3, 4, 5])
        elapsed = time.perf_counter() - started
        stop.set()
        await beat
        return got, elapsed, max(b - a for a, b in itertools.pairwise(ticks))

    with _no_gc_pauses():
        got, elapsed, gap = run_sync(main)
    expect(
        list(got) == [2, 4, 6, 8, 10],
        f"fetch_all returned {got!r}, expected [2, 4, .., 10]",
        "return the results of blocking_fetch(x) for each x, in the order of xs",
    )
    expect(
        gap < 0.09,
        f"the event loop froze for {gap * 1e3:.0f} ms: a heartbeat task could not run",
        "never call a blocking function directly in a coroutine; "
        "`await asyncio.to_thread(blocking_fetch, x)` runs it in a worker thread",
    )
    expect(
        elapsed < 0.35,
        f"5 fetches of 0.1 s took {elapsed:.2f} s: they ran one after another",
        "start all the to_thread calls first and await them together with asyncio.gather",
    )
    return passed("fetch_all", f"loop never froze > {gap * 1e3:.0f} ms, {elapsed:.2f} s total")


def check_with_timeout(with_timeout: Callable[..., Coroutine[Any, Any, Any]]) -> Verdict:
    """``await with_timeout(aw, seconds, default)``: the result, or ``default`` on timeout.

    On timeout the work must be cancelled (its cleanup runs); its own errors must propagate.
    """

    async def main() -> None:
        log: list[str] = []
        work = sleeper(asyncio.sleep, asyncio.CancelledError, log)
        await expect_in_time(
            lambda job: with_timeout(job, 0.5, "default"),
            work(0.01, "fast"),
            "return the awaitable's own result when it finishes in time",
        )
        started = time.perf_counter()
        slow = work(1.5, "slow")
        with closing(slow):
            got = await with_timeout(slow, 0.05, "default")
        waited = time.perf_counter() - started
        expect(
            got == "default",
            f"a job over the timeout gave {got!r}, expected the default",
            "catch TimeoutError and return `default`",
        )
        expect(
            waited < 0.75,
            f"with_timeout waited {waited:.2f} s for a 0.05 s timeout",
            "use `async with asyncio.timeout(seconds):` or asyncio.wait_for",
        )
        await asyncio.sleep(0)
        expect(
            log == ["cancelled"],
            "the slow job was not cancelled: it keeps running after the timeout",
            "asyncio.timeout and asyncio.wait_for cancel the work for you; asyncio.wait does not",
        )

        await expect_own_error(
            lambda job: with_timeout(job, 0.5, "default"),
            came_out_as="a job's KeyError came out of with_timeout as",
            swallowed="a job that raised KeyError gave the default: errors must not look like "
            "timeouts",
            hint="catch TimeoutError only, and let every other error propagate unchanged",
        )

    run_sync(main)
    return passed("with_timeout", "result, default on timeout, work cancelled, errors kept")
