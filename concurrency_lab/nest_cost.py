"""What nest-asyncio2 costs: the same loop operations, plain and patched, in fresh interpreters.

Chapter 06 explains why Jupyter needs top-level ``await`` and when nest-asyncio2 helps; this
module measures the price (``python -m concurrency_lab.fresh nest-cost [--patched]``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from concurrency_lab._runner import gc_paused, run_fresh
from concurrency_lab.loops import LOOP_COLORS, GetLoop, handoff, yield_pingpong
from concurrency_lab.stats import summarize

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "NestVerdict",
    "format_nest_cost",
    "nest_asyncio_cost",
    "nest_cost_table",
    "nest_cost_verdicts",
    "nest_measure",
    "plot_nest_cost",
]


def _samples_us(fn: Callable[[int], float], n: int, repeats: int) -> list[float]:
    """µs per step of ``repeats`` runs of ``fn(n)``, after one warm-up run."""
    fn(min(n, 1000))
    with gc_paused():
        return [fn(n) * 1e6 for _ in range(repeats)]


def nest_measure(n: int, repeats: int, patched: bool) -> dict[str, Any]:
    """Measured in this (fresh) interpreter; called by the ``nest-cost`` command.

    Each operation's entry is the list of its ``repeats`` samples (µs per operation), so the
    caller can pool the samples of several interpreters and report a median with its spread.
    """
    if patched:
        import nest_asyncio2

        nest_asyncio2.apply()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def noop() -> None:
        return None

    def run_until_complete_cost(k: int) -> float:
        started = time.perf_counter()
        for _ in range(k):
            loop.run_until_complete(noop())
        return (time.perf_counter() - started) / k

    def on_loop(body: Callable[[int, GetLoop], Coroutine[Any, Any, float]]):
        return lambda k: loop.run_until_complete(body(k, asyncio.get_running_loop))

    async def nested() -> str:
        try:
            return loop.run_until_complete(asyncio.sleep(0, "nested run_until_complete worked"))
        except RuntimeError as error:
            return f"RuntimeError: {error}"

    result = {
        "patched": patched,
        "asyncio.Task is": "C (_asyncio)"
        if asyncio.Task.__module__ == "_asyncio"
        else "pure Python (asyncio.tasks._PyTask)",
        "sleep(0) switch us": _samples_us(on_loop(yield_pingpong), n, repeats),
        "Future hand-off us": _samples_us(on_loop(handoff), n, repeats),
        "run_until_complete us": _samples_us(run_until_complete_cost, max(n // 10, 100), repeats),
        "nested call": loop.run_until_complete(nested()),
    }
    loop.close()
    return result


_NEST_KEYS = ["sleep(0) switch us", "Future hand-off us", "run_until_complete us"]


def nest_asyncio_cost(n: int = 20_000, repeats: int = 15, rounds: int = 2) -> list[dict[str, Any]]:
    """The same measurements in fresh interpreters, plain asyncio then nest-asyncio2.

    The pair runs ``rounds`` times, alternating, so that a burst of load from another program
    does not land on one side only. Each operation's ``repeats * rounds`` samples are pooled:
    its entry is their median, with ``... p10`` and ``... p90`` (the spread) and ``samples``.
    """
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(rounds):
        for patched in (False, True):
            options = [f"--n={n}", f"--repeats={repeats}", *(["--patched"] if patched else [])]
            runs[patched].append(run_fresh("nest-cost", *options))
    rows = []
    for patched in (False, True):
        row = dict(runs[patched][0])
        for key in _NEST_KEYS:
            pooled = [us for run in runs[patched] for us in run[key]]
            s = summarize(pooled)
            row[key], row[f"{key} p10"], row[f"{key} p90"] = s.median, s.p10, s.p90
        row["samples"] = repeats * rounds
        rows.append(row)
    return rows


def nest_cost_table(plain: dict[str, Any], patched: dict[str, Any]) -> pd.DataFrame:
    """µs per operation, plain and patched (median, p10, p90), and the slowdown.

    ``slowdown`` is the ratio of the medians. ``slowdown from``/``to`` bound it by the spread:
    patched p10 / plain p90 (the least it could be) and patched p90 / plain p10 (the most).
    """
    import pandas as pd

    columns: dict[str, list[float]] = {}
    for label, run in (("plain asyncio", plain), ("nest-asyncio2", patched)):
        columns[label] = [run[k] for k in _NEST_KEYS]
        columns[f"{label} p10"] = [run.get(f"{k} p10", run[k]) for k in _NEST_KEYS]
        columns[f"{label} p90"] = [run.get(f"{k} p90", run[k]) for k in _NEST_KEYS]
    table = pd.DataFrame(columns, index=[k.removesuffix(" us") for k in _NEST_KEYS])
    table["slowdown"] = table["nest-asyncio2"] / table["plain asyncio"]
    table["slowdown from"] = table["nest-asyncio2 p10"] / table["plain asyncio p90"]
    table["slowdown to"] = table["nest-asyncio2 p90"] / table["plain asyncio p10"]
    return table


def format_nest_cost(table: pd.DataFrame) -> str:
    """:func:`nest_cost_table` as text: each median with its p10–p90 spread, and the slowdown."""
    lines = [
        f"{'µs per operation':<20} {'plain asyncio':>22} {'nest-asyncio2':>22} {'slowdown':>9}"
    ]
    for operation, row in table.iterrows():
        cells = [
            f"{row[label]:.3g} ({row[f'{label} p10']:.3g}–{row[f'{label} p90']:.3g})"
            for label in ("plain asyncio", "nest-asyncio2")
        ]
        lines.append(f"{operation!s:<20} {cells[0]:>22} {cells[1]:>22} {row['slowdown']:>8.2f}×")
    return "\n".join(lines)


@dataclass(frozen=True)
class NestVerdict:
    """One operation plain against patched: the slowdown, its bounds, and what they allow.

    ``verdict`` is ``"dearer"`` or ``"cheaper"`` (with nest-asyncio2) when the whole range
    ``low``–``high`` lies on one side of 1, else ``"within the spread"``.
    """

    operation: str
    slowdown: float
    low: float
    high: float

    @property
    def verdict(self) -> Literal["dearer", "cheaper", "within the spread"]:
        if self.low > 1:
            return "dearer"
        if self.high < 1:
            return "cheaper"
        return "within the spread"


def nest_cost_verdicts(table: pd.DataFrame) -> list[NestVerdict]:
    """One verdict per operation of :func:`nest_cost_table`, judged by the spread."""
    return [
        NestVerdict(str(operation), row["slowdown"], row["slowdown from"], row["slowdown to"])
        for operation, row in table.iterrows()
    ]


def plot_nest_cost(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bars of :func:`nest_cost_table`: medians, whiskers from the p10 to the p90."""
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer as Bars

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    labels = ["plain asyncio", "nest-asyncio2"]
    times = table[labels]
    errors = [
        [
            (times[label] - table[f"{label} p10"]).clip(lower=0).to_numpy(),
            (table[f"{label} p90"] - times[label]).clip(lower=0).to_numpy(),
        ]
        for label in labels
    ]
    times.plot.barh(ax=ax, color=[LOOP_COLORS["asyncio"], "tab:red"], xerr=errors, capsize=3)
    for container in ax.containers:
        if isinstance(container, Bars):
            ax.bar_label(container, fmt="%.2f", fontsize="small", padding=2)
    ax.set_xlim(right=table[[f"{label} p90" for label in labels]].to_numpy().max() * 1.15)
    ax.set_xlabel("time per operation (µs; median, whiskers p10–p90)")
    ax.set_ylabel("operation")
    ax.set_title("What nest-asyncio2 costs (fresh interpreters, same machine)")
    ax.invert_yaxis()
    return ax
