"""Robust summaries of repeated timings: median, spread and coefficient of variation.

A benchmark is a sample, not a number. We report the median (one slow run caused by another
program on the machine does not move it), the 10th and 90th percentiles as the spread, and the
coefficient of variation (标准差/均值, stdev / mean) to say how noisy the sample was.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Summary",
    "busy_cores",
    "load_average",
    "seconds_per_call",
    "summarize",
    "three_digits",
]


@dataclass(frozen=True)
class Summary:
    """Median, 10th/90th percentiles, coefficient of variation and size of a sample."""

    median: float
    p10: float
    p90: float
    cv: float
    n: int

    def scaled(self, factor: float) -> Summary:
        """The same summary in other units (the cv has none, so it stays)."""
        return Summary(self.median * factor, self.p10 * factor, self.p90 * factor, self.cv, self.n)


def summarize(samples: Sequence[float]) -> Summary:
    """Summarise ``samples``; needs at least two so that a spread exists."""
    if len(samples) < 2:
        raise ValueError(f"need at least 2 samples to measure spread, got {len(samples)}")
    deciles = statistics.quantiles(samples, n=10, method="inclusive")
    mean = statistics.fmean(samples)
    cv = statistics.stdev(samples) / mean if mean else float("nan")
    return Summary(statistics.median(samples), deciles[0], deciles[-1], cv, len(samples))


def seconds_per_call(call: Callable[[], object], calls: int, repeats: int) -> list[float]:
    """Seconds per ``call()``, one value per batch of ``calls``: ``repeats`` batches, after a
    first one that warms up (caches, lazy imports, a partner getting going) and is dropped."""
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - start) / calls)
    return samples[1:]


def three_digits(x: float) -> str:
    """Three significant digits, without exponents for large values (``1,234``, ``12.3``)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def load_average() -> float | None:
    """Runnable processes averaged over the last minute (None where the OS has no such figure).

    Print it beside a measurement: a load above the number of cores means other programs
    competed for the CPU while it ran.
    """
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def busy_cores(seconds: float = 0.2) -> float:
    """How many cores' worth of CPU the whole machine used over the next ``seconds``.

    Call it while idle, before a measurement: whatever it reports is used by other programs,
    and parallel speed-ups can only come from the cores that are left.
    """
    import psutil

    return psutil.cpu_percent(interval=seconds) / 100 * (os.cpu_count() or 1)
