"""Chapter 04 checks: coroutines (协程) from generators to ``async``/``await``.

- :func:`check_averager`: a generator coroutine driven by ``send()``.
- :func:`check_countdown`: an ``async def`` that lets others run between its steps.
- :func:`check_prediction`: predict the printed order of a gather of two coroutines.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from concurrency_lab._runner import run_sync
from concurrency_lab.exercises import ExerciseError, Verdict, expect, passed

__all__ = ["PREDICT_SOURCE", "check_averager", "check_countdown", "check_prediction"]


def check_averager(averager: Callable[[], Generator[float | None, float, Any]]) -> Verdict:
    """``averager()`` makes a generator: prime it with ``next``, then ``send`` numbers in."""
    g = averager()
    expect(
        hasattr(g, "send"),
        f"averager() returned {type(g).__name__}, not a generator",
        "use `yield` inside the function body: `value = yield average`",
    )
    first = next(g)
    expect(
        first is None,
        f"priming with next() yielded {first!r}, expected None",
        "start with `total, count = 0.0, 0` and a bare `value = yield` before any average",
    )
    got = [g.send(x) for x in (10, 20, 0, 10)]
    expect(
        got == [10.0, 15.0, 10.0, 10.0],
        f"sending 10, 20, 0, 10 gave {got}, expected [10.0, 15.0, 10.0, 10.0]",
        "keep a running total and a count between yields; yield total / count",
    )
    fresh = averager()
    next(fresh)
    expect(
        fresh.send(4) == 4.0,
        "a second averager() does not start from zero",
        "keep the state in local variables of the generator, not globals",
    )
    return passed("averager", "running average via send()")


Countdown = Callable[[str, int, list[str]], Coroutine[Any, Any, None]]


def check_countdown(countdown: Countdown) -> Verdict:
    """``countdown(name, n, log)`` logs ``f"{name}{i}"`` for i = n..1, yielding between steps."""

    async def main() -> list[str]:
        log: list[str] = []
        await asyncio.gather(countdown("A", 3, log), countdown("B", 3, log))
        return log

    log = run_sync(main)
    expected = ["A3", "B3", "A2", "B2", "A1", "B1"]
    expect(
        sorted(log) == sorted(expected),
        f"the log holds {log}; each countdown should log its name and n..1",
        'append f"{name}{i}" for i in range(n, 0, -1)',
    )
    expect(
        log == expected,
        f"the countdowns did not take turns: {log}",
        "awaiting a coroutine that never suspends does not hand the loop over; "
        "`await asyncio.sleep(0)` after each step does",
    )
    return passed("countdown", "A and B take turns")


async def _predict_a() -> None:
    print("a1")
    await asyncio.sleep(0)
    print("a2")
    await _helper()
    print("a3")


async def _helper() -> None:
    print("helper")


async def _predict_b() -> None:
    print("b1")
    await asyncio.sleep(0)
    print("b2")


async def _predict_main() -> None:
    await asyncio.gather(_predict_a(), _predict_b())


PREDICT_SOURCE = """\
async def a():
    print("a1")
    await asyncio.sleep(0)
    print("a2")
    await helper()          # helper() is a coroutine that only prints "helper"
    print("a3")

async def b():
    print("b1")
    await asyncio.sleep(0)
    print("b2")

await asyncio.gather(a(), b())
"""


def check_prediction(lines: list[str]) -> Verdict:
    """``lines``: what you predict :data:`PREDICT_SOURCE` prints, one string per line."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run_sync(_predict_main)
    actual = buffer.getvalue().split()
    if not isinstance(lines, list) or sorted(lines) != sorted(actual):
        raise ExerciseError(
            f"your prediction {lines!r} does not hold the same lines as the output; it should "
            f"list each of {sorted(actual)} once",
            "every print runs exactly once: list each printed line once, as a str",
        )
    expect(
        lines == actual,
        f"predicted {lines}, but the order differs",
        "gather starts a first, then b; sleep(0) sends a coroutine to the back of the queue; "
        "`await helper()` runs helper inline, without a switch",
    )
    return passed("prediction")  # no detail: the notebook must not print the answer
