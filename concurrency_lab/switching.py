"""Switch costs: every ping-pong variant measured side by side, summarised, ranked and drawn.

The catalogue (:data:`VARIANTS`) lists each way to switch of each mechanism (process, thread,
coroutine, generator), with the ping-pong of :mod:`concurrency_lab.pingpong` that measures it.
:func:`run_switch_costs` samples every variant in turn and summarises the samples with
:func:`concurrency_lab.stats.summarize` (median, p10/p90, cv), both partners pinned to one CPU
by default. The seed's claim process > thread > coroutine is then checked on the measurement.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from concurrency_lab.pingpong import (
    MECHANISMS,
    Samples,
    asyncio_queue,
    asyncio_sleep0,
    generator_send,
    pinned,
    process_pipe,
    thread_condition,
    thread_event,
    thread_queue,
)
from concurrency_lab.stats import summarize
from concurrency_lab.stats import three_digits as _us

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "VARIANTS",
    "Gap",
    "Ordering",
    "SwitchResult",
    "Variant",
    "fastest_per_mechanism",
    "format_table",
    "ordering",
    "plot_switch_costs",
    "run_switch_costs",
]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


# -- the catalogue -------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One way to switch: its mechanism, a name, its ping-pong, and a run length."""

    mechanism: str
    name: str
    measure: Callable[[int, int], Samples]
    rounds: int  # round trips per sample in the full setting (about 30-60 ms per sample)


def _uvloop_factory() -> LoopFactory | None:
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    return uvloop.new_event_loop


def _variants() -> list[Variant]:
    found = [
        Variant("process", "mp.Pipe", process_pipe, 600),
        Variant("thread", "threading.Event", thread_event, 1500),
        Variant("thread", "threading.Condition", thread_condition, 1500),
        Variant("thread", "queue.Queue", thread_queue, 1500),
        Variant("coroutine", "asyncio.Queue", asyncio_queue, 3000),
        Variant("coroutine", "asyncio.sleep(0)", asyncio_sleep0, 15000),
    ]
    if (uv := _uvloop_factory()) is not None:
        found += [
            Variant(
                "coroutine",
                "asyncio.Queue (uvloop)",
                lambda r, n: asyncio_queue(r, n, uv),
                3000,
            ),
            Variant(
                "coroutine",
                "asyncio.sleep(0) (uvloop)",
                lambda r, n: asyncio_sleep0(r, n, uv),
                15000,
            ),
        ]
    found.append(Variant("generator", "generator.send()", generator_send, 500_000))
    return found


#: Every variant that can run here (the uvloop ones only when uvloop is installed).
VARIANTS: list[Variant] = _variants()


@dataclass(frozen=True)
class SwitchResult:
    """The summary of one variant's round trips, in microseconds (what ``--json`` prints)."""

    mechanism: str
    variant: str
    median_us: float
    p10_us: float
    p90_us: float
    cv: float
    n: int
    rounds: int
    cpu: int | None = None  # the CPU both partners were pinned to, if any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_switch_costs(
    quick: bool = False,
    variants: Sequence[Variant] | None = None,
    *,
    pin: bool = True,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> list[SwitchResult]:
    """Measure every variant (pinned to one CPU unless ``pin=False``).

    The variants take turns, one sample each per repeat, so that a burst of load from another
    program lands on all of them alike instead of spoiling one. Quick: 15 repeats of
    quarter-length runs, about 2 s in all; full: 30 repeats of full-length runs.
    """
    repeats, scale = (15, 0.25) if quick else (30, 1.0)
    chosen = list(variants or VARIANTS)
    rounds = [max(10, int(v.rounds * scale)) for v in chosen]
    samples: list[Samples] = [[] for _ in chosen]
    turns = range(repeats)
    with pinned() if pin else nullcontext() as cpu:
        for _ in progress(turns) if progress else turns:
            for v, n, out in zip(chosen, rounds, samples, strict=True):
                out += v.measure(n, 1)
    results = []
    for v, n, out in zip(chosen, rounds, samples, strict=True):
        s = summarize(out).scaled(1e6)
        results.append(SwitchResult(v.mechanism, v.name, s.median, s.p10, s.p90, s.cv, s.n, n, cpu))
    return results


