"""CPU-bound and IO-bound jobs, run serially, with threads, with processes and with asyncio.

The seed chapter claims that, because of the GIL (全局解释器锁), none of processes, threads or
coroutines run Python in parallel (并行), and that concurrency (并发) pays off only for IO-bound
(IO密集型) programs. :func:`compare` measures both claims. The first is only half right: the GIL
is per interpreter, so threads and coroutines share one, but each process has its own and
processes do run CPU-bound (CPU密集型) Python in parallel, one per core.

A third workload is CPU-bound too, but in C code that releases the GIL while it works
(``hashlib`` on large buffers, like numpy on large arrays): there threads do run in parallel.

Every job can record its work on a :class:`~concurrency_lab.timeline.Timeline`, in chunks, so
the Gantt chart shows threads taking turns on the GIL while processes overlap.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Literal

from concurrency_lab._aio import run_sync
from concurrency_lab.timeline import RawSpan, Timeline, now_ns

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "COLORS",
    "LABELS",
    "MODES",
    "WORKLOADS",
    "compare",
    "cpu_job",
    "io_job",
    "main_thread_demo",
    "native_job",
    "parallel_seconds",
    "plot_speedups",
    "plot_trace",
    "run",
    "trace",
]

Workload = Literal["cpu", "native", "io"]
Mode = Literal["serial", "threads", "processes", "asyncio"]
WORKLOADS: tuple[Workload, ...] = ("cpu", "native", "io")
TITLES = {
    "cpu": "CPU-bound\n(pure Python)",
    "native": "CPU-bound\n(C code, GIL released)",
    "io": "IO-bound\n(waiting)",
}
MODES: tuple[Mode, ...] = ("serial", "threads", "processes", "asyncio")
LABELS = {"cpu": "CPU work", "io": "waiting for IO", "ready": "ready, not running (GIL or CPU)"}
#: Colours for Timeline.plot(colors=...): running is strong, waiting is pale.
COLORS = {
    LABELS["cpu"]: "tab:blue",
    LABELS["io"]: "tab:green",
    LABELS["ready"]: "#d9d9d9",
    # main_thread_demo's labels
    "sync code": "tab:blue",
    "submit tasks": "tab:orange",
    "blocked: waiting for results": "tab:red",
    "carries on: own work": "tab:cyan",
    "collect results": "#f4a6a6",
    "use results": "tab:purple",
}


def cpu_job(n: int) -> int:
    """Pure-Python arithmetic: holds the GIL the whole time (about 30 ns per step)."""
    total = 0
    for i in range(n):
        total += i % 7
    return total


@functools.lru_cache(maxsize=1)
def _buffer(nbytes: int) -> bytes:
    return bytes(nbytes)


def native_job(nbytes: int) -> str:
    """SHA-256 of ``nbytes`` bytes: C code that releases the GIL for buffers over 2 KiB."""
    return hashlib.sha256(_buffer(nbytes)).hexdigest()


def io_job(seconds: float) -> float:
    """Stand-in for a network call: ``time.sleep`` waits without the GIL, like a socket read."""
    time.sleep(seconds)
    return seconds


# -- one job, traced in chunks -------------------------------------------------------------
def _job(workload: Workload, size: float, chunks: int, tl: Timeline | None) -> float:
    """Run one job; with a timeline, record each chunk of CPU work or the whole wait.

    A chunk that took much longer on the wall clock than on this thread's CPU clock was
    preempted: another thread held the GIL, or another program held the CPU. Such chunks are
    recorded as "ready, not running", so the chart shows who really ran.
    """
    if workload == "io":
        if tl is None:
            return io_job(size)
        with tl.span(LABELS["io"]):
            return io_job(size)
    step = int(size) // chunks
    work = _chunk_of(workload, step, chunks)
    # Chunks are contiguous: a pause between two chunks (a preemption often lands on the clock
    # read itself) belongs to the next chunk and is judged with it.
    wall, cpu = now_ns(), time.thread_time_ns()
    for i in range(chunks):
        work(i)
        if tl is not None:
            end, cpu_end = now_ns(), time.thread_time_ns()
            ran = 2 * (cpu_end - cpu) > end - wall
            tl.record(LABELS["cpu" if ran else "ready"], wall, end)
            wall, cpu = end, cpu_end
    return size


def _chunk_of(workload: Workload, step: int, chunks: int) -> Callable[[int], object]:
    """The i-th chunk of a CPU job: ``step`` steps of arithmetic, or of bytes to hash."""
    if workload == "cpu":
        return lambda _: cpu_job(step)
    view, digest = memoryview(_buffer(step * chunks)), hashlib.sha256()
    return lambda i: digest.update(view[i * step : (i + 1) * step])


def _job_in_child(
    workload: Workload, size: float, chunks: int, traced: bool
) -> tuple[float, list[RawSpan]]:
    """Worker-process entry point: the spans travel back with the result."""
    tl = Timeline() if traced else None
    result = _job(workload, size, chunks, tl)
    return result, tl.export() if tl is not None else []


async def _job_async(workload: Workload, size: float, chunks: int, tl: Timeline | None) -> float:
    if workload != "io":  # no await inside: the loop cannot switch until the job ends
        return _job(workload, size, chunks, tl)
    if tl is None:
        await asyncio.sleep(size)
    else:
        with tl.span(LABELS["io"]):
            await asyncio.sleep(size)
    return size


def run(
    workload: Workload,
    mode: Mode,
    jobs: int,
    size: float,
    *,
    chunks: int = 20,
    timeline: Timeline | None = None,
) -> float:
    """Run ``jobs`` equal jobs in one mode (one worker per job); return the wall time in s.

    ``size`` is steps of arithmetic for ``"cpu"``, bytes to hash for ``"native"`` and seconds
    of waiting for ``"io"``. Pools
    are started and warmed before the clock starts: start-up is a separate price (chapter 03).
    """
    tl = timeline
    if mode == "serial":
        start = time.perf_counter()
        for _ in range(jobs):
            _job(workload, size, chunks, tl)
    elif mode == "threads":
        with ThreadPoolExecutor(jobs, thread_name_prefix="thread") as threads:
            list(threads.map(_noop, range(jobs)))
            start = time.perf_counter()
            for f in [threads.submit(_job, workload, size, chunks, tl) for _ in range(jobs)]:
                f.result()
    elif mode == "processes":
        with ProcessPoolExecutor(jobs) as processes:
            list(processes.map(_noop, range(jobs)))
            start = time.perf_counter()
            done = [
                processes.submit(_job_in_child, workload, size, chunks, tl is not None)
                for _ in range(jobs)
            ]
            for child in done:
                _, spans = child.result()
                if tl is not None:
                    tl.extend(spans)
    elif mode == "asyncio":

        async def main() -> None:
            await asyncio.gather(
                *(
                    asyncio.create_task(_job_async(workload, size, chunks, tl), name=f"task-{i}")
                    for i in range(jobs)
                )
            )

        start = time.perf_counter()
        run_sync(main)
    else:
        raise ValueError(f"unknown mode {mode!r}; pick one of {MODES}")
    return time.perf_counter() - start


def _noop(_: object) -> None:
    pass


def _sizes(quick: bool) -> dict[Workload, float]:
    """Jobs of about 40 ms (quick) or 120 ms of CPU, and IO waits of 50 or 100 ms."""
    if quick:
        return {"cpu": 1.2e6, "native": 64 * 2**20, "io": 0.05}
    return {"cpu": 3.6e6, "native": 192 * 2**20, "io": 0.1}


def compare(quick: bool = False, jobs: int = 4, repeats: int | None = None) -> pd.DataFrame:
    """Median wall time and speed-up over serial for every workload and mode.

    Within a repeat, the modes of one workload run between two serial runs of the same jobs,
    and each mode's speed-up is the mean of those two serial times divided by its own. Pairing
    neighbouring runs cancels most of the drift in load from other programs; the median over
    repeats is reported.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    repeats = repeats or (3 if quick else 5)
    sizes = _sizes(quick)
    cases = [(w, m) for w in WORKLOADS for m in MODES]
    times: dict[tuple[Workload, Mode], list[float]] = {c: [] for c in cases}
    ratios: dict[tuple[Workload, Mode], list[float]] = {c: [] for c in cases}
    for _ in tqdm(range(repeats), desc="repeats", leave=False):
        for w in WORKLOADS:
            before = run(w, "serial", jobs, sizes[w])
            measured: dict[Mode, float] = {
                m: run(w, m, jobs, sizes[w]) for m in MODES if m != "serial"
            }
            base = (before + run(w, "serial", jobs, sizes[w])) / 2
            measured["serial"] = base
            for m, seconds in measured.items():
                times[w, m].append(seconds)
                ratios[w, m].append(base / seconds)
    rows = [
        {
            "workload": w,
            "mode": m,
            "seconds": statistics.median(times[w, m]),
            "speedup": statistics.median(ratios[w, m]),
        }
        for w, m in cases
    ]
    frame = pd.DataFrame(rows)
    frame["jobs"], frame["cores"] = jobs, os.cpu_count()
    return frame


