"""The other prices of a unit: memory per idle process, thread, task or generator, and start-up.

A switch is one price of a unit of concurrency; what one more of them occupies in memory, and
what it costs to create, start and finish one, are the other two.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from concurrency_lab._runner import run_sync
from concurrency_lab.pingpong import MECHANISMS, mirror
from concurrency_lab.stats import seconds_per_call, summarize
from concurrency_lab.stats import three_digits as _us
from concurrency_lab.switching import SwitchResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["MemoryResult", "memory_per_unit", "plot_memory", "startup_costs"]


@dataclass(frozen=True)
class MemoryResult:
    """Memory one more unit costs: RSS growth (or the child's unique memory for processes)."""

    mechanism: str
    unit: str
    count: int
    kib_per_unit: float
    how: str


def _rss() -> int:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def _idle(stop: Any) -> None:
    stop.wait()


def _threads_memory(count: int) -> MemoryResult:
    stop = threading.Event()
    before = _rss()
    threads = [threading.Thread(target=_idle, args=(stop,), daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    grown = _rss() - before
    stop.set()
    for t in threads:
        t.join()
    how = "RSS growth of this process; each stack reserves 8 MiB of address space but few pages"
    return MemoryResult("thread", "threading.Thread", count, grown / count / 1024, how)


def _processes_memory(count: int) -> MemoryResult:
    import psutil

    stop = mp.Event()
    procs = [mp.Process(target=_idle, args=(stop,), daemon=True) for _ in range(count)]
    for p in procs:
        p.start()
    time.sleep(0.2)  # let every child settle into its wait
    try:
        uss = [psutil.Process(p.pid).memory_full_info().uss for p in procs if p.pid]
    finally:
        stop.set()
        for p in procs:
            p.join(5)
    method = mp.get_start_method()
    how = f"unique memory (USS) of each child; start method {method!r} shares pages until written"
    return MemoryResult("process", f"mp.Process ({method})", count, sum(uss) / count / 1024, how)


def _python_heap_growth(build: Callable[[], Any]) -> int:
    """Bytes of Python objects that ``build()`` allocates and keeps (exact, via tracemalloc).

    RSS would under-count here: small objects land in memory the process already owns.
    """
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = build()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del keep
    return grown


def _tasks_memory(count: int) -> MemoryResult:
    import tracemalloc

    async def main() -> int:
        stop = asyncio.Event()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tasks = [asyncio.create_task(stop.wait()) for _ in range(count)]
            await asyncio.sleep(0)  # every task starts and parks on the event with a waiter
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        stop.set()
        await asyncio.gather(*tasks)
        return grown

    grown = run_sync(main)
    how = "Python heap growth (tracemalloc) per started, waiting task"
    return MemoryResult("coroutine", "asyncio.Task", count, grown / count / 1024, how)


def _generators_memory(count: int) -> MemoryResult:
    def build() -> list[Generator[Any, Any, None]]:
        gens = [mirror() for _ in range(count)]
        for g in gens:
            next(g)
        return gens

    grown = _python_heap_growth(build)
    how = "Python heap growth (tracemalloc) per started generator"
    return MemoryResult("generator", "generator", count, grown / count / 1024, how)


def memory_per_unit(quick: bool = False) -> list[MemoryResult]:
    """Start many idle units of each kind (bounded counts) and divide the memory they add."""
    scale = 1 if quick else 4
    return [
        _processes_memory(8 * scale),
        _threads_memory(250 * scale),
        _tasks_memory(20_000 * scale),
        _generators_memory(50_000 * scale),
    ]


def plot_memory(results: Sequence[MemoryResult], ax: Axes | None = None) -> Axes:
    """Bars of KiB per unit on a log axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.8))
    palette = dict(zip(MECHANISMS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    ordered = list(results)[::-1]
    ax.barh(
        range(len(ordered)),
        [max(r.kib_per_unit, 1e-3) for r in ordered],
        color=[palette[r.mechanism] for r in ordered],
    )
    for i, r in enumerate(ordered):
        ax.annotate(f" {_us(r.kib_per_unit)} KiB (n={r.count:,})", (r.kib_per_unit, i), va="center")
    ax.set_yticks(range(len(ordered)), [r.unit for r in ordered])
    ax.set_ylabel("unit")
    ax.set_xscale("log")
    ax.set_xlim(right=max(r.kib_per_unit for r in ordered) * 30)
    ax.set_xlabel("memory per idle unit (KiB, log scale)")
    ax.set_title("What one more idle unit costs in memory")
    ax.grid(axis="x", alpha=0.3)
    return ax


def _noop() -> None:
    pass


def startup_costs(quick: bool = False) -> list[SwitchResult]:
    """Time to create, start and finish one unit that does nothing, per mechanism (µs)."""
    repeats = 8 if quick else 30

    def process() -> None:
        p = mp.Process(target=_noop)
        p.start()
        p.join()

    def thread() -> None:
        t = threading.Thread(target=_noop)
        t.start()
        t.join()

    async def nothing() -> None:
        pass

    def generator() -> None:
        for _ in _mirror_once():
            pass

    measured = {
        ("process", f"mp.Process ({mp.get_start_method()})"): seconds_per_call(process, 2, repeats),
        ("thread", "threading.Thread"): seconds_per_call(thread, 50, repeats),
        ("coroutine", "asyncio.Task"): run_sync(lambda: _tasks_samples(nothing, repeats, 500)),
        ("generator", "generator"): seconds_per_call(generator, 5000, repeats),
    }
    results = []
    for (mechanism, name), samples in measured.items():
        s = summarize(samples).scaled(1e6)
        results.append(SwitchResult(mechanism, name, s.median, s.p10, s.p90, s.cv, s.n, 1))
    return results


def _mirror_once() -> Generator[None, None, None]:
    yield


async def _time_tasks(make: Callable[[], Coroutine[Any, Any, None]], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        await asyncio.create_task(make())
    return (time.perf_counter() - start) / inner


async def _tasks_samples(
    make: Callable[[], Coroutine[Any, Any, None]], repeats: int, inner: int
) -> list[float]:
    return [await _time_tasks(make, inner) for _ in range(repeats + 1)][1:]
