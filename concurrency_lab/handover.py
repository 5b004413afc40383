"""What a hand-over is made of: the step from a thread switch to a process hand-over, taken apart.

The same one-byte hand-over through the kernel between two threads and between two processes
(the OS switch alone), ``mp.Pipe`` with a bare integer and with the order book, and two thread
variants, each pinned to one CPU and not pinned (:data:`LIKE_FOR_LIKE`, :func:`like_for_like`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from concurrency_lab.pingpong import (
    MECHANISMS,
    Samples,
    least_busy_cpu,
    pinned,
    process_bytes,
    process_pipe,
    thread_bytes,
    thread_condition,
    thread_event,
)
from concurrency_lab.stats import summarize
from concurrency_lab.switching import SwitchResult, fastest_per_mechanism

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "LIKE_FOR_LIKE",
    "STEP_PARTS",
    "HandOver",
    "Step",
    "hand_over",
    "like_for_like",
    "plot_like_for_like",
    "step",
]


#: What :func:`like_for_like` compares: (name, mechanism, measure).
LIKE_FOR_LIKE: list[tuple[str, str, Callable[[int, int], Samples]]] = [
    ("1 byte, os.read/os.write", "process", process_bytes),
    ("1 byte, os.read/os.write", "thread", thread_bytes),
    ("mp.Pipe, bare int", "process", lambda r, n: process_pipe(r, n, payload=1)),
    ("mp.Pipe, order book", "process", process_pipe),
    ("threading.Condition", "thread", thread_condition),
    ("threading.Event", "thread", thread_event),
]


def like_for_like(
    quick: bool = False, progress: Callable[[Iterable[int]], Iterable[int]] | None = None
) -> pd.DataFrame:
    """Round trips of :data:`LIKE_FOR_LIKE`, each pinned to one CPU and not pinned.

    As in :func:`run_switch_costs`, every case takes one sample per repeat, in turn. Columns:
    what, mechanism, and the median and p90 in µs, pinned and not pinned. Not pinned, a
    hand-over lands on the same core or the other one, so its p90 shows the slow mode.
    """
    import pandas as pd

    repeats, rounds = (9, 300) if quick else (25, 1500)
    cpu = least_busy_cpu()
    samples: dict[tuple[int, bool], Samples] = {}
    turns = range(repeats)
    for _ in progress(turns) if progress else turns:
        for pin in (True, False):
            with pinned(cpu) if pin and cpu is not None else nullcontext():
                for i, (_, _, measure) in enumerate(LIKE_FOR_LIKE):
                    samples.setdefault((i, pin), []).extend(measure(rounds, 1))
    rows = []
    for i, (what, mechanism, _) in enumerate(LIKE_FOR_LIKE):
        on, off = (summarize(samples[i, pin]).scaled(1e6) for pin in (True, False))
        rows.append(
            {
                "what": what,
                "mechanism": mechanism,
                "pinned µs": on.median,
                "pinned p90": on.p90,
                "not pinned µs": off.median,
                "not pinned p90": off.p90,
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class HandOver:
    """The numbers of :func:`like_for_like` that chapter 03 reads, in µs.

    ``os_*`` are the one-byte hand-overs pinned to one CPU (the OS switch alone); ``*_unpinned``
    are the median round trips not pinned; ``pipe_*`` are ``mp.Pipe`` pinned.
    """

    os_process: float
    os_thread: float
    pipe_int_unpinned: float
    condition_unpinned: float
    event_unpinned: float
    pipe_int: float
    pipe_book: float

    @property
    def copy_cost(self) -> float:
        """What pickling and copying the order book instead of an int adds per round trip."""
        return self.pipe_book - self.pipe_int

    @property
    def pipe_work(self) -> float:
        """What ``mp.Pipe`` adds around the OS switch (pickle, a length header, system calls)."""
        return self.pipe_int - self.os_process


def hand_over(frame: pd.DataFrame) -> HandOver:
    """Pick out of a :func:`like_for_like` frame the cases the chapter compares."""
    t = frame.set_index(["what", "mechanism"])

    def us(what: str, mechanism: str, column: str) -> float:
        return float(t.loc[(what, mechanism), column])

    raw = "1 byte, os.read/os.write"
    return HandOver(
        os_process=us(raw, "process", "pinned µs"),
        os_thread=us(raw, "thread", "pinned µs"),
        pipe_int_unpinned=us("mp.Pipe, bare int", "process", "not pinned µs"),
        condition_unpinned=us("threading.Condition", "thread", "not pinned µs"),
        event_unpinned=us("threading.Event", "thread", "not pinned µs"),
        pipe_int=us("mp.Pipe, bare int", "process", "pinned µs"),
        pipe_book=us("mp.Pipe, order book", "process", "pinned µs"),
    )


#: The three parts of the step from a thread switch to a process hand-over, in order.
STEP_PARTS = ("os_process_switch", "pipe_work", "event_copy")


@dataclass(frozen=True)
class Step:
    """The step from a pinned 1-byte thread switch to handing the event to a process, in µs.

    ``parts`` (keyed by :data:`STEP_PARTS`) add up exactly to ``process - thread``: the OS
    switching to another process rather than a thread, ``mp.Pipe``'s own work, and pickling
    and copying the event. ``held`` says whether section 2's process > thread held (None when
    the results lack either mechanism).
    """

    thread: float
    process: float
    parts: dict[str, float]
    held: bool | None
    fastest_process: SwitchResult | None
    fastest_thread: SwitchResult | None

    @property
    def total(self) -> float:
        return self.process - self.thread

    def share(self, part: str) -> float:
        """The part's share of the whole step (0 when it is below half a percent)."""
        v = self.parts[part] / self.total
        return v if abs(v) >= 0.005 else 0.0

    @property
    def largest(self) -> str:
        return max(self.parts, key=lambda k: self.parts[k])


