"""Chapter 07 (vectorised vs event-driven): the lines that read the factor and the live costs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mqlab.timeseries import FactorEvaluation

__all__ = ["factor_line", "live_lines"]


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
