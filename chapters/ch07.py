"""Chapter 07 (vectorised vs event-driven): the lines that read the factor and the live costs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from mqlab.backtest import DecisionCpu, RecordedRun
from mqlab.timeseries import FactorEvaluation

__all__ = ["benchmark_lines", "daily_cpu_table", "factor_line", "live_lines"]

#: How the table names the other peers of :class:`mqlab.backtest.RecordedRun`.
PEER_LABELS = {
    "backtrader_pandasdata": "backtrader with PandasData",
    "backtesting": "backtesting.py",
}


def factor_line(evaluation: FactorEvaluation) -> str:
    """IC and hit rate, and how many bars they rest on."""
    e = evaluation
    return f"IC {e.ic:+.4f}, hit rate {e.hit_rate:.2%} over {e.pairs:,} bars"


def live_lines(costs: Sequence[Mapping[str, Any]]) -> list[str]:
    """What :func:`mqlab.timeseries.live_decision_costs` runs on histories of different
    lengths show: per run, which way of deciding was cheaper and by how much; then how the
    cost per decision grew with the history."""
    lines = []
    for c in costs:
        roll, event = c["rolling window µs"], c["event-driven µs"]
        cheaper = "event-driven" if event < roll else "rolling window"
        lines.append(
            f"{c['bars']:>9,} bars: rolling window {roll:6.2f} µs, event-driven {event:5.2f} µs "
            f"per decision; cheaper: {cheaper}, {max(roll, event) / min(roll, event):.1f}x; "
            f"rolling window decided as the research code at every bar: {c['same decisions']}"
        )
    if len(costs) >= 2:
        first, last = costs[0], costs[-1]
        growth = {k: last[k] / first[k] for k in ("rolling window µs", "event-driven µs")}
        lines.append(
            f"history {last['bars'] / first['bars']:.0f}x as long: cost per decision x"
            f"{growth['rolling window µs']:.2f} (rolling window), "
            f"x{growth['event-driven µs']:.2f} (event-driven)"
        )
    return lines


def benchmark_lines(run: RecordedRun | None) -> list[str]:
    """The recorded run against backtrader (:func:`mqlab.backtest.recorded_benchmark`) as a
    table in CPU time; if there is none, what to run to record one."""
    if run is None:
        return ["no recorded backtrader run yet: python benchmarks/backtest.py --quick"]
    fastest = "backtrader, fastest feed" if run.backtrader_feed == "fastest" else "backtrader"
    lines = [
        f"{run.bars:,} synthetic bars, Python {run.python}, "
        f"load average {run.load_average}, same trades: {run.same_trades}",
        f"{'':>40}  {'bars/s (CPU)':>12}  {'vs backtrader':>13}",
        f"{fastest:>40}  {run.backtrader:>12,}",
        f"{'ours, building events from the frame':>40}  "
        f"{run.from_frame:>12,}  {run.like_for_like:>12}x",
        f"{'ours, fed ready-made events':>40}  {run.events:>12,}  {run.engine_only:>12}x",
    ]
    for name, (rate, ratio) in run.others.items():
        label = PEER_LABELS.get(name, name)
        lines.append(f"{label:>40}  {rate:>12,}  (ours from the frame: {ratio}x as fast)")
    return lines


def daily_cpu_table(rows: Sequence[DecisionCpu]) -> pd.DataFrame:
    """A day of decisions per data rate, and the CPU seconds each way of deciding costs."""
    return pd.DataFrame(
        {
            "decisions a day": r.decisions,
            "vectorised, CPU s": round(r.vectorised_s, 1),
            "event-driven, CPU s": round(r.event_driven_s, 2),
        }
        for r in rows
    ).set_axis([r.label for r in rows])
