"""Lockstep against lookahead: the same pipeline with and without conservative synchronisation.

Chapter 10 runs the pipeline twice on the same bars: ``lockstep`` (every market step is a call
the strategy host answers before the exchange goes on, and the market waits for each step's
marker: the protocol this project had first) and ``lookahead`` (a quiet strategy handles
market events without waiting; see :mod:`mqlab.services.protocol`). Both must give the
backtest's fills; :func:`compare` measures what each costs, and :func:`plot_timelines` draws
who did what, service by service, over the same stretch of wall time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from concurrency_lab.timeline import RawSpan, Timeline
from mqlab.config import RunConfig
from mqlab.pipeline import Pipeline, PipelineResult, fill_rows
from mqlab.services.protocol import DEFAULT_WINDOW

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SyncRun", "compare", "plot_timelines", "run_once"]

#: The services' lanes, top to bottom, as data flows.
LANES = ["market", "exchange", "strategy", "portfolio"]


@dataclass
class SyncRun:
    """One pipeline run and what it cost."""

    mode: str  # "lockstep" or "lookahead"
    window: int
    result: PipelineResult
    spans: list[RawSpan] = field(default_factory=list)
    same_as_backtest: bool = False

    def row(self) -> dict[str, Any]:
        per = self.result.messages_per_event
        return {
            "events/s": round(self.result.events_per_s),
            "published per event": per["published"],
            "delivered per event": per["delivered"],
            "messages per event": per["total"],
            # ... by what they carry (PipelineResult.messages_per_event)
            **{f"  {group}": n for group, n in (per.get("by_group") or {}).items()},
            "latency p50 ms": _round(self.result.latency(50)),
            "latency p99 ms": _round(self.result.latency(99)),
            "same fills as the backtest": self.same_as_backtest,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def run_once(
    config: RunConfig, url: str, *, lockstep: bool, window: int | None = None
) -> SyncRun:
    """Run the pipeline in this process once, tracing every record each service applied."""
    window = window or (1 if lockstep else DEFAULT_WINDOW)
    timeline = Timeline()
    pipeline = Pipeline(
        config, url, prefix=f"mqlab-{uuid.uuid4().hex[:8]}", window=window, lockstep=lockstep,
        trace=timeline.record,
    )  # fmt: skip
    try:
        await pipeline.start_all()
        await pipeline.wait()
        result = pipeline.result()
    finally:
        await pipeline.close()
        await pipeline.delete_topology()
    reference = config.backtest()
    same = result.fills == fill_rows(reference.fills) and result.equity == (
        reference.portfolio.equity()
    )
    mode = "lockstep" if lockstep else "lookahead"
    return SyncRun(mode, window, result, timeline.export(), same)


async def compare(config: RunConfig, url: str, window: int | None = None) -> list[SyncRun]:
    """Lockstep (window 1), then lookahead (``window``, default the pipeline's)."""
    return [
        await run_once(config, url, lockstep=True),
        await run_once(config, url, lockstep=False, window=window),
    ]


def _stretch(run: SyncRun, first_step: int, ms: float) -> tuple[Timeline, int]:
    """The spans within ``ms`` of the market publishing ``first_step``, and how many market
    events it published in that time."""
    pubs = sorted(s.start_ns for s in run.spans if s.lane == "market" and s.label == "pub")
    start = pubs[min(first_step, len(pubs) - 1)]
    end = start + int(ms * 1e6)
    timeline = Timeline()
    timeline.origin_ns = start
    timeline.extend(s for s in run.spans if start <= s.start_ns < end)
    published = sum(1 for t in pubs if start <= t < end)
    return timeline, published


def plot_timelines(runs: list[SyncRun], first_step: int = 100, steps: int = 8) -> Figure:
    """Each run's services over the same wall time: as long as ``steps`` lockstep steps take
    from ``first_step`` on. Returns the figure (one Gantt chart per run)."""
    from matplotlib.figure import Figure

    lock = next(r for r in runs if r.mode == "lockstep")
    pubs = sorted(s.start_ns for s in lock.spans if s.lane == "market" and s.label == "pub")
    first = min(first_step, len(pubs) - steps - 1)
    ms = (pubs[first + steps] - pubs[first]) / 1e6
    figure = Figure(figsize=(10, 2.4 * len(runs)), layout="constrained")
    axes = figure.subplots(len(runs), 1, sharex=True)
    colors = {"market": "tab:blue", "pub": "tab:blue", "done": "tab:orange",
              "request": "tab:red", "answer": "tab:red", "fill": "tab:red", "step": "tab:green",
              "flush": "tab:purple", "matched": "tab:gray"}  # fmt: skip
    for ax, run in zip(axes, runs, strict=True):
        timeline, published = _stretch(run, first, ms)
        timeline.plot(
            ax,
            title=f"{run.mode} (window {run.window}): {published} market events published "
            f"in {ms:.1f} ms",
            lanes=[lane for lane in LANES if lane in timeline.lanes],
            colors=colors,
            ylabel="service",
        )
    for ax in axes[:-1]:
        ax.set_xlabel("")  # the axes share one time scale, labelled once below
    axes[-1].set_xlabel("wall time (ms)")
    return figure
