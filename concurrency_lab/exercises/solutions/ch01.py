"""Reference solutions for chapter 01 (concurrency and the GIL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["SPEEDUPS", "run_all"]


def run_all(job: Callable[[Any], Any], args: Sequence[Any]) -> list[Any]:
    """IO-bound jobs: one thread each, results in input order."""
    with ThreadPoolExecutor(max_workers=len(args) or 1) as pool:
        return list(pool.map(job, args))


#: 8 equal jobs, one worker each, a quiet 4-core machine.
SPEEDUPS = {
    ("cpu", "threads"): 1.0,  # one GIL: threads take turns
    ("cpu", "processes"): 4.0,  # one GIL per process, but only 4 cores
    ("cpu", "asyncio"): 1.0,  # no await, no switch
    ("native", "threads"): 4.0,  # the GIL is released: as many at once as there are cores
    ("io", "threads"): 8.0,  # the waits overlap
    ("io", "asyncio"): 8.0,
}
