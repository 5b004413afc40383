"""The chapter's jobs: CPU-bound and IO-bound, run serially, with threads, processes or asyncio.

Three workloads (负载): pure-Python arithmetic that holds the GIL (CPU密集型), hashing in C code
that releases it, and waiting (IO密集型). :func:`run` runs ``jobs`` equal ones in one mode.
Every job can record its work on a :class:`~concurrency_lab.timeline.Timeline`, in chunks, so
a Gantt chart shows who ran when (:mod:`concurrency_lab.gil`), and every job reports the CPU
time it used, so :mod:`concurrency_lab.speedups` can say how many cores' worth each mode used.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Literal, NamedTuple

from concurrency_lab._runner import run_sync
from concurrency_lab.timeline import RawSpan, Timeline, now_ns

__all__ = [
    "COLORS",
    "HATCHES",
    "LABELS",
    "MODES",
    "TITLES",
    "WORKLOADS",
    "Mode",
    "Timing",
    "Workload",
    "cpu_job",
    "io_job",
    "native_job",
    "run",
    "sizes",
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
#: Styles for Timeline.plot: work is a strong colour; a wait is hatched and pale (the same
#: convention as chapter 05's picture), in the colour of what it waits to do, or grey.
COLORS = {LABELS["cpu"]: "tab:blue", LABELS["ready"]: "#c6dbef", LABELS["io"]: "0.8"}
HATCHES = {LABELS["ready"]: "///", LABELS["io"]: "..."}


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


def _waiting(tl: Timeline | None) -> contextlib.AbstractContextManager[object]:
    """The span of an IO wait on ``tl``, or nothing when the job is not traced."""
    return contextlib.nullcontext() if tl is None else tl.span(LABELS["io"])


def _job(workload: Workload, size: float, chunks: int, tl: Timeline | None) -> float:
    """Run one job and return the CPU seconds this thread spent on it.

    With a timeline, record each chunk of CPU work, or the whole wait. A chunk that took much
    longer on the wall clock than on this thread's CPU clock was preempted: another thread held
    the GIL, or another program held the CPU. Such chunks are recorded as "ready, not running",
    so the chart shows who really ran.
    """
    started = time.thread_time()
    if workload == "io":
        with _waiting(tl):
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
    with _waiting(tl):
        await asyncio.sleep(size)
    return time.thread_time() - started


class Timing(NamedTuple):
    """What :func:`run` measured: wall seconds, and CPU seconds the jobs used in all."""

    seconds: float
    cpu_seconds: float


def run(
    workload: Workload,
    mode: Mode,
    jobs: int,
    size: float,
    *,
    chunks: int = 20,
    timeline: Timeline | None = None,
) -> Timing:
    """Run ``jobs`` equal jobs in one mode (one worker per job); return the wall and CPU time.

    ``size`` is steps of arithmetic for ``"cpu"``, bytes to hash for ``"native"`` and seconds
    of waiting for ``"io"``. Pools are started and warmed before the clock starts: start-up is
    a separate price (chapter 00). The CPU time says how many cores' worth the jobs used.
    """
    if mode == "serial":
        start = time.perf_counter()
        cpu = sum(_job(workload, size, chunks, timeline) for _ in range(jobs))
    elif mode == "threads":
        with ThreadPoolExecutor(jobs, thread_name_prefix="thread") as threads:
            _warm(threads, jobs)
            start = time.perf_counter()
            futures = [threads.submit(_job, workload, size, chunks, timeline) for _ in range(jobs)]
            cpu = sum(f.result() for f in futures)
    elif mode == "processes":
        with ProcessPoolExecutor(jobs) as processes:
            _warm(processes, jobs)
            start = time.perf_counter()
            done = [
                processes.submit(_job_in_child, workload, size, chunks, timeline is not None)
                for _ in range(jobs)
            ]
            cpu = 0.0
            for child in done:
                used, spans = child.result()
                cpu += used
                if timeline is not None:
                    timeline.extend(spans)
    elif mode == "asyncio":

        async def main() -> float:
            used = await asyncio.gather(
                *(
                    asyncio.create_task(
                        _job_async(workload, size, chunks, timeline), name=f"task-{i}"
                    )
                    for i in range(jobs)
                )
            )
            return sum(used)

        start = time.perf_counter()
        cpu = run_sync(main)
    else:
        raise ValueError(f"unknown mode {mode!r}; pick one of {MODES}")
    return Timing(time.perf_counter() - start, cpu)


def _warm(pool: ThreadPoolExecutor | ProcessPoolExecutor, jobs: int) -> None:
    """Start all ``jobs`` workers before timing: pools start workers lazily, and reuse an idle
    one rather than start another, so each warm-up job holds its worker for a moment."""
    list(pool.map(_pause, range(jobs)))


def _pause(_: object) -> None:
    time.sleep(0.01)


def sizes(quick: bool) -> dict[Workload, float]:
    """Jobs of about 40 ms (quick) or 120 ms of CPU, and IO waits of 50 or 100 ms."""
    if quick:
        return {"cpu": 1.2e6, "native": 64 * 2**20, "io": 0.05}
    return {"cpu": 3.6e6, "native": 192 * 2**20, "io": 0.1}