def fastest_per_mechanism(results: Iterable[SwitchResult]) -> dict[str, SwitchResult]:
    """The cheapest variant of each mechanism, most expensive mechanism first."""
    best: dict[str, SwitchResult] = {}
    for r in results:
        if r.mechanism not in best or r.median_us < best[r.mechanism].median_us:
            best[r.mechanism] = r
    return dict(sorted(best.items(), key=lambda kv: -kv[1].median_us))


def format_table(results: Sequence[SwitchResult]) -> str:
    """A plain-text table, slowest first, with each median as a multiple of the fastest."""
    fastest = min(r.median_us for r in results)
    head = (
        f"{'mechanism':<10} {'variant':<26} {'median µs':>10} {'p10–p90 µs':>17} "
        f"{'cv':>6} {'× fastest':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in sorted(results, key=lambda r: -r.median_us):
        spread = f"{_us(r.p10_us)}–{_us(r.p90_us)}"
        lines.append(
            f"{r.mechanism:<10} {r.variant:<26} {_us(r.median_us):>10} {spread:>17} "
            f"{r.cv:>6.1%} {r.median_us / fastest:>10,.0f}"
        )
    return "\n".join(lines)


def plot_switch_costs(
    results: Sequence[SwitchResult],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    xlabel: str = "round trip (µs, log scale; median, whiskers p10–p90)",
) -> Axes:
    """Horizontal bars of the median round trip on a log axis, whiskers from p10 to p90."""
    import matplotlib.pyplot as plt

    ordered = sorted(results, key=lambda r: r.median_us)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * len(ordered) + 1.2))
    palette = dict(zip(MECHANISMS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    y = range(len(ordered))
    ax.barh(
        y,
        [r.median_us for r in ordered],
        xerr=[
            [r.median_us - r.p10_us for r in ordered],
            [r.p90_us - r.median_us for r in ordered],
        ],
        color=[palette[r.mechanism] for r in ordered],
        capsize=3,
    )
    for i, r in enumerate(ordered):
        ax.annotate(
            f" {_us(r.median_us)} µs",
            (r.p90_us, i),
            va="center",
            fontsize="small",
        )
    ax.set_yticks(list(y), [f"{r.mechanism}: {r.variant}" for r in ordered])
    ax.set_ylabel("mechanism: variant")
    ax.set_xscale("log")
    ax.set_xlim(min(r.p10_us for r in ordered) / 3, max(r.p90_us for r in ordered) * 8)
    ax.set_xlabel(xlabel)
    cpu = ordered[0].cpu
    where = f"both partners pinned to CPU {cpu}" if cpu is not None else "not pinned"
    ax.set_title(
        title
        or f"Round trip per switch: a synthetic order-book event there and back\n"
        f"({os.cpu_count()} cores, {where})"
    )
    ax.grid(axis="x", alpha=0.3)
    return ax


@dataclass(frozen=True)
class Gap:
    """How much dearer the cheapest variant of one mechanism was than that of the next one."""

    slow: SwitchResult
    fast: SwitchResult

    @property
    def ratio(self) -> float:
        return self.slow.median_us / self.fast.median_us


@dataclass(frozen=True)
class Ordering:
    """The measured order of the mechanisms (fastest variant each), and the gaps between them."""

    order: list[str]  # most expensive first
    seed_order_holds: bool  # process > thread > coroutine (> generator), as far as measured
    gaps: list[Gap]  # between neighbours in ``order``

    @property
    def smallest_gap(self) -> Gap | None:
        return min(self.gaps, key=lambda g: g.ratio, default=None)

    @property
    def largest_gap(self) -> Gap | None:
        return max(self.gaps, key=lambda g: g.ratio, default=None)


def ordering(results: Sequence[SwitchResult]) -> Ordering:
    """Rank the mechanisms by their fastest variant; check the seed's order against it."""
    best = fastest_per_mechanism(results)
    order = list(best)
    seed = [m for m in MECHANISMS if m in best]
    gaps = [Gap(slow, fast) for slow, fast in itertools.pairwise(best.values())]
    return Ordering(order, order == seed, gaps)
