"""Reference solutions for chapter 03 (switching costs)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["rank", "summarize"]


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median (robust to a slow run) and coefficient of variation (stdev / mean)."""
    return {
        "median": statistics.median(samples),
        "cv": statistics.stdev(samples) / statistics.fmean(samples),
    }


def rank(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Mechanisms, most expensive first, each judged by its fastest variant."""
    best: dict[str, float] = {}
    for row in rows:
        m = row["mechanism"]
        best[m] = min(best.get(m, float("inf")), row["median_us"])
    return sorted(best, key=best.__getitem__, reverse=True)
