"""Chapter 01 checks: concurrency (并发) for IO, parallelism (并行) for CPU.

- :func:`check_run_concurrently`: run IO-bound jobs concurrently, results in input order.
- :func:`check_speedups`: apply chapter 01's reasoning to a bigger machine: 8 jobs, 4 cores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from concurrency_lab.exercises import ExerciseError, Verdict, expect, passed

__all__ = ["SPEEDUP_CASES", "check_run_concurrently", "check_speedups"]

RunAll = Callable[[Callable[[Any], Any], Sequence[Any]], Sequence[Any]]


#: The check's inputs, and how long each job waits: the later a job is submitted, the sooner
#: it finishes, so the completion order is the reverse of the input order.
_ARGS = (3, 1, 4, 5, 9)
_WAIT = {3: 0.10, 1: 0.08, 4: 0.06, 5: 0.04, 9: 0.02}


def check_run_concurrently(run_all: RunAll) -> Verdict:
    """``run_all(job, args)`` returns ``[job(a) for a in args]``, running the jobs concurrently."""
    lock = threading.Lock()
    in_flight, peak = 0, 0

    def job(x: int) -> int:  # a local function on purpose: threads can run it, processes can't
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        # An IO wait whose length differs per job, 20 ms apart: run concurrently, the jobs
        # finish in another order than they were submitted, so results collected as they
        # complete come out visibly out of order.
        time.sleep(_WAIT[x])
        with lock:
            in_flight -= 1
        return x * x

    args = list(_ARGS)
    try:
        got = run_all(job, args)
    except Exception as exc:
        if "pickle" in f"{type(exc).__name__} {exc}".lower():
            raise ExerciseError(
                f"the job could not be sent to another process ({exc})",
                "these jobs wait on IO, so threads are enough (and share memory): "
                "use concurrent.futures.ThreadPoolExecutor",
            ) from exc
        raise
    expect(got is not None, "run_all returned None", "return the list of results")
    expected = [x * x for x in args]
    completion = [x * x for x in sorted(args, key=_WAIT.__getitem__)]
    expect(
        list(got) != completion,
        f"got {got!r}: the order in which the jobs finished, not the order of args "
        f"(expected {expected!r})",
        "keep the results in the order of args: pool.map does, or keep the futures in a list "
        "and call .result() on each in turn (as_completed gives them as they finish)",
    )
    expect(
        list(got) == expected,
        f"got {got!r}, expected {expected!r}",
        "keep the results in the order of args (pool.map does; or keep the futures in a list)",
    )
    expect(
        peak >= 3,
        f"at most {peak} job(s) ran at the same time",
        "submit all the jobs before waiting for any result: pool.map(job, args), or "
        "[pool.submit(job, a) for a in args] and only then .result()",
    )
    return passed("run_concurrently", f"{peak} jobs in flight at once")


#: (workload, mode) pairs for :func:`check_speedups`: 8 equal jobs on a quiet 4-core machine.
SPEEDUP_CASES = [
    ("cpu", "threads"),
    ("cpu", "processes"),
    ("cpu", "asyncio"),
    ("native", "threads"),
    ("io", "threads"),
    ("io", "asyncio"),
]
_EXPECTED = {
    ("cpu", "threads"): (1.0, "the GIL lets one thread run Python at a time: no gain"),
    ("cpu", "processes"): (
        4.0,
        "each process has its own GIL, so they run in parallel, but 8 jobs share 4 cores",
    ),
    ("cpu", "asyncio"): (1.0, "a coroutine with no await never lets the loop switch: serial"),
    ("native", "threads"): (
        4.0,
        "C code that releases the GIL runs in parallel in threads, one per free core: 4 cores",
    ),
    ("io", "threads"): (8.0, "the 8 waits overlap completely; a waiting thread needs no CPU"),
    ("io", "asyncio"): (8.0, "the 8 awaits overlap completely on one thread"),
}


def check_speedups(predictions: Mapping[tuple[str, str], float]) -> Verdict:
    """Speed-up over serial for 8 equal jobs, one worker each, on a quiet 4-core machine."""
    missing = [c for c in SPEEDUP_CASES if c not in predictions]
    expect(
        not missing, f"no prediction for {missing}", f"give a number for each of {SPEEDUP_CASES}"
    )
    wrong = []
    for case in SPEEDUP_CASES:
        want, why = _EXPECTED[case]
        got = float(predictions[case])
        if not 0.75 * want <= got <= 1.25 * want:
            wrong.append(f"  - {case}: you said {got:g}×, but {why}")
    expect(
        not wrong,
        f"{len(wrong)} of {len(SPEEDUP_CASES)} predictions are off:\n" + "\n".join(wrong),
        "speed-up = serial time / concurrent time; ask what limits each case: the GIL (one "
        "core at a time), the number of cores, or the number of jobs",
    )
    return passed("speedups", "now compare the shape with the figure you measured above")
