"""CPU-bound and IO-bound jobs, run serially, with threads, with processes and with asyncio.

The seed chapter claims that, because of the GIL (全局解释器锁), none of processes, threads or
coroutines run Python in parallel (并行), and that concurrency (并发) pays off only for IO-bound
(IO密集型) programs. :func:`compare` measures both claims. The first is only half right: the GIL
is per interpreter, so threads and coroutines share one, but each process has its own and
processes do run CPU-bound (CPU密集型) Python in parallel, one per core.

A third workload is CPU-bound too, but in C code that releases the GIL while it works
(``hashlib`` on large buffers, like numpy on large arrays): there threads do run in parallel.

Every job can record its work on a :class:`~concurrency_lab.timeline.Timeline`, in chunks, so
the Gantt chart shows threads taking turns on the GIL while processes overlap (when a core is
free). Every job also reports the CPU time it used, so :func:`compare` can say how many cores'
worth of CPU each mode used: a number the GIL caps at one for threads, whatever the machine.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from concurrency_lab._runner import run_sync
from concurrency_lab.timeline import RawSpan, Timeline, now_ns

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "COLORS",
    "HATCHES",
    "LABELS",
    "MAIN",
    "MODES",
    "WORKLOADS",
    "MainThreadRun",
    "Overlap",
    "ProcessOverlap",
    "Verdict",
    "compare",
    "cpu_job",
    "io_job",
    "main_thread_demo",
    "main_thread_summary",
    "native_job",
    "overlap",
    "parallel_seconds",
    "plot_main_thread",
    "plot_speedups",
    "plot_trace",
    "process_overlap",
    "run",
    "stall",
    "trace",
    "verdicts",
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
#: The main thread's spans in :func:`main_thread_demo` (the seed's picture).
MAIN = {
    "sync": "sync code",
    "submit": "submit tasks",
    "blocked": "blocked: waiting for results",
    "own": "own work (needs no results)",
    "use": "use results",
}
#: Styles for Timeline.plot: work is a strong colour; a wait is hatched and pale (the same
#: convention as chapter 05's picture), in the colour of what it waits to do, or grey.
COLORS = {
    LABELS["cpu"]: "tab:blue",
    LABELS["ready"]: "#c6dbef",
    LABELS["io"]: "0.8",
    MAIN["sync"]: "tab:blue",
    MAIN["submit"]: "tab:orange",
    MAIN["blocked"]: "0.85",
    MAIN["own"]: "tab:green",
    MAIN["use"]: "tab:purple",
}
HATCHES = {LABELS["ready"]: "///", LABELS["io"]: "...", MAIN["blocked"]: "///"}


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


# -- one GIL per process -------------------------------------------------------------------
def _hold_gil(steps: int, go: Any) -> int:
    go.wait()
    return sum(range(steps))  # one C call: it never reaches a point where the GIL is let go


def stall(
    sibling: Literal["thread", "process"], steps: int = 20_000_000, tick: float = 0.002
) -> tuple[float, float]:
    """How long the main thread was frozen while a sibling ran one long C call that keeps its GIL.

    The main thread ticks (``time.sleep(tick)``) while the sibling computes ``sum(range(steps))``:
    a single call into C that never checks whether another thread wants the GIL. Returns the
    longest gap between two ticks and the whole time the sibling ran, in seconds. A sibling
    thread shares this process's GIL, so the ticker freezes for the whole call; a sibling
    process has its own GIL, so the ticker goes on (at worst sharing a core with it).
    """
    go: Any = threading.Event() if sibling == "thread" else multiprocessing.Event()
    kind = threading.Thread if sibling == "thread" else multiprocessing.Process
    worker = kind(target=_hold_gil, args=(steps, go), daemon=True)
    worker.start()  # it waits for `go`, so that starting it is not timed
    ticks = [time.perf_counter()]
    go.set()
    while worker.is_alive():
        time.sleep(tick)
        ticks.append(time.perf_counter())
    worker.join()
    return max(b - a for a, b in itertools.pairwise(ticks)), ticks[-1] - ticks[0]


# -- one job, traced in chunks -------------------------------------------------------------
def _job(workload: Workload, size: float, chunks: int, tl: Timeline | None) -> float:
    """Run one job and return the CPU seconds this thread spent on it.

    With a timeline, record each chunk of CPU work, or the whole wait. A chunk that took much
    longer on the wall clock than on this thread's CPU clock was preempted: another thread held
    the GIL, or another program held the CPU. Such chunks are recorded as "ready, not running",
    so the chart shows who really ran.
    """
    started = time.thread_time()
    if workload == "io":
        if tl is None:
            io_job(size)
        else:
            with tl.span(LABELS["io"]):
                io_job(size)
        return time.thread_time() - started
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
    return time.thread_time() - started


def _chunk_of(workload: Workload, step: int, chunks: int) -> Callable[[int], object]:
    """The i-th chunk of a CPU job: ``step`` steps of arithmetic, or of bytes to hash."""
    if workload == "cpu":
        return lambda _: cpu_job(step)
    view, digest = memoryview(_buffer(step * chunks)), hashlib.sha256()
    return lambda i: digest.update(view[i * step : (i + 1) * step])


def _job_in_child(
    workload: Workload, size: float, chunks: int, traced: bool
) -> tuple[float, list[RawSpan]]:
    """Worker-process entry point: the spans travel back with the CPU time."""
    tl = Timeline() if traced else None
    cpu = _job(workload, size, chunks, tl)
    return cpu, tl.export() if tl is not None else []


async def _job_async(workload: Workload, size: float, chunks: int, tl: Timeline | None) -> float:
    if workload != "io":  # no await inside: the loop cannot switch until the job ends
        return _job(workload, size, chunks, tl)
    started = time.thread_time()  # tasks share the thread: count only this task's own steps
    if tl is None:
        await asyncio.sleep(size)
    else:
        with tl.span(LABELS["io"]):
            await asyncio.sleep(size)
    return time.thread_time() - started


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
    of waiting for ``"io"``. Pools are started and warmed before the clock starts: start-up is
    a separate price (chapter 00).
    """
    return _run(workload, mode, jobs, size, chunks, timeline)[0]


