"""What a hand-over is made of: the step from a thread switch to a process hand-over, taken apart.

The same one-byte hand-over through the kernel between two threads and between two processes
(the OS switch alone), ``mp.Pipe`` with a bare integer and with the order book, and two thread
variants, each pinned to one CPU and not pinned (:data:`LIKE_FOR_LIKE`, :func:`like_for_like`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
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
from concurrency_lab.stats import three_digits as _us
from concurrency_lab.switching import SwitchResult, fastest_per_mechanism

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "LIKE_FOR_LIKE",
    "like_for_like",
    "like_for_like_conclusion",
    "like_for_like_report",
    "plot_like_for_like",
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


def _compare(a: float, b: float) -> str:
    """a against b in words: about the same, close, or how many times dearer or cheaper."""
    r = a / b
    if 0.8 <= r <= 1.25:
        return f"{r:.2f}×: about the same"
    if 2 / 3 <= r <= 1.5:
        return f"{r:.2f}×: close"
    return f"{r:.1f}×: dearer" if r > 1 else f"{1 / r:.1f}× cheaper"


def like_for_like_report(frame: pd.DataFrame) -> list[str]:
    """What :func:`like_for_like` shows, in sentences computed from its numbers."""
    t = frame.set_index(["what", "mechanism"])

    def us(what: str, mechanism: str, column: str) -> float:
        return float(t.loc[(what, mechanism), column])

    raw = "1 byte, os.read/os.write"
    p_raw, t_raw = us(raw, "process", "pinned µs"), us(raw, "thread", "pinned µs")
    bare = us("mp.Pipe, bare int", "process", "not pinned µs")
    cond = us("threading.Condition", "thread", "not pinned µs")
    event = us("threading.Event", "thread", "not pinned µs")
    book = us("mp.Pipe, order book", "process", "pinned µs")
    int_pinned = us("mp.Pipe, bare int", "process", "pinned µs")
    return [
        f"the OS alone (1 byte, pinned): process {_us(p_raw)} µs vs thread {_us(t_raw)} µs "
        f"-> process/thread {_compare(p_raw, t_raw)}",
        f"mp.Pipe with a bare int, not pinned: {_us(bare)} µs; threading.Condition "
        f"{_us(cond)} µs ({_compare(bare, cond)}), threading.Event {_us(event)} µs "
        f"({_compare(bare, event)})",
        f"the order book instead of an int (pinned): {_us(book)} vs {_us(int_pinned)} µs, "
        f"+{_us(book - int_pinned)} µs of pickling and copying per round trip",
        f"mp.Pipe's own work (pickle, a length header, more system calls) over the OS alone: "
        f"+{_us(int_pinned - p_raw)} µs (pinned)",
    ]


def like_for_like_conclusion(frame: pd.DataFrame, results: Sequence[SwitchResult]) -> list[str]:
    """The chapter's conclusion, drawn from this run: did process > thread hold, and why.

    The pinned process hand-over of the order book minus the pinned 1-byte thread switch is
    split into three parts that add up exactly: the OS switching to another process rather
    than a thread, ``mp.Pipe``'s own work, and pickling and copying the event. The line names
    the largest part, whichever it is.
    """
    t = frame.set_index(["what", "mechanism"])

    def us(what: str, mechanism: str) -> float:
        return float(t.loc[(what, mechanism), "pinned µs"])

    best = fastest_per_mechanism(results)
    lines = []
    if "process" in best and "thread" in best:
        p, th = best["process"], best["thread"]
        held = "held" if p.median_us > th.median_us else "did not hold"
        lines.append(
            f"section 2, one CPU, the event handed over: process > thread {held} "
            f"({p.variant} {_us(p.median_us)} µs vs {th.variant} {_us(th.median_us)} µs, "
            f"{p.median_us / th.median_us:.1f}×)"
        )
    raw = "1 byte, os.read/os.write"
    p_raw, t_raw = us(raw, "process"), us(raw, "thread")
    bare, book = us("mp.Pipe, bare int", "process"), us("mp.Pipe, order book", "process")
    parts = {
        "the OS switching to another process instead of a thread": p_raw - t_raw,
        "mp.Pipe's own work (pickle, header, system calls)": bare - p_raw,
        "pickling and copying the event": book - bare,
    }
    step = book - t_raw
    lines.append(
        f"the step from a thread switch ({_us(t_raw)} µs) to handing the event to a process "
        f"({_us(book)} µs), pinned: {step:+.3g} µs, made of"
    )
    share = {part: v / step if abs(v / step) >= 0.005 else 0.0 for part, v in parts.items()}
    lines += [f"  {part}: {v:+.3g} µs ({share[part]:.0%})" for part, v in parts.items()]
    largest = max(parts, key=lambda k: parts[k])
    lines.append(f"largest part in this run: {largest}")
    return lines


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
