"""The GIL (全局解释器锁), measured: one per process, and who ran when because of it.

The seed chapter claims that, because of the GIL, none of processes, threads or coroutines run
Python in parallel (并行). Only half of that is right: the GIL is per interpreter, so threads
and coroutines share one, but each process has its own and processes do run CPU-bound
(CPU密集型) Python in parallel, one per core. :func:`stall` shows the one-per-process rule;
:func:`trace` records a run of :mod:`concurrency_lab.workloads` jobs, so the Gantt chart shows
threads taking turns on the GIL while processes overlap (when a core is free), and
:func:`overlap` measures how long the lanes ran at once.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from concurrency_lab.timeline import Timeline
from concurrency_lab.workloads import COLORS, HATCHES, LABELS, Mode, Workload, run, sizes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "Overlap",
    "ProcessOverlap",
    "overlap",
    "parallel_seconds",
    "plot_trace",
    "process_overlap",
    "stall",
    "trace",
]


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


def trace(workload: Workload, mode: Mode, jobs: int = 2, quick: bool = True) -> Timeline:
    """One traced run, for a Gantt chart of who ran when."""
    tl = Timeline()
    size = sizes(quick)[workload] * (1 if workload == "io" else 0.5)
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