def _run(
    workload: Workload,
    mode: Mode,
    jobs: int,
    size: float,
    chunks: int = 20,
    tl: Timeline | None = None,
) -> tuple[float, float]:
    """:func:`run`, returning (wall seconds, CPU seconds the jobs used in all)."""
    if mode == "serial":
        start = time.perf_counter()
        cpu = sum(_job(workload, size, chunks, tl) for _ in range(jobs))
    elif mode == "threads":
        with ThreadPoolExecutor(jobs, thread_name_prefix="thread") as threads:
            _warm(threads, jobs)
            start = time.perf_counter()
            futures = [threads.submit(_job, workload, size, chunks, tl) for _ in range(jobs)]
            cpu = sum(f.result() for f in futures)
    elif mode == "processes":
        with ProcessPoolExecutor(jobs) as processes:
            _warm(processes, jobs)
            start = time.perf_counter()
            done = [
                processes.submit(_job_in_child, workload, size, chunks, tl is not None)
                for _ in range(jobs)
            ]
            cpu = 0.0
            for child in done:
                used, spans = child.result()
                cpu += used
                if tl is not None:
                    tl.extend(spans)
    elif mode == "asyncio":

        async def main() -> float:
            used = await asyncio.gather(
                *(
                    asyncio.create_task(_job_async(workload, size, chunks, tl), name=f"task-{i}")
                    for i in range(jobs)
                )
            )
            return sum(used)

        start = time.perf_counter()
        cpu = run_sync(main)
    else:
        raise ValueError(f"unknown mode {mode!r}; pick one of {MODES}")
    return time.perf_counter() - start, cpu


def _warm(pool: ThreadPoolExecutor | ProcessPoolExecutor, jobs: int) -> None:
    """Start all ``jobs`` workers before timing: pools start workers lazily, and reuse an idle
    one rather than start another, so each warm-up job holds its worker for a moment."""
    list(pool.map(_pause, range(jobs)))


def _pause(_: object) -> None:
    time.sleep(0.01)


def _noop(_: object) -> None:
    pass


def _sizes(quick: bool) -> dict[Workload, float]:
    """Jobs of about 40 ms (quick) or 120 ms of CPU, and IO waits of 50 or 100 ms."""
    if quick:
        return {"cpu": 1.2e6, "native": 64 * 2**20, "io": 0.05}
    return {"cpu": 3.6e6, "native": 192 * 2**20, "io": 0.1}


