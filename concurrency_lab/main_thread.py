"""The seed's picture: a main thread (主线程) submits tasks, then blocks (阻塞) or carries on.

:func:`main_thread_demo` runs both versions with threads and records who did what on a
:class:`~concurrency_lab.timeline.Timeline`; :func:`main_thread_summary` reads the numbers
back from its spans. Chapter 05 (:mod:`concurrency_lab.tasks`) draws the same picture with
asyncio.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from concurrency_lab import workloads
from concurrency_lab.timeline import Timeline
from concurrency_lab.workloads import LABELS, cpu_job, io_job

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "COLORS",
    "HATCHES",
    "MAIN",
    "MainThreadRun",
    "main_thread_demo",
    "main_thread_summary",
    "plot_main_thread",
]

#: The main thread's spans in :func:`main_thread_demo` (the seed's picture).
MAIN = {
    "sync": "sync code",
    "submit": "submit tasks",
    "blocked": "blocked: waiting for results",
    "own": "own work (needs no results)",
    "use": "use results",
}
#: Colours and hatches for the main thread's spans, beside the tasks' waits (same convention).
COLORS = {
    **workloads.COLORS,
    MAIN["sync"]: "tab:blue",
    MAIN["submit"]: "tab:orange",
    MAIN["blocked"]: "0.85",
    MAIN["own"]: "tab:green",
    MAIN["use"]: "tab:purple",
}
HATCHES = {**workloads.HATCHES, MAIN["blocked"]: "///"}


def _task(tl: Timeline, seconds: float) -> float:
    """One submitted task: it waits for IO, on the timeline."""
    with tl.span(LABELS["io"]):
        return io_job(seconds)


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
            futures = [pool.submit(_task, tl, seconds * (k + 2) / (jobs + 1)) for k in range(jobs)]
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
