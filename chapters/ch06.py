"""Chapter 06 (the event loop from scratch): the lines that read the loop and nest-asyncio2 runs."""

from __future__ import annotations

import itertools

from concurrency_lab.loops import Ranked
from concurrency_lab.nest_cost import NestVerdict

__all__ = ["nest_verdict_lines", "ranking_lines"]

_VERDICT = {
    "dearer": "dearer with nest-asyncio2, beyond the spread",
    "cheaper": "cheaper with nest-asyncio2, beyond the spread",
    "within the spread": "within the spread: this run cannot tell them apart",
}


def ranking_lines(ranking: dict[str, list[Ranked]]) -> list[str]:
    """One line per workload, fastest first: ``<`` when clear of the next, ``≈`` when not."""
    lines = []
    for workload, ranked in ranking.items():
        text = f"{ranked[0].loop} {ranked[0].median_us:.2f}"
        for faster, slower in itertools.pairwise(ranked):
            sign = "<" if faster.apart_from_next else "≈"
            text += f" {sign} {slower.loop} {slower.median_us:.2f}"
        lines.append(f"{workload}: {text} µs")
    return lines


def nest_verdict_lines(verdicts: list[NestVerdict]) -> list[str]:
    """One line per operation: the slowdown, the range the spread allows, and the verdict."""
    return [
        f"{v.operation}: {v.slowdown:.2f}× (spread allows {v.low:.2f}× to {v.high:.2f}×): "
        f"{_VERDICT[v.verdict]}"
        for v in verdicts
    ]