def plot_speedups(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Grouped bars: speed-up over serial per mode, CPU-bound next to IO-bound."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 4))
    width = 0.8 / len(MODES)
    for i, mode in enumerate(MODES):
        rows = frame[frame["mode"] == mode].set_index("workload").loc[list(WORKLOADS)]
        xs = [k + (i - (len(MODES) - 1) / 2) * width for k in range(len(WORKLOADS))]
        bars = ax.bar(xs, rows["speedup"], width, label=mode)
        ax.bar_label(bars, fmt="%.1f×", fontsize="small")
    jobs, cores = int(frame["jobs"].iloc[0]), int(frame["cores"].iloc[0])
    ax.axhline(1, color="k", lw=0.8)
    ax.axhline(cores, color="grey", ls="--", lw=0.8, label=f"{cores} cores")
    ax.set_xticks(range(len(WORKLOADS)), [TITLES[w] for w in WORKLOADS])
    ax.set_ylabel("speed-up over serial (×)")
    ax.set_xlabel(f"workload ({jobs} equal jobs, one worker each)")
    ax.set_title("Who gains from concurrency? Speed-up over running the jobs one by one")
    ax.legend(fontsize="small", ncols=3)
    ax.set_ylim(0, max(jobs, frame["speedup"].max()) * 1.2)
    return ax


def trace(workload: Workload, mode: Mode, jobs: int = 2, quick: bool = True) -> Timeline:
    """One traced run, for a Gantt chart of who ran when."""
    tl = Timeline()
    size = _sizes(quick)[workload] * (1 if workload == "io" else 0.5)
    run(workload, mode, jobs, size, chunks=200, timeline=tl)
    return tl


def plot_trace(tl: Timeline, ax: Axes | None = None, title: str = "Who ran when") -> Axes:
    """A traced run as a Gantt chart: lanes sorted, running strong, waiting pale."""
    return tl.plot(ax=ax, title=title, lanes=sorted(tl.lanes), colors=COLORS)


def parallel_seconds(tl: Timeline, label: str = LABELS["cpu"]) -> tuple[float, float]:
    """(seconds when two or more lanes did ``label`` at once, seconds when at least one did).

    For CPU work, the first is time spent in parallel: about zero for threads under the GIL.
    """
    edges = sorted(
        [(s.start, 1) for s in tl.spans if s.label == label and s.end > s.start]
        + [(s.end, -1) for s in tl.spans if s.label == label and s.end > s.start]
    )
    both = anyone = 0.0
    running, last = 0, 0.0
    for t, step in edges:
        if running >= 2:
            both += t - last
        if running >= 1:
            anyone += t - last
        running, last = running + step, t
    return both, anyone


def main_thread_demo(wait: bool, jobs: int = 3, seconds: float = 0.08) -> Timeline:
    """The seed's picture: the main thread submits tasks, then blocks for them or carries on."""
    tl = Timeline()
    with tl.span("sync code"):
        cpu_job(300_000)
    tl.mark("submit tasks")
    with ThreadPoolExecutor(jobs, thread_name_prefix="task") as pool:
        futures = [
            pool.submit(_job, "io", seconds * (k + 2) / (jobs + 1), 1, tl) for k in range(jobs)
        ]
        if wait:
            with tl.span("blocked: waiting for results"):
                results = [f.result() for f in futures]
        else:
            for _ in range(10):
                with tl.span("carries on: own work"):
                    cpu_job(150_000)
            with tl.span("collect results"):
                results = [f.result() for f in futures]
    with tl.span("use results"):
        cpu_job(100_000 + len(results))
    return tl
