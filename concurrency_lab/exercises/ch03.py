"""Chapter 03 checks: reading benchmark samples the way this chapter does.

- :func:`check_summarize`: median and coefficient of variation of repeated timings.
- :func:`check_rank`: order mechanisms by their cheapest variant, from ``bench --json`` rows.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from concurrency_lab.exercises import Verdict, expect, passed

__all__ = ["check_rank", "check_summarize"]

Summarize = Callable[[Sequence[float]], Mapping[str, float]]
Rank = Callable[[Sequence[Mapping[str, Any]]], Sequence[str]]

_SAMPLES = {
    "steady": [20.1, 19.8, 20.4, 20.0, 19.9, 20.2, 20.3],
    "one slow run": [10.0] * 9 + [1000.0],
    "even count": [3.0, 1.0, 4.0, 2.0],
}


def check_summarize(summarize: Summarize) -> Verdict:
    """``summarize(samples)`` returns at least ``{"median": ..., "cv": ...}``."""
    for name, samples in _SAMPLES.items():
        got = summarize(list(samples))
        expect(
            isinstance(got, Mapping) and {"median", "cv"} <= set(got),
            f"summarize({name} samples) returned {got!r}",
            'return a dict with the keys "median" and "cv"',
        )
        median = statistics.median(samples)
        mean = statistics.fmean(samples)
        expect(
            math.isclose(got["median"], median, rel_tol=1e-9),
            f"{name}: median {got['median']!r}, expected {median!r}",
            "statistics.median (the mean is pulled by one slow run; the median is not)"
            if math.isclose(got["median"], mean)
            else "sort, then take the middle value (the mean of the two middle ones if even)",
        )
        cv = statistics.stdev(samples) / mean
        population = statistics.pstdev(samples) / mean
        expect(
            not math.isclose(got["cv"], 100 * cv, rel_tol=0.01),
            f"{name}: cv {got['cv']!r} looks like a percentage",
            "keep cv a ratio: 0.05 means 5 %",
        )
        expect(
            math.isclose(got["cv"], cv, rel_tol=1e-6) or math.isclose(got["cv"], population),
            f"{name}: cv {got['cv']!r}, expected {cv:.4g} (stdev / mean)",
            "cv = statistics.stdev(samples) / statistics.fmean(samples)",
        )
    return passed("summarize", "median for the typical run, cv for how noisy the runs were")


# Synthetic rows shaped like `python -m concurrency_lab bench --json` (not measurements).
_SYNTHETIC: list[tuple[list[tuple[str, str, float]], list[str]]] = [
    (
        [
            ("thread", "threading.Event", 21.0),
            ("process", "mp.Pipe", 62.0),
            ("coroutine", "asyncio.Queue", 16.0),
            ("thread", "queue.Queue", 30.0),
            ("generator", "generator.send()", 0.044),
            ("coroutine", "asyncio.sleep(0)", 2.6),
        ],
        ["process", "thread", "coroutine", "generator"],
    ),
    (  # the mean over variants would put coroutine above thread; the cheapest variant does not
        [
            ("coroutine", "slow queue", 40.0),
            ("coroutine", "sleep(0)", 2.0),
            ("thread", "Condition", 15.0),
            ("process", "Pipe", 50.0),
        ],
        ["process", "thread", "coroutine"],
    ),
    (  # a machine where threads beat processes: read the data, not the seed
        [
            ("process", "Pipe", 12.0),
            ("thread", "Event", 30.0),
            ("thread", "Condition", 18.0),
            ("generator", "send", 0.05),
        ],
        ["thread", "process", "generator"],
    ),
]


def check_rank(rank: Rank) -> Verdict:
    """``rank(rows)``: mechanisms, most expensive first, each judged by its fastest variant."""
    for i, (table, want) in enumerate(_SYNTHETIC, 1):
        rows = [{"mechanism": m, "variant": v, "median_us": us, "cv": 0.05} for m, v, us in table]
        got = list(rank(rows))
        expect(
            sorted(got) == sorted(want),
            f"synthetic table {i}: got {got}, expected each of {sorted(want)} once",
            "one entry per mechanism: group the rows by row['mechanism']",
        )
        expect(
            got != want[::-1],
            f"synthetic table {i}: got {got}, which is cheapest first",
            "most expensive first: sort by the median, descending",
        )
        expect(
            got == want,
            f"synthetic table {i}: got {got}, expected {want}",
            "judge each mechanism by its fastest variant (min of median_us), not the mean, "
            "and compute the order from the rows rather than from the seed's claim",
        )
    return passed("rank", "same rule as the test that guards `bench --json`")