def step(frame: pd.DataFrame, results: Sequence[SwitchResult]) -> Step:
    """Split the process hand-over of the event minus the thread switch into its three parts."""
    h = hand_over(frame)
    best = fastest_per_mechanism(results)
    p, th = best.get("process"), best.get("thread")
    held = p.median_us > th.median_us if p is not None and th is not None else None
    parts = {
        "os_process_switch": h.os_process - h.os_thread,
        "pipe_work": h.pipe_int - h.os_process,
        "event_copy": h.pipe_book - h.pipe_int,
    }
    return Step(h.os_thread, h.pipe_book, parts, held, p, th)


def plot_like_for_like(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bars of :func:`like_for_like`: each case pinned and not pinned, whiskers up to the p90."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 4))
    palette = dict(zip(MECHANISMS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    y = list(range(len(frame)))
    for offset, (column, hatch) in enumerate([("pinned", None), ("not pinned", "///")]):
        median, p90 = frame[f"{column} µs"], frame[f"{column} p90"]
        ax.barh(
            [k - 0.2 + 0.4 * offset for k in y],  # pinned above, once the axis is inverted
            median,
            height=0.38,
            xerr=[[0] * len(frame), list(p90 - median)],
            color=[palette[m] for m in frame["mechanism"]],
            edgecolor="white",
            capsize=2,
            hatch=hatch,
        )
    ax.set_yticks(y, [f"{m}: {w}" for m, w in zip(frame["mechanism"], frame["what"], strict=True)])
    ax.invert_yaxis()
    ax.set_xlabel("round trip (µs; median, whisker up to the p90)")
    ax.set_ylabel("mechanism: what is handed over")
    ax.set_title("What a hand-over is made of: the OS switch alone, mp.Pipe's work, the message")
    ax.legend(
        handles=[
            Patch(facecolor="0.55", label="pinned to one CPU"),
            Patch(facecolor="0.55", hatch="///", edgecolor="white", label="not pinned"),
        ],
        title="partners",
        fontsize="small",
    )
    ax.grid(axis="x", alpha=0.3)
    return ax
