"""Chapter 06 checks: parts of an event loop (事件循环), written for ``concurrency_lab.miniloop``.

- :func:`check_mini_sleep`: ``sleep`` built from a timer and a Future, no busy-waiting.
- :func:`check_mini_wait_for`: a timeout for the mini loop, cancelling the work it gives up on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from concurrency_lab import miniloop
from concurrency_lab.exercises import ExerciseError, Verdict, expect, passed
from concurrency_lab.exercises.awaiting import closing, expect_in_time, expect_own_error, sleeper

__all__ = ["check_mini_sleep", "check_mini_wait_for"]


def _run(main: Coroutine[Any, Any, Any]) -> Any:
    try:
        return miniloop.run(main)
    except RuntimeError as error:
        known = ("running miniloop", "miniloop cannot wait on", "no running event loop")
        if any(k in str(error) for k in known):
            raise ExerciseError(
                str(error),
                "use miniloop.get_running_loop(), loop.create_future() and "
                "loop.call_later(); asyncio's own sleep and futures belong to asyncio's loop",
            ) from None
        raise


def check_mini_sleep(sleep: Callable[..., Coroutine[Any, Any, Any]]) -> Verdict:
    """``await sleep(delay, result=None)`` on miniloop: wakes by deadline, returns ``result``."""

    async def main() -> tuple[list[float], list[Any], int, list[str]]:
        woke: list[float] = []

        async def sleeper(delay: float) -> Any:
            value = await sleep(delay, result=f"r{delay}")
            woke.append(delay)
            return value

        loop = miniloop.get_running_loop()
        before = loop.iterations
        results = await miniloop.gather(sleeper(0.06), sleeper(0.02), sleeper(0.04))
        iterations = loop.iterations - before
        turns: list[str] = []

        async def taker(name: str) -> None:
            for _ in range(2):
                turns.append(name)
                await sleep(0)

        await miniloop.gather(taker("A"), taker("B"))
        return woke, results, iterations, turns

    started = time.perf_counter()
    woke, results, iterations, turns = _run(main())
    elapsed = time.perf_counter() - started
    expect(
        results == ["r0.06", "r0.02", "r0.04"],
        f"sleep returned {results}, expected each sleeper's `result` argument",
        "set the Future's result to `result`, and `return await future`",
    )
    expect(
        woke == [0.02, 0.04, 0.06],
        f"sleepers woke in the order {woke}; they should wake by deadline: 0.02, 0.04, 0.06",
        "time.sleep blocks the whole loop; schedule `future.set_result` with loop.call_later",
    )
    expect(
        elapsed < 0.11,
        f"three overlapping sleeps (longest 0.06 s) took {elapsed:.2f} s",
        "the sleeps must overlap: never block in time.sleep",
    )
    expect(
        iterations < 40,
        f"the loop went round {iterations} times during 0.06 s of sleeping: it is busy-waiting",
        "don't poll the clock in a loop of sleep(0); let a timer complete a Future",
    )
    expect(
        turns == ["A", "B", "A", "B"],
        f"sleep(0) did not hand over to the other task: {turns}",
        "for delay <= 0, still suspend once (e.g. `await miniloop.sleep(0)` or a bare yield)",
    )
    return passed("mini sleep", f"{iterations} loop iterations for 60 ms of sleeping")


def check_mini_wait_for(wait_for: Callable[..., Coroutine[Any, Any, Any]]) -> Verdict:
    """``await wait_for(coro, timeout)`` on miniloop: its result, or TimeoutError + cancel."""

    async def main() -> list[str]:
        log: list[str] = []
        work = sleeper(miniloop.sleep, miniloop.CancelledError, log)
        await expect_in_time(
            lambda job: wait_for(job, 0.5),
            work(0.01, "fast"),
            "return what `await task` gives when the job finishes in time",
        )
        started = time.perf_counter()
        slow = work(1.5, "slow")
        try:
            with closing(slow):
                await wait_for(slow, 0.03)
        except TimeoutError:
            pass
        else:
            expect(
                False,
                "a 1.5 s job with a 0.03 s timeout did not raise TimeoutError",
                "when the timer has cancelled the task, raise TimeoutError",
            )
        waited = time.perf_counter() - started
        expect(
            waited < 0.75,
            f"wait_for waited {waited:.2f} s for a 0.03 s timeout",
            "schedule the cancel with loop.call_later(timeout, task.cancel)",
        )
        await miniloop.sleep(0)
        expect(
            log == ["cancelled"],
            f"after the timeout the job was not cancelled (log: {log})",
            "call task.cancel() from a loop.call_later timer, then turn the CancelledError "
            "you get from `await task` into TimeoutError",
        )

        await expect_own_error(
            lambda job: wait_for(job, 0.5),
            came_out_as="a job's own KeyError came out of wait_for as",
            swallowed="a job's own KeyError did not come out of wait_for",
            hint="let the job's own errors propagate from `await task`; turn only the "
            "CancelledError your timer caused into TimeoutError",
        )
        return log

    _run(main())
    return passed("mini wait_for", "result in time; TimeoutError and a cancelled job otherwise")
