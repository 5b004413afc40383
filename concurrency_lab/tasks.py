"""Tasks (任务) in chapter 05: the seed's picture of a main program that submits async tasks,
then waits for them or carries on, drawn by the timeline tracer; and a blocking call in a
coroutine, which freezes the loop, against the same call in a worker thread.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from concurrency_lab.coroutines import hold_cpu

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from concurrency_lab.timeline import Timeline

__all__ = [
    "SubmitRun",
    "blocking_demo",
    "blocking_io",
    "plot_submit_tasks",
    "seed_picture",
    "submit_tasks",
    "submit_tasks_summary",
]


# -- chapter 05: the seed's picture, drawn by the timeline tracer --------------------------
async def _job(tl: Timeline, seconds: float) -> float:
    """One async task: a little CPU work, a wait for IO (simulated), a little CPU work."""
    with tl.span("send request (CPU)"):
        hold_cpu(0.004)
    with tl.span("wait for IO"):
        await asyncio.sleep(seconds)
    with tl.span("parse reply (CPU)"):
        hold_cpu(0.004)
    return seconds


async def submit_tasks(
    tl: Timeline, *, wait: bool, waits: tuple[float, ...] = (0.12, 0.06, 0.09)
) -> list[float]:
    """The seed's picture: sync code, then submit async tasks, then wait for them or carry on.

    With ``wait=True`` the caller blocks on ``gather`` at once. With ``wait=False`` it carries
    on with its own work in slices, handing the loop back between slices (``await``), and
    gathers the results at the end; the tasks ran meanwhile.
    """
    with tl.span("sync code"):
        hold_cpu(0.02)
    tl.mark("submit async tasks")
    tasks = [
        asyncio.create_task(_job(tl, s), name=f"task {i}") for i, s in enumerate(waits, start=1)
    ]
    if wait:
        with tl.span("waits: await gather(...)"):
            results = await asyncio.gather(*tasks)
    else:
        for _ in range(5):
            with tl.span("carry on: own work"):
                hold_cpu(0.012)
            await asyncio.sleep(0)  # hand the loop back so that ready tasks take their turn
        with tl.span("waits: await gather(...)"):
            results = await asyncio.gather(*tasks)
    with tl.span("use results"):
        hold_cpu(0.01)
    return results


#: How the seed's picture draws each span: waiting is grey and hatched, work is coloured.
_SUBMIT_STYLE = {
    "sync code": ("tab:blue", ""),
    "submit async tasks": ("tab:orange", ""),
    "waits: await gather(...)": ("0.85", "///"),
    "carry on: own work": ("tab:green", ""),
    "send request (CPU)": ("tab:red", ""),
    "wait for IO": ("0.8", "..."),
    "parse reply (CPU)": ("tab:brown", ""),
    "use results": ("tab:pink", ""),
}


def plot_submit_tasks(timelines: dict[bool, Timeline]) -> Figure:
    """The :func:`submit_tasks` runs one above the other (keyed by ``wait``), same styles."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    fig, axes = plt.subplots(len(timelines), 1, figsize=(10, 2.8 * len(timelines)), sharex=True)
    colors = {label: color for label, (color, _) in _SUBMIT_STYLE.items()}
    hatches = {to_rgba(color): hatch for color, hatch in _SUBMIT_STYLE.values() if hatch}
    for ax, (wait, tl) in zip(axes, timelines.items(), strict=True):
        how = "await gather at once (waiting: grey)" if wait else "carry on with own work"
        tl.plot(ax=ax, title=f"wait={wait}: {how}", colors=colors, legend=False)
        for bars in ax.collections:  # Timeline.plot draws one collection per span
            hatch = hatches.get(tuple(bars.get_facecolor()[0]))
            if hatch:
                bars.set_hatch(hatch)
                bars.set_edgecolor("0.45")  # the hatch's colour; the outline stays off
            else:
                bars.set_edgecolor("white")  # so that back-to-back slices stay apart
                bars.set_linewidth(0.8)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False)
    fig.tight_layout()
    return fig


async def seed_picture() -> dict[bool, Timeline]:
    """Run :func:`submit_tasks` with ``wait=True`` then ``wait=False``; a timeline for each."""
    from concurrency_lab.timeline import Timeline

    timelines = {}
    for wait in (True, False):
        timelines[wait] = tl = Timeline()
        await submit_tasks(tl, wait=wait)
    return timelines


@dataclass(frozen=True)
class SubmitRun:
    """What one :func:`submit_tasks` run's timeline shows, in milliseconds."""

    total_ms: float  # first span's start to last span's end
    waited_ms: float  # the main program blocked in ``await gather(...)``
    own_work_ms: float  # the main program's own work while the tasks ran (0 with wait=True)
    first_task_delay_ms: float  # from the submit to the first task's first step


def submit_tasks_summary(timelines: dict[bool, Timeline]) -> dict[bool, SubmitRun]:
    """The numbers of each :func:`submit_tasks` run (keyed by ``wait``), from its timeline."""
    facts = {}
    for wait, tl in timelines.items():
        spans = tl.spans
        origin = min(s.start for s in spans)
        submitted = next(s.start for s in spans if s.label == "submit async tasks")

        def total(label: str, spans: list = spans) -> float:
            return sum(s.duration for s in spans if s.label == label) * 1e3

        first_task = min(s.start for s in spans if s.label == "send request (CPU)")
        facts[wait] = SubmitRun(
            total_ms=(max(s.end for s in spans) - origin) * 1e3,
            waited_ms=total("waits: await gather(...)"),
            own_work_ms=total("carry on: own work"),
            first_task_delay_ms=(first_task - submitted) * 1e3,
        )
    return facts


def blocking_io(tl: Timeline, seconds: float) -> str:
    """A synchronous call that blocks its thread (a stand-in for ``requests.get``)."""
    with tl.span("time.sleep (sync IO)"):
        time.sleep(seconds)
    return f"slept {seconds} s"


async def blocking_demo(tl: Timeline, mode: str, seconds: float = 0.15) -> float:
    """A heartbeat task ticks every 10 ms while a handler makes a sync call; largest gap (s).

    ``mode`` is ``"blocking"`` (call it in the loop's thread), ``"to_thread"`` or
    ``"run_in_executor"`` (run it in a worker thread, so the loop stays free).
    """
    ticks: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            tl.mark("heartbeat")
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def handler() -> str:
        if mode == "blocking":
            return blocking_io(tl, seconds)  # the handler's own lane: the loop's thread
        with tl.span(f"handler awaits the worker ({mode})"):
            if mode == "to_thread":
                return await asyncio.to_thread(blocking_io, tl, seconds)
            if mode == "run_in_executor":
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, blocking_io, tl, seconds)
            raise ValueError(f"mode must be blocking, to_thread or run_in_executor, not {mode!r}")

    beat = asyncio.create_task(heartbeat(), name="heartbeat")
    await asyncio.sleep(0.03)
    await asyncio.create_task(handler(), name="handler")
    await asyncio.sleep(0.03)
    stop.set()
    await beat
    return max(b - a for a, b in itertools.pairwise(ticks))
