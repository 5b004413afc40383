"""Chapter 00 checks: two predictions that the next chapters then measure.

- :func:`check_switch_order`: order processes, threads, coroutines and generators by the cost
  of one switch, most expensive first (chapter 03 measures it).
- :func:`check_workloads`: classify workloads as CPU-bound or IO-bound (chapter 01 measures
  what concurrency does for each).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from concurrency_lab.exercises import Verdict, expect, passed

__all__ = ["WORKLOADS", "check_switch_order", "check_workloads"]

_ORDER = ("process", "thread", "coroutine", "generator")
_WHY_BEFORE = {
    ("process", "thread"): (
        "a process shares no memory: every message is pickled and copied through the kernel; "
        "threads of one process pass a reference to the same object"
    ),
    ("thread", "coroutine"): (
        "a thread switch goes through the operating system (and, in CPython, the GIL); a "
        "coroutine switch is a function return and call inside one thread, run by the event loop"
    ),
    ("coroutine", "generator"): (
        "a coroutine switch passes through the event loop's queue; a generator's send() is a "
        "plain call with no scheduler at all"
    ),
}

#: Workloads to classify: each is mostly computing ("cpu") or mostly waiting ("io").
WORKLOADS: dict[str, str] = {
    "download": "download 200 daily kline files from an exchange's REST API",
    "moving_average": "compute a 20-period moving average over 10 million prices in pure Python",
    "subscribe": "wait for order-book events from RabbitMQ and log each one",
    "grid_search": "backtest 400 pairs of moving-average windows to find the best one",
    "insert_fills": "write 10,000 fills to a database server, one INSERT and commit each",
    "hash_ids": "hash 1,000,000 order ids with a hash function written in pure Python",
}
_KINDS = {
    "download": "io",
    "moving_average": "cpu",
    "subscribe": "io",
    "grid_search": "cpu",
    "insert_fills": "io",
    "hash_ids": "cpu",
}
_WHY = {
    "io": "its time goes to waiting for a network or a disk; the CPU idles meanwhile",
    "cpu": "its time goes to arithmetic in the interpreter; nothing is waited for",
}


def check_switch_order(order: Sequence[str]) -> Verdict:
    """``order``: the four mechanisms, most expensive switch first."""
    got = [str(x).strip().lower() for x in order]
    expect(
        sorted(got) == sorted(_ORDER),
        f"got {list(order)!r}: give each of {list(_ORDER)} exactly once",
        "spell them process, thread, coroutine, generator",
    )
    for first, second in itertools.pairwise(_ORDER):
        expect(
            got.index(first) < got.index(second),
            f"{second} is listed as more expensive than {first}",
            _WHY_BEFORE[first, second],
        )
    return passed("switch order", " > ".join(_ORDER) + "; chapter 03 measures it")


def check_workloads(answers: Mapping[str, str]) -> Verdict:
    """``answers``: each key of :data:`WORKLOADS` mapped to ``"cpu"`` or ``"io"``."""
    missing = sorted(set(WORKLOADS) - set(answers))
    extra = sorted(set(answers) - set(WORKLOADS))
    expect(
        not missing and not extra,
        f"missing {missing}, unknown {extra}",
        f"answer exactly the keys {sorted(WORKLOADS)}",
    )
    bad_values = {k: v for k, v in answers.items() if str(v).lower() not in ("cpu", "io")}
    expect(
        not bad_values,
        f"answers must be 'cpu' or 'io', got {bad_values}",
        'write "cpu" or "io" for each workload',
    )
    wrong = [k for k, v in answers.items() if str(v).lower() != _KINDS[k]]
    expect(
        not wrong,
        f"{len(wrong)} of {len(WORKLOADS)} wrong:\n"
        + "\n".join(
            f"  - {k!r} ({WORKLOADS[k]}) is {_KINDS[k].upper()}-bound: {_WHY[_KINDS[k]]}"
            for k in wrong
        ),
        "ask: if the CPU were twice as fast, would this finish twice as fast? Yes: CPU-bound.",
    )
    return passed("workloads", "threads or asyncio help the IO-bound ones; see chapter 01")