def compare(quick: bool = False, jobs: int = 4, repeats: int | None = None) -> pd.DataFrame:
    """Median wall time, speed-up over serial and cores used, for every workload and mode.

    Within a repeat, the modes of one workload run between two serial runs of the same jobs,
    and each mode's speed-up is the mean of those two serial times divided by its own. Pairing
    neighbouring runs cancels most of the drift in load from other programs; the median over
    repeats is reported. ``cores used`` is the CPU time the jobs used divided by the wall time.
    ``noise`` is how much the two serial runs around the modes disagreed (median over repeats,
    as a fraction of their mean): a speed-up closer to 1 than that is no speed-up.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    repeats = repeats or (3 if quick else 5)
    sizes = _sizes(quick)
    cases = [(w, m) for w in WORKLOADS for m in MODES]
    times: dict[tuple[Workload, Mode], list[float]] = {c: [] for c in cases}
    ratios: dict[tuple[Workload, Mode], list[float]] = {c: [] for c in cases}
    cores: dict[tuple[Workload, Mode], list[float]] = {c: [] for c in cases}
    drift: dict[Workload, list[float]] = {w: [] for w in WORKLOADS}
    for _ in tqdm(range(repeats), desc="repeats", leave=False):
        for w in WORKLOADS:
            before = _run(w, "serial", jobs, sizes[w])
            measured: dict[Mode, tuple[float, float]] = {
                m: _run(w, m, jobs, sizes[w]) for m in MODES if m != "serial"
            }
            after = _run(w, "serial", jobs, sizes[w])
            base = (before[0] + after[0]) / 2
            drift[w].append(abs(before[0] - after[0]) / base)
            measured["serial"] = (base, (before[1] + after[1]) / 2)
            for m, (seconds, cpu) in measured.items():
                times[w, m].append(seconds)
                ratios[w, m].append(base / seconds)
                cores[w, m].append(cpu / seconds)
    rows = [
        {
            "workload": w,
            "mode": m,
            "seconds": statistics.median(times[w, m]),
            "speedup": statistics.median(ratios[w, m]),
            "cores used": statistics.median(cores[w, m]),
            "noise": statistics.median(drift[w]),
        }
        for w, m in cases
    ]
    frame = pd.DataFrame(rows)
    frame["jobs"], frame["cores"] = jobs, os.cpu_count()
    return frame


@dataclass(frozen=True)
class Verdict:
    """One workload and mode of :func:`compare` against serial: gained, no gain, or slower."""

    workload: str
    mode: str
    speedup: float
    band: float  # how far from 1 a speed-up must be to count (twice the noise, at least a floor)
    cores_used: float
    serial_cores_used: float  # nan when the frame has no serial run of this workload

    @property
    def verdict(self) -> Literal["gained", "no gain", "slower"]:
        if self.speedup >= 1 + self.band:
            return "gained"
        if self.speedup <= 1 - self.band:
            return "slower"
        return "no gain"

    @property
    def one_core_gain(self) -> bool:
        """A CPU-bound gain made on at most one core's worth of CPU: a bigger share of one core
        (the OS schedules each thread against the other programs), not parallelism."""
        return self.verdict == "gained" and self.workload != "io" and self.cores_used <= 1.05


def verdicts(frame: pd.DataFrame, floor: float = 0.15) -> list[Verdict]:
    """One verdict per workload and mode of :func:`compare` (serial is the baseline, not one).

    A speed-up counts only when it is further from 1 than twice the measured noise (and at
    least ``floor``): on a busy machine, 1.2× may be nothing but the load changing.
    """
    out = []
    rows = frame.set_index(["workload", "mode"])
    for (w, m), row in rows.iterrows():
        if m == "serial":
            continue
        out.append(
            Verdict(
                str(w),
                str(m),
                float(row["speedup"]),
                max(floor, 2 * float(row["noise"])),
                float(row["cores used"]),
                float(rows.loc[(w, "serial"), "cores used"])
                if (w, "serial") in rows.index
                else float("nan"),
            )
        )
    return out


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
    tl.origin_ns = min(r.start_ns for r in tl.export())  # time 0: the first job starts
    return tl


def plot_trace(tl: Timeline, ax: Axes | None = None, title: str = "Who ran when") -> Axes:
    """A traced run as a Gantt chart: lanes sorted, running strong, waiting pale."""
    return tl.plot(ax=ax, title=title, lanes=sorted(tl.lanes), colors=COLORS, hatches=HATCHES)


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


@dataclass(frozen=True)
class Overlap:
    """How long two or more lanes did ``label`` at once, of the time at least one did it."""

    label: str
    both_s: float
    anyone_s: float

    @property
    def share(self) -> float:
        return self.both_s / self.anyone_s if self.anyone_s else 0.0

    @property
    def overlapped(self) -> bool:
        """Waits overlapped (IO: more than half the time) or CPU work ran in parallel (≥ 20 %)."""
        return self.share > 0.5 if self.label == LABELS["io"] else self.share >= 0.2


def overlap(tl: Timeline, label: str = LABELS["cpu"]) -> Overlap:
    """What :func:`parallel_seconds` found for ``label`` in ``tl``."""
    both, anyone = parallel_seconds(tl, label)
    return Overlap(label, both, anyone)


@dataclass(frozen=True)
class ProcessOverlap:
    """Whether two processes' CPU work overlapped, beside the cores other programs left free.

    ``busy`` is how many cores other programs kept busy just before the run
    (:func:`concurrency_lab.stats.busy_cores`), of ``cores``. Processes have a GIL each, so
    only the cores decide whether they can run at once.
    """

    share: float  # of the time any process computed, the share both did at the same instant
    busy: float
    cores: int

    @property
    def free(self) -> float:
        return max(self.cores - self.busy, 0.0)

    @property
    def parallel(self) -> bool:
        return self.share >= 0.2

    @property
    def crowded(self) -> bool:
        """Fewer than the two free cores two processes need to run at once."""
        return self.free < 1.5


def process_overlap(tl: Timeline, busy: float, cores: int) -> ProcessOverlap:
    """How much two processes' CPU work overlapped in ``tl`` (see :class:`ProcessOverlap`)."""
    return ProcessOverlap(overlap(tl, LABELS["cpu"]).share, busy, cores)


