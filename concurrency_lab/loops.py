"""Event loops compared: miniloop, asyncio and uvloop on the same coroutine code; idle vs polling.

Timings run in a **fresh interpreter** by default (``python -m concurrency_lab.fresh
loop-samples`` prints JSON): inside a notebook the kernel's running loop forces asyncio and
uvloop into a helper thread while miniloop runs in the main thread, and the kernel's own threads
share the GIL, so an in-kernel comparison is not like for like. Timings are medians of repeats
with the garbage collector paused, as ``timeit`` does (see :mod:`concurrency_lab.stats`); they
are noisy on a shared machine, so compare ratios measured side by side in one run, not absolute
numbers across runs.

Chapter 06 also shows what an idle loop does (:func:`idle_loop_demo`: it sleeps in its
selector) against a loop that polls the clock (:func:`busy_wait`: it spins).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from concurrency_lab import miniloop
from concurrency_lab._runner import gc_paused, run_fresh, run_sync
from concurrency_lab.stats import summarize

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from concurrency_lab.timeline import Timeline

__all__ = [
    "LOOPS",
    "LOOP_COLORS",
    "WORKLOADS",
    "Ranked",
    "busy_wait",
    "compare_loops",
    "handoff",
    "idle_loop_demo",
    "loop_samples",
    "plot_loop_compare",
    "rank_loops",
    "switch_cost",
    "yield_pingpong",
]

#: The event loops :func:`switch_cost` knows; uvloop only where it is installed.
LOOPS = ["miniloop", "asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])
#: One colour per loop, the same in every figure of chapters 04 and 06.
LOOP_COLORS = {"miniloop": "tab:green", "asyncio": "tab:orange", "uvloop": "tab:purple"}

GetLoop = Callable[[], Any]


# -- workloads: the same coroutine code runs on every loop ---------------------------------
async def yield_pingpong(n: int, get_loop: GetLoop) -> float:
    """Two Tasks each ``await asyncio.sleep(0)`` n times; seconds per switch.

    ``asyncio.sleep(0)`` is a bare ``yield``, so this exact code runs on miniloop too.
    """

    async def player() -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    loop = get_loop()
    started = time.perf_counter()
    first, second = loop.create_task(player()), loop.create_task(player())
    await first
    await second
    return (time.perf_counter() - started) / (2 * n)


async def handoff(n: int, get_loop: GetLoop) -> float:
    """Two Tasks wake each other through fresh Futures n times each; seconds per switch.

    A switch here is the full path of real IO code: ``set_result`` schedules the waiter's
    wake-up callback, the loop runs it, the waiter's coroutine resumes.
    """
    loop = get_loop()
    inbox = {"ping": loop.create_future(), "pong": loop.create_future()}

    async def player(me: str, other: str) -> None:
        for _ in range(n):
            await inbox[me]
            inbox[me] = loop.create_future()
            inbox[other].set_result(None)

    started = time.perf_counter()
    tasks = [loop.create_task(player("ping", "pong")), loop.create_task(player("pong", "ping"))]
    inbox["ping"].set_result(None)  # ping serves first
    for task in tasks:
        await task
    return (time.perf_counter() - started) / (2 * n)


WORKLOADS: dict[str, Callable[[int, GetLoop], Coroutine[Any, Any, float]]] = {
    "sleep(0) switch": yield_pingpong,
    "Future hand-off": handoff,
}


def switch_cost(loop: str, workload: str, n: int) -> float:
    """Seconds per switch of ``workload`` (a key of ``WORKLOADS``) on ``loop`` (in ``LOOPS``).

    Measured in the calling interpreter; asyncio and uvloop go to a helper thread when this
    thread already runs a loop (as in a notebook), so compare loops with :func:`compare_loops`.
    """
    body = WORKLOADS[workload]
    if loop not in LOOPS:
        raise ValueError(f"unknown or uninstalled loop {loop!r}; choose from {LOOPS}")
    with gc_paused():
        if loop == "miniloop":
            return miniloop.run(body(n, miniloop.get_running_loop))
        factory = None
        if loop == "uvloop":
            import uvloop

            factory = uvloop.new_event_loop
        return run_sync(lambda: body(n, asyncio.get_running_loop), loop_factory=factory)


def loop_samples(n: int, rounds: int) -> list[tuple[str, str, float]]:
    """``rounds`` interleaved rounds of every workload on every loop: (workload, loop, µs)."""
    for workload, loop in itertools.product(WORKLOADS, LOOPS):
        switch_cost(loop, workload, min(n, 1000))  # warm up: imports, caches, specialisation
    return [
        (workload, loop, switch_cost(loop, workload, n) * 1e6)
        for _ in range(rounds)
        for workload in WORKLOADS
        for loop in LOOPS
    ]


def compare_loops(
    n: int = 20_000, repeats: int = 5, progress: bool = False, fresh: bool = True
) -> list[dict]:
    """Every workload on every loop; rows with median, p10 and p90 in µs and ratios.

    With ``fresh`` (the default) each repeat runs in a new interpreter, where every loop runs
    in the main thread with nothing else around; repeats are interleaved so that a burst of
    load from another program hits every loop alike. ``fresh=False`` measures in this process.
    """
    with warnings.catch_warnings():  # without ipywidgets tqdm.auto falls back to text: fine
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

    samples: dict[tuple[str, str], list[float]] = {(w, lp): [] for w in WORKLOADS for lp in LOOPS}
    for _ in tqdm(range(repeats), desc="loops (fresh interpreters)", disable=not progress):
        if fresh:
            measured = run_fresh("loop-samples", f"--n={n}", "--rounds=1")
        else:
            measured = loop_samples(n, 1)
        for workload, loop, us in measured:
            samples[workload, loop].append(us)
    rows = []
    for (workload, loop), values in samples.items():
        s = summarize(values)
        base = summarize(samples[workload, "asyncio"]).median
        rows.append(
            {
                "workload": workload,
                "loop": loop,
                "median_us": s.median,
                "p10_us": s.p10,
                "p90_us": s.p90,
                "cv": s.cv,
                "vs_asyncio": s.median / base,
                "n": n,
                "repeats": repeats,
            }
        )
    return rows


@dataclass(frozen=True)
class Ranked:
    """One loop's place in a workload's ranking: its median and how it stands to the next one."""

    loop: str
    median_us: float
    #: True when this loop's p90 lies below the next (slower) loop's p10: a difference larger
    #: than the run-to-run noise. False when the ranges overlap (too close to call); None last.
    apart_from_next: bool | None


def rank_loops(rows: list[dict]) -> dict[str, list[Ranked]]:
    """Per workload, the loops fastest first, each with whether it is clear of the next one."""
    ranking: dict[str, list[Ranked]] = {}
    for workload in dict.fromkeys(r["workload"] for r in rows):
        ranked = sorted(
            (r for r in rows if r["workload"] == workload), key=lambda r: r["median_us"]
        )
        ranking[workload] = [
            Ranked(
                r["loop"],
                r["median_us"],
                r["p90_us"] < ranked[i + 1]["p10_us"] if i + 1 < len(ranked) else None,
            )
            for i, r in enumerate(ranked)
        ]
    return ranking


def plot_loop_compare(rows: list[dict], ax: Axes | None = None) -> Axes:
    """Grouped bars of :func:`compare_loops` rows: medians, whiskers from p10 to p90."""
    import matplotlib.pyplot as plt
    import numpy as np

    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    loops = [lp for lp in LOOP_COLORS if any(r["loop"] == lp for r in rows)]
    by = {(r["workload"], r["loop"]): r for r in rows}
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(loops)
    for i, loop in enumerate(loops):
        cells = [by[w, loop] for w in workloads]
        medians = [r["median_us"] for r in cells]
        spread = [
            [r["median_us"] - r["p10_us"] for r in cells],
            [r["p90_us"] - r["median_us"] for r in cells],
        ]
        x = np.arange(len(workloads)) + (i - (len(loops) - 1) / 2) * width
        bars = ax.bar(
            x, medians, width, yerr=spread, capsize=3, color=LOOP_COLORS[loop], label=loop
        )
        ax.bar_label(bars, fmt="%.2f", fontsize="small", padding=2)
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylim(top=max(r["p90_us"] for r in rows) * 1.15)
    ax.set_xlabel("workload")
    ax.set_ylabel("time per switch (µs)")
    repeats = rows[0]["repeats"]
    ax.set_title(f"Switch cost by event loop: median, whiskers p10–p90 of {repeats} runs")
    ax.legend(title="loop", fontsize="small", loc="best")
    return ax


# -- chapter 06: an idle loop sleeps; a polling loop spins ----------------------------------
def idle_loop_demo(tl: Timeline, delays: tuple[float, ...] = (0.3, 0.1, 0.2)) -> dict[str, Any]:
    """Tasks sleeping ``delays`` at once on miniloop, each sleep a span of ``tl``.

    Returns what the sleepers returned, wall and CPU seconds, and how often the loop went round.
    """

    async def sleeper(seconds: float) -> float:
        with tl.span(f"sleep({seconds})", lane=f"sleeper {seconds}"):
            await miniloop.sleep(seconds)
        return seconds

    async def sleepers() -> tuple[list[float], int]:
        loop = miniloop.get_running_loop()
        before = loop.iterations
        tasks = [miniloop.create_task(sleeper(s), name=f"sleeper {s}") for s in delays]
        woke = await miniloop.gather(*tasks)
        return woke, loop.iterations - before

    wall, cpu = time.perf_counter(), time.process_time()
    woke, iterations = miniloop.run(sleepers())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"results": woke, "wall_s": wall, "cpu_s": cpu, "iterations": iterations}


def busy_wait(seconds: float = 0.05) -> dict[str, Any]:
    """Wait ``seconds`` by polling the clock, as a loop without a selector would."""
    wall, cpu = time.perf_counter(), time.process_time()
    deadline, iterations = wall + seconds, 0
    while time.perf_counter() < deadline:
        iterations += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "iterations": iterations}
