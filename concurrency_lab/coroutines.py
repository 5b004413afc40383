"""Coroutines (协程) in chapter 04: the seed's a/b example traced, and what one step costs.

:func:`step_costs` compares a function call, a generator ``send``, an ``await`` of a coroutine
that never suspends, and a switch through asyncio's and miniloop's loops. It measures in a
**fresh interpreter** by default (``python -m concurrency_lab.fresh steps``), where both loops
run in the main thread, with the garbage collector paused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from concurrency_lab._runner import gc_paused, run_fresh
from concurrency_lab.loops import LOOP_COLORS, switch_cost
from concurrency_lab.stats import summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from concurrency_lab.timeline import Timeline

__all__ = ["hold_cpu", "plot_step_costs", "step_costs", "traced_ab"]


def hold_cpu(seconds: float) -> None:
    """Hold the CPU (and so the event loop) for ``seconds``, as real Python work does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


# -- chapter 04: the seed's a/b example, traced ----------------------------------------------
async def traced_ab(tl: Timeline, cpu: float = 0.005) -> None:
    """The seed's ``gather(a(), b())``, each stretch a coroutine holds the loop a span of ``tl``.

    Each stretch also holds the CPU for ``cpu`` seconds, so that the bars are wide enough to see.
    """

    async def a() -> None:
        with tl.span("print('Suspending a')"):
            print("Suspending a")
            hold_cpu(cpu)
        await asyncio.sleep(0)
        with tl.span("print('Resuming a')"):
            print("Resuming a")
            hold_cpu(cpu)

    async def b() -> None:
        with tl.span("print('In b')"):
            print("In b")
            hold_cpu(cpu)

    await asyncio.gather(asyncio.create_task(a(), name="a"), asyncio.create_task(b(), name="b"))


# -- chapter 04: what one step costs -------------------------------------------------------
def _per_call(fn: Callable[[int], float], n: int, repeats: int) -> float:
    """Median µs per step over ``repeats`` runs of ``fn(n)``, after one warm-up run."""
    fn(min(n, 1000))
    with gc_paused():
        return summarize([fn(n) for _ in range(repeats)]).median * 1e6


def _time_call(n: int) -> float:
    def f() -> None:
        return None

    started = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - started) / n


def _time_send(n: int) -> float:
    def gen():  # a bare generator, as in chapter 04
        while True:
            yield

    g = gen()
    next(g)
    started = time.perf_counter()
    for _ in range(n):
        g.send(None)
    return (time.perf_counter() - started) / n


def _time_await_coroutine(n: int) -> float:
    async def nothing() -> None:
        return None

    async def body() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await nothing()
        return (time.perf_counter() - started) / n

    coro = body()
    try:
        coro.send(None)  # no loop at all: awaiting a coroutine that never suspends is a call
    except StopIteration as done:
        return done.value
    raise RuntimeError("body() suspended: it should never reach a loop")


def step_costs(n: int = 100_000, repeats: int = 5, fresh: bool = True) -> dict[str, float]:
    """µs per step: a call, a generator ``send``, ``await`` of a coroutine, loop switches.

    With ``fresh`` (the default) everything is measured in a new interpreter, where both loops
    run in the main thread; ``fresh=False`` measures in this process.
    """
    if fresh:
        return run_fresh("steps", f"--n={n}", f"--repeats={repeats}")
    switches = max(n // 10, 1000)
    return {
        "function call": _per_call(_time_call, n, repeats),
        "generator send()": _per_call(_time_send, n, repeats),
        "await a coroutine": _per_call(_time_await_coroutine, n, repeats),
        "asyncio sleep(0) switch": _per_call(
            lambda k: switch_cost("asyncio", "sleep(0) switch", k), switches, repeats
        ),
        "miniloop sleep(0) switch": _per_call(
            lambda k: switch_cost("miniloop", "sleep(0) switch", k), switches, repeats
        ),
    }


def plot_step_costs(costs: dict[str, float], ax: Axes | None = None) -> Axes:
    """Horizontal bars of :func:`step_costs` on a log scale, the two ratios in the title."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 3))
    names = list(costs)
    colors = ["0.6", "0.6", "tab:blue", LOOP_COLORS["asyncio"], LOOP_COLORS["miniloop"]]
    bars = ax.barh(names, list(costs.values()), color=colors[: len(names)])
    ax.bar_label(bars, fmt="%.3f µs", padding=3)
    ax.set_xscale("log")
    ax.set_xlim(right=max(costs.values()) * 8)
    ax.invert_yaxis()
    ax.set_xlabel("time per step (µs, log scale)")
    ax.set_ylabel("kind of step")
    call = costs["await a coroutine"] / costs["function call"]
    switch = costs["asyncio sleep(0) switch"] / costs["await a coroutine"]
    ax.set_title(
        f"An await that does not suspend: {call:.1f}× a call; an asyncio switch: {switch:.0f}× that"
    )
    return ax