def main_thread_demo(
    wait: bool, jobs: int = 3, seconds: float = 0.08, own_work: int = 1_200_000
) -> Timeline:
    """The seed's picture: the main thread submits tasks, then blocks for them or carries on.

    Both runs do the same work: sync code, ``jobs`` tasks in worker threads that wait for IO
    (up to ``seconds``), ``own_work`` steps of the main thread's own work that does not need
    the tasks' results, then code that uses the results. With ``wait=True`` the main thread
    blocks right after submitting and does its own work afterwards; with ``wait=False`` it
    does its own work while the tasks wait, and blocks only for what is left.
    """
    tl = Timeline()
    with tl.span(MAIN["sync"]):
        cpu_job(300_000)
    with ThreadPoolExecutor(jobs, thread_name_prefix="task") as pool:
        with tl.span(MAIN["submit"]):  # the pool starts one thread per task here
            futures = [
                pool.submit(_job, "io", seconds * (k + 2) / (jobs + 1), 1, tl) for k in range(jobs)
            ]
        if not wait:
            with tl.span(MAIN["own"]):
                cpu_job(own_work)
        with tl.span(MAIN["blocked"]):
            results = [f.result() for f in futures]
        if wait:
            with tl.span(MAIN["own"]):
                cpu_job(own_work)
    with tl.span(MAIN["use"]):
        cpu_job(100_000 + len(results))
    return tl


def plot_main_thread(runs: dict[bool, Timeline]) -> Figure:
    """The :func:`main_thread_demo` runs (keyed by ``wait``) one above the other, same scale."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 2.6 * len(runs)), sharex=True)
    for i, (ax, (wait, tl)) in enumerate(zip(axes, runs.items(), strict=True)):
        title = "blocks at once" if wait else "carries on with its own work, then blocks"
        tl.plot(
            ax=ax,
            title=f"wait={wait}: the main thread {title}",
            colors=COLORS,
            hatches=HATCHES,
            ylabel="thread",
            legend=i == 0,
        )
        if i < len(runs) - 1:
            ax.set_xlabel("")  # the axes share one time scale, labelled at the bottom
    tasks = sum(lane.startswith("task") for lane in next(iter(runs.values())).lanes)
    fig.suptitle(f"Submit {tasks} tasks that wait for IO, then block or carry on (threads)")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class MainThreadRun:
    """One :func:`main_thread_demo` run, in milliseconds: done after, blocked, own work."""

    total_ms: float
    blocked_ms: float
    own_work_ms: float


def main_thread_summary(runs: dict[bool, Timeline]) -> dict[bool, MainThreadRun]:
    """The numbers of the :func:`main_thread_demo` runs (keyed by ``wait``), from their spans."""
    out = {}
    for wait, tl in runs.items():
        spans = tl.spans
        main = {label: 0.0 for label in MAIN.values()}
        for s in spans:
            if s.lane == "MainThread":
                main[s.label] += s.duration * 1e3
        out[wait] = MainThreadRun(
            (max(s.end for s in spans) - min(s.start for s in spans)) * 1e3,
            main[MAIN["blocked"]],
            main[MAIN["own"]],
        )
    return out
