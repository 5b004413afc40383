"""Switch costs: ping-pong round trips between two processes, threads, tasks or generators.

Each variant hands a market event (:data:`ORDER_BOOK`, a synthetic 10-level order-book tick) to
a partner and waits for it to come back, ``rounds`` times in a row; one sample is the mean time
per round trip (two switches: there and back). Threads, tasks and generators pass a reference;
processes share no memory, so the event is pickled and copied each way — that copy is part of
the price of a process. Samples are repeated and summarised with
:func:`concurrency_lab.stats.summarize` (median, p10/p90, cv); the first repeat warms up and is
thrown away.

By default both partners are pinned to one CPU (Linux), as lmbench does: the seed's claim is
about switching tasks on one CPU, and on two CPUs every OS-level hand-over becomes bimodal
(about 15 or about 50 µs here), depending on whether the partner wakes on the same core.

What the ordering process > thread then means is checked by :func:`like_for_like`: the same
one-byte hand-over through the kernel between two threads and between two processes (the OS
switch alone), ``mp.Pipe`` with a bare integer, and each pinned and not pinned.

Memory per unit and start-up cost per unit are measured here too: the other two prices of a
process, a thread, a task or a generator.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import itertools
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from concurrency_lab._aio import run_sync
from concurrency_lab.stats import summarize

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = [
    "LIKE_FOR_LIKE",
    "MECHANISMS",
    "ORDER_BOOK",
    "VARIANTS",
    "MemoryResult",
    "SwitchResult",
    "Variant",
    "fastest_per_mechanism",
    "format_table",
    "least_busy_cpu",
    "like_for_like",
    "like_for_like_report",
    "memory_per_unit",
    "ordering_report",
    "pinned",
    "plot_like_for_like",
    "plot_memory",
    "plot_switch_costs",
    "process_bytes",
    "run_switch_costs",
    "startup_costs",
    "thread_bytes",
]

#: Mechanisms from the most to the least expensive switch (the seed's claim, extended).
MECHANISMS = ("process", "thread", "coroutine", "generator")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
Samples = list[float]  # seconds per round trip, one value per repeat

#: The message every ping-pong carries: a synthetic order-book tick, 10 levels a side.
ORDER_BOOK: dict[str, Any] = {
    "platform": "synthetic",
    "symbol": "BTC/USDT",
    "timestamp": 1_718_600_000_000,
    "asks": [[64_000.5 + i, round(0.25 + i / 10, 2)] for i in range(10)],
    "bids": [[63_999.5 - i, round(0.30 + i / 10, 2)] for i in range(10)],
}


def least_busy_cpu() -> int | None:
    """The CPU this process may use that was least busy over the next 0.1 s (None: no affinity)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    import psutil

    load = psutil.cpu_percent(interval=0.1, percpu=True)
    return min(sorted(os.sched_getaffinity(0)), key=lambda c: load[c] if c < len(load) else 100.0)


@contextmanager
def pinned(cpu: int | None = None) -> Iterator[int | None]:
    """Pin the calling thread (and the threads and processes it starts) to one CPU.

    Yields the CPU, or ``None`` where the OS offers no affinity (macOS, Windows). Without
    ``cpu``, picks the least busy CPU over the next 0.1 s.
    """
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    if cpu is None:
        cpu = least_busy_cpu()
    assert cpu is not None
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


# -- process -------------------------------------------------------------------------------
def _echo(conn: Any) -> None:
    """Child process: send back every message until ``None`` arrives."""
    while (msg := conn.recv()) is not None:
        conn.send(msg)


def process_pipe(rounds: int, repeats: int, payload: Any = ORDER_BOOK) -> Samples:
    """Two processes ping-pong over a ``multiprocessing.Pipe`` (pickling ``payload``)."""
    parent, child = mp.Pipe()
    worker = mp.Process(target=_echo, args=(child,), name="echo", daemon=True)
    worker.start()
    try:
        samples = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            for _ in range(rounds):
                parent.send(payload)
                parent.recv()
            samples.append((time.perf_counter() - start) / rounds)
    finally:
        parent.send(None)
        worker.join(5)
        if worker.is_alive():
            worker.kill()
    return samples[1:]


# -- the kernel alone: one byte through a socket pair, to a thread or to a process ---------
def _byte_echo(conn: Any) -> None:
    """Partner: read one byte, write it back, until a zero byte arrives (no pickling at all)."""
    fd = conn.fileno()
    while (byte := os.read(fd, 1)) != b"\0":
        os.write(fd, byte)


def _raw_pingpong(rounds: int, repeats: int, start: Callable[[Any], Any]) -> Samples:
    ours, theirs = mp.Pipe()  # a Unix socket pair: the same kernel object for both partners
    partner = start(theirs)
    fd = ours.fileno()
    try:
        samples = []
        for _ in range(repeats + 1):
            begin = time.perf_counter()
            for _ in range(rounds):
                os.write(fd, b"x")
                os.read(fd, 1)
            samples.append((time.perf_counter() - begin) / rounds)
    finally:
        os.write(fd, b"\0")
        partner.join(5)
        ours.close()
        theirs.close()
    return samples[1:]


def _started(worker: threading.Thread | mp.Process) -> threading.Thread | mp.Process:
    worker.start()
    return worker


def process_bytes(rounds: int, repeats: int) -> Samples:
    """Two processes hand one byte back and forth with ``os.read``/``os.write``: the OS only."""
    return _raw_pingpong(
        rounds, repeats, lambda c: _started(mp.Process(target=_byte_echo, args=(c,), daemon=True))
    )


def thread_bytes(rounds: int, repeats: int) -> Samples:
    """Two threads hand one byte back and forth, as :func:`process_bytes` does for processes.

    ``os.read`` releases the GIL while it waits, so no GIL hand-over is timed: only the OS.
    """
    return _raw_pingpong(
        rounds,
        repeats,
        lambda c: _started(threading.Thread(target=_byte_echo, args=(c,), daemon=True)),
    )


# -- threads -------------------------------------------------------------------------------
def _two_threads(
    rounds: int, repeats: int, ping: Callable[[], None], partner: Callable[[int], None]
) -> Samples:
    """Time ``ping`` (one round trip) in this thread while ``partner`` answers in another."""
    helper = threading.Thread(
        target=partner, args=(rounds * (repeats + 1),), name="partner", daemon=True
    )
    helper.start()
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(rounds):
            ping()
        samples.append((time.perf_counter() - start) / rounds)
    helper.join()
    return samples[1:]


def thread_event(rounds: int, repeats: int) -> Samples:
    """Two threads ping-pong with a pair of ``threading.Event``."""
    there, back = threading.Event(), threading.Event()
    box = [ORDER_BOOK]  # shared memory: the partner reads the same object

    def ping() -> None:
        box[0] = ORDER_BOOK
        there.set()
        back.wait()
        back.clear()

    def partner(n: int) -> None:
        for _ in range(n):
            there.wait()
            there.clear()
            back.set()

    return _two_threads(rounds, repeats, ping, partner)


def thread_condition(rounds: int, repeats: int) -> Samples:
    """Two threads take turns on one ``threading.Condition``."""
    cond = threading.Condition()
    turn = ["main"]
    box = [ORDER_BOOK]

    def ping() -> None:
        with cond:
            box[0] = ORDER_BOOK
            turn[0] = "partner"
            cond.notify()
            while turn[0] != "main":
                cond.wait()

    def partner(n: int) -> None:
        for _ in range(n):
            with cond:
                while turn[0] != "partner":
                    cond.wait()
                turn[0] = "main"
                cond.notify()

    return _two_threads(rounds, repeats, ping, partner)


def thread_queue(rounds: int, repeats: int) -> Samples:
    """Two threads ping-pong through a pair of ``queue.Queue``."""
    there: queue.Queue[Any] = queue.Queue()
    back: queue.Queue[Any] = queue.Queue()

    def ping() -> None:
        there.put(ORDER_BOOK)
        back.get()

    def partner(n: int) -> None:
        for _ in range(n):
            back.put(there.get())

    return _two_threads(rounds, repeats, ping, partner)


# -- coroutines ----------------------------------------------------------------------------
async def _queue_pingpong(rounds: int, repeats: int) -> Samples:
    there: asyncio.Queue[Any] = asyncio.Queue()
    back: asyncio.Queue[Any] = asyncio.Queue()

    async def partner() -> None:
        while (msg := await there.get()) is not None:
            back.put_nowait(msg)

    task = asyncio.create_task(partner(), name="partner")
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(rounds):
            there.put_nowait(ORDER_BOOK)
            await back.get()
        samples.append((time.perf_counter() - start) / rounds)
    there.put_nowait(None)
    await task
    return samples[1:]


async def _sleep0_pingpong(rounds: int, repeats: int) -> Samples:
    done = False
    box = [ORDER_BOOK]

    async def partner() -> None:
        while not done:
            await asyncio.sleep(0)

    task = asyncio.create_task(partner(), name="partner")
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(rounds):
            box[0] = ORDER_BOOK
            await asyncio.sleep(0)  # the loop runs the partner's step, then us again
        samples.append((time.perf_counter() - start) / rounds)
    done = True
    await task
    return samples[1:]


def asyncio_queue(rounds: int, repeats: int, loop_factory: LoopFactory | None = None) -> Samples:
    """Two asyncio tasks ping-pong through a pair of ``asyncio.Queue``."""
    return run_sync(lambda: _queue_pingpong(rounds, repeats), loop_factory)


def asyncio_sleep0(rounds: int, repeats: int, loop_factory: LoopFactory | None = None) -> Samples:
    """Two asyncio tasks hand the loop to each other with ``await asyncio.sleep(0)``."""
    return run_sync(lambda: _sleep0_pingpong(rounds, repeats), loop_factory)


def sleep0_on(
    run: Callable[[Coroutine[Any, Any, Samples]], Samples], rounds: int, repeats: int
) -> Samples:
    """The ``sleep(0)`` ping-pong on any loop that ``run(coro)`` drives (e.g. a home-made one).

    The coroutine only uses ``asyncio.create_task`` and ``asyncio.sleep(0)``.
    """
    return run(_sleep0_pingpong(rounds, repeats))


# -- generators ----------------------------------------------------------------------------
def _mirror() -> Generator[Any, Any, None]:
    msg = None
    while True:
        msg = yield msg


def generator_send(rounds: int, repeats: int) -> Samples:
    """A caller and a generator ping-pong with ``send()``: no scheduler at all."""
    send = _mirror().send
    send(None)
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(rounds):
            send(ORDER_BOOK)
        samples.append((time.perf_counter() - start) / rounds)
    return samples[1:]


# -- the catalogue -------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One way to switch: its mechanism, a name, its ping-pong, and a run length."""

    mechanism: str
    name: str
    measure: Callable[[int, int], Samples]
    rounds: int  # round trips per sample in the full setting (about 30-60 ms per sample)


def _uvloop_factory() -> LoopFactory | None:
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    return uvloop.new_event_loop


def _variants() -> list[Variant]:
    found = [
        Variant("process", "mp.Pipe", process_pipe, 600),
        Variant("thread", "threading.Event", thread_event, 1500),
        Variant("thread", "threading.Condition", thread_condition, 1500),
        Variant("thread", "queue.Queue", thread_queue, 1500),
        Variant("coroutine", "asyncio.Queue", asyncio_queue, 3000),
        Variant("coroutine", "asyncio.sleep(0)", asyncio_sleep0, 15000),
    ]
    if (uv := _uvloop_factory()) is not None:
        found += [
            Variant(
                "coroutine",
                "asyncio.Queue (uvloop)",
                lambda r, n: asyncio_queue(r, n, uv),
                3000,
            ),
            Variant(
                "coroutine",
                "asyncio.sleep(0) (uvloop)",
                lambda r, n: asyncio_sleep0(r, n, uv),
                15000,
            ),
        ]
    found.append(Variant("generator", "generator.send()", generator_send, 500_000))
    return found


#: Every variant that can run here (the uvloop ones only when uvloop is installed).
VARIANTS: list[Variant] = _variants()


@dataclass(frozen=True)
class SwitchResult:
    """The summary of one variant's round trips, in microseconds (what ``--json`` prints)."""

    mechanism: str
    variant: str
    median_us: float
    p10_us: float
    p90_us: float
    cv: float
    n: int
    rounds: int
    cpu: int | None = None  # the CPU both partners were pinned to, if any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_switch_costs(
    quick: bool = False,
    variants: Sequence[Variant] | None = None,
    *,
    pin: bool = True,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> list[SwitchResult]:
    """Measure every variant (pinned to one CPU unless ``pin=False``).

    The variants take turns, one sample each per repeat, so that a burst of load from another
    program lands on all of them alike instead of spoiling one. Quick: 15 repeats of
    quarter-length runs, about 2 s in all; full: 30 repeats of full-length runs.
    """
    repeats, scale = (15, 0.25) if quick else (30, 1.0)
    chosen = list(variants or VARIANTS)
    rounds = [max(10, int(v.rounds * scale)) for v in chosen]
    samples: list[Samples] = [[] for _ in chosen]
    turns = range(repeats)
    with pinned() if pin else nullcontext() as cpu:
        for _ in progress(turns) if progress else turns:
            for v, n, out in zip(chosen, rounds, samples, strict=True):
                out += v.measure(n, 1)
    results = []
    for v, n, out in zip(chosen, rounds, samples, strict=True):
        s = summarize(out).scaled(1e6)
        results.append(SwitchResult(v.mechanism, v.name, s.median, s.p10, s.p90, s.cv, s.n, n, cpu))
    return results


def fastest_per_mechanism(results: Iterable[SwitchResult]) -> dict[str, SwitchResult]:
    """The cheapest variant of each mechanism, most expensive mechanism first."""
    best: dict[str, SwitchResult] = {}
    for r in results:
        if r.mechanism not in best or r.median_us < best[r.mechanism].median_us:
            best[r.mechanism] = r
    return dict(sorted(best.items(), key=lambda kv: -kv[1].median_us))


def _us(x: float) -> str:
    """Three significant digits, without exponents for large values."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def format_table(results: Sequence[SwitchResult]) -> str:
    """A plain-text table, slowest first, with each median as a multiple of the fastest."""
    fastest = min(r.median_us for r in results)
    head = (
        f"{'mechanism':<10} {'variant':<26} {'median µs':>10} {'p10–p90 µs':>17} "
        f"{'cv':>6} {'× fastest':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in sorted(results, key=lambda r: -r.median_us):
        spread = f"{_us(r.p10_us)}–{_us(r.p90_us)}"
        lines.append(
            f"{r.mechanism:<10} {r.variant:<26} {_us(r.median_us):>10} {spread:>17} "
            f"{r.cv:>6.1%} {r.median_us / fastest:>10,.0f}"
        )
    return "\n".join(lines)


def plot_switch_costs(
    results: Sequence[SwitchResult],
    ax: Axes | None = None,
    *,
    title: str | None = None,
    xlabel: str = "round trip (µs, log scale; median, whiskers p10–p90)",
) -> Axes:
    """Horizontal bars of the median round trip on a log axis, whiskers from p10 to p90."""
    import matplotlib.pyplot as plt

    ordered = sorted(results, key=lambda r: r.median_us)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * len(ordered) + 1.2))
    palette = dict(zip(MECHANISMS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    y = range(len(ordered))
    ax.barh(
        y,
        [r.median_us for r in ordered],
        xerr=[
            [r.median_us - r.p10_us for r in ordered],
            [r.p90_us - r.median_us for r in ordered],
        ],
        color=[palette[r.mechanism] for r in ordered],
        capsize=3,
    )
    for i, r in enumerate(ordered):
        ax.annotate(
            f" {_us(r.median_us)} µs",
            (r.p90_us, i),
            va="center",
            fontsize="small",
        )
    ax.set_yticks(list(y), [f"{r.mechanism}: {r.variant}" for r in ordered])
    ax.set_ylabel("mechanism: variant")
    ax.set_xscale("log")
    ax.set_xlim(min(r.p10_us for r in ordered) / 3, max(r.p90_us for r in ordered) * 8)
    ax.set_xlabel(xlabel)
    cpu = ordered[0].cpu
    where = f"both partners pinned to CPU {cpu}" if cpu is not None else "not pinned"
    ax.set_title(
        title
        or f"Round trip per switch: a synthetic order-book event there and back\n"
        f"({os.cpu_count()} cores, {where})"
    )
    ax.grid(axis="x", alpha=0.3)
    return ax


def ordering_report(results: Sequence[SwitchResult]) -> list[str]:
    """The measured order of the mechanisms (fastest variant each) and the gaps between them."""
    best = fastest_per_mechanism(results)
    order = list(best)
    seed = [m for m in MECHANISMS if m in best]
    lines = [
        "measured order: " + " > ".join(order),
        f"the seed's process > thread > coroutine (> generator) holds: {order == seed}",
    ]
    gaps = []
    for slow, fast in itertools.pairwise(best.values()):
        gaps.append((slow.median_us / fast.median_us, f"{slow.mechanism} / {fast.mechanism}"))
        lines.append(
            f"  {slow.mechanism} / {fast.mechanism}: {gaps[-1][0]:,.1f}× "
            f"({slow.variant} {_us(slow.median_us)} µs vs {fast.variant} {_us(fast.median_us)} µs)"
        )
    if gaps:
        lines.append(f"smallest gap: {min(gaps)[1]}; largest gap: {max(gaps)[1]}")
    return lines


#: What :func:`like_for_like` compares: (name, mechanism, measure).
LIKE_FOR_LIKE: list[tuple[str, str, Callable[[int, int], Samples]]] = [
    ("1 byte, os.read/os.write", "process", process_bytes),
    ("1 byte, os.read/os.write", "thread", thread_bytes),
    ("mp.Pipe, bare int", "process", lambda r, n: process_pipe(r, n, payload=1)),
    ("mp.Pipe, order book", "process", process_pipe),
    ("threading.Condition", "thread", thread_condition),
    ("threading.Event", "thread", thread_event),
]


def like_for_like(
    quick: bool = False, progress: Callable[[Iterable[int]], Iterable[int]] | None = None
) -> pd.DataFrame:
    """Round trips of :data:`LIKE_FOR_LIKE`, each pinned to one CPU and not pinned.

    As in :func:`run_switch_costs`, every case takes one sample per repeat, in turn. Columns:
    what, mechanism, and the median and p90 in µs, pinned and not pinned. Not pinned, a
    hand-over lands on the same core or the other one, so its p90 shows the slow mode.
    """
    import pandas as pd

    repeats, rounds = (9, 300) if quick else (25, 1500)
    cpu = least_busy_cpu()
    samples: dict[tuple[int, bool], Samples] = {}
    turns = range(repeats)
    for _ in progress(turns) if progress else turns:
        for pin in (True, False):
            with pinned(cpu) if pin and cpu is not None else nullcontext():
                for i, (_, _, measure) in enumerate(LIKE_FOR_LIKE):
                    samples.setdefault((i, pin), []).extend(measure(rounds, 1))
    rows = []
    for i, (what, mechanism, _) in enumerate(LIKE_FOR_LIKE):
        on, off = (summarize(samples[i, pin]).scaled(1e6) for pin in (True, False))
        rows.append(
            {
                "what": what,
                "mechanism": mechanism,
                "pinned µs": on.median,
                "pinned p90": on.p90,
                "not pinned µs": off.median,
                "not pinned p90": off.p90,
            }
        )
    return pd.DataFrame(rows)


def _compare(a: float, b: float) -> str:
    """a against b in words: about the same, close, or how many times dearer or cheaper."""
    r = a / b
    if 0.8 <= r <= 1.25:
        return f"{r:.2f}×: about the same"
    if 2 / 3 <= r <= 1.5:
        return f"{r:.2f}×: close"
    return f"{r:.1f}×: dearer" if r > 1 else f"{1 / r:.1f}× cheaper"


def like_for_like_report(frame: pd.DataFrame) -> list[str]:
    """What :func:`like_for_like` shows, in sentences computed from its numbers."""
    t = frame.set_index(["what", "mechanism"])

    def us(what: str, mechanism: str, column: str) -> float:
        return float(t.loc[(what, mechanism), column])

    raw = "1 byte, os.read/os.write"
    p_raw, t_raw = us(raw, "process", "pinned µs"), us(raw, "thread", "pinned µs")
    bare = us("mp.Pipe, bare int", "process", "not pinned µs")
    cond = us("threading.Condition", "thread", "not pinned µs")
    event = us("threading.Event", "thread", "not pinned µs")
    book = us("mp.Pipe, order book", "process", "pinned µs")
    int_pinned = us("mp.Pipe, bare int", "process", "pinned µs")
    return [
        f"the OS alone (1 byte, pinned): process {_us(p_raw)} µs vs thread {_us(t_raw)} µs "
        f"-> process/thread {_compare(p_raw, t_raw)}",
        f"mp.Pipe with a bare int, not pinned: {_us(bare)} µs; threading.Condition "
        f"{_us(cond)} µs ({_compare(bare, cond)}), threading.Event {_us(event)} µs "
        f"({_compare(bare, event)})",
        f"the order book instead of an int (pinned): {_us(book)} vs {_us(int_pinned)} µs, "
        f"+{_us(book - int_pinned)} µs of pickling and copying per round trip",
        f"mp.Pipe's own work (pickle, a length header, more system calls) over the OS alone: "
        f"+{_us(int_pinned - p_raw)} µs (pinned)",
    ]


def like_for_like_conclusion(frame: pd.DataFrame, results: Sequence[SwitchResult]) -> list[str]:
    """The chapter's conclusion, drawn from this run: did process > thread hold, and why.

    The pinned process hand-over of the order book minus the pinned 1-byte thread switch is
    split into three parts that add up exactly: the OS switching to another process rather
    than a thread, ``mp.Pipe``'s own work, and pickling and copying the event. The line names
    the largest part, whichever it is.
    """
    t = frame.set_index(["what", "mechanism"])

    def us(what: str, mechanism: str) -> float:
        return float(t.loc[(what, mechanism), "pinned µs"])

    best = fastest_per_mechanism(results)
    lines = []
    if "process" in best and "thread" in best:
        p, th = best["process"], best["thread"]
        held = "held" if p.median_us > th.median_us else "did not hold"
        lines.append(
            f"section 2, one CPU, the event handed over: process > thread {held} "
            f"({p.variant} {_us(p.median_us)} µs vs {th.variant} {_us(th.median_us)} µs, "
            f"{p.median_us / th.median_us:.1f}×)"
        )
    raw = "1 byte, os.read/os.write"
    p_raw, t_raw = us(raw, "process"), us(raw, "thread")
    bare, book = us("mp.Pipe, bare int", "process"), us("mp.Pipe, order book", "process")
    parts = {
        "the OS switching to another process instead of a thread": p_raw - t_raw,
        "mp.Pipe's own work (pickle, header, system calls)": bare - p_raw,
        "pickling and copying the event": book - bare,
    }
    step = book - t_raw
    lines.append(
        f"the step from a thread switch ({_us(t_raw)} µs) to handing the event to a process "
        f"({_us(book)} µs), pinned: {step:+.3g} µs, made of"
    )
    share = {part: v / step if abs(v / step) >= 0.005 else 0.0 for part, v in parts.items()}
    lines += [f"  {part}: {v:+.3g} µs ({share[part]:.0%})" for part, v in parts.items()]
    largest = max(parts, key=lambda k: parts[k])
    lines.append(f"largest part in this run: {largest}")
    return lines


def plot_like_for_like(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bars of :func:`like_for_like`: each case pinned and not pinned, whiskers up to the p90."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 4))
    palette = dict(zip(MECHANISMS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    y = list(range(len(frame)))
    for offset, (column, hatch) in enumerate([("pinned", None), ("not pinned", "///")]):
        median, p90 = frame[f"{column} µs"], frame[f"{column} p90"]
        ax.barh(
            [k - 0.2 + 0.4 * offset for k in y],  # pinned above, once the axis is inverted
            median,
            height=0.38,
            xerr=[[0] * len(frame), list(p90 - median)],
            color=[palette[m] for m in frame["mechanism"]],
            edgecolor="white",
            capsize=2,
            hatch=hatch,
        )
    ax.set_yticks(y, [f"{m}: {w}" for m, w in zip(frame["mechanism"], frame["what"], strict=True)])
    ax.invert_yaxis()
    ax.set_xlabel("round trip (µs; median, whisker up to the p90)")
    ax.set_ylabel("mechanism: what is handed over")
    ax.set_title("What a hand-over is made of: the OS switch alone, mp.Pipe's work, the message")
    ax.legend(
        handles=[
            Patch(facecolor="0.55", label="pinned to one CPU"),
            Patch(facecolor="0.55", hatch="///", edgecolor="white", label="not pinned"),
        ],
        title="partners",
        fontsize="small",
    )
    ax.grid(axis="x", alpha=0.3)
    return ax


# -- memory and start-up per unit ----------------------------------------------------------
@dataclass(frozen=True)
class MemoryResult:
    """Memory one more unit costs: RSS growth (or the child's unique memory for processes)."""

    mechanism: str
    unit: str
    count: int
    kib_per_unit: float
    how: str


def _rss() -> int:
    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


def _idle(stop: Any) -> None:
    stop.wait()


def _threads_memory(count: int) -> MemoryResult:
    stop = threading.Event()
    before = _rss()
    threads = [threading.Thread(target=_idle, args=(stop,), daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    grown = _rss() - before
    stop.set()
    for t in threads:
        t.join()
    how = "RSS growth of this process; each stack reserves 8 MiB of address space but few pages"
    return MemoryResult("thread", "threading.Thread", count, grown / count / 1024, how)


def _processes_memory(count: int) -> MemoryResult:
    import psutil

    stop = mp.Event()
    procs = [mp.Process(target=_idle, args=(stop,), daemon=True) for _ in range(count)]
    for p in procs:
        p.start()
    time.sleep(0.2)  # let every child settle into its wait
    try:
        uss = [psutil.Process(p.pid).memory_full_info().uss for p in procs if p.pid]
    finally:
        stop.set()
        for p in procs:
            p.join(5)
    method = mp.get_start_method()
    how = f"unique memory (USS) of each child; start method {method!r} shares pages until written"
    return MemoryResult("process", f"mp.Process ({method})", count, sum(uss) / count / 1024, how)


def _python_heap_growth(build: Callable[[], Any]) -> int:
    """Bytes of Python objects that ``build()`` allocates and keeps (exact, via tracemalloc).

    RSS would under-count here: small objects land in memory the process already owns.
    """
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep = build()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del keep
    return grown


def _tasks_memory(count: int) -> MemoryResult:
    import tracemalloc

    async def main() -> int:
        stop = asyncio.Event()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tasks = [asyncio.create_task(stop.wait()) for _ in range(count)]
            await asyncio.sleep(0)  # every task starts and parks on the event with a waiter
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        stop.set()
        await asyncio.gather(*tasks)
        return grown

    grown = run_sync(main)
    how = "Python heap growth (tracemalloc) per started, waiting task"
    return MemoryResult("coroutine", "asyncio.Task", count, grown / count / 1024, how)


def _generators_memory(count: int) -> MemoryResult:
    def build() -> list[Generator[Any, Any, None]]:
        gens = [_mirror() for _ in range(count)]
        for g in gens:
            next(g)
        return gens

    grown = _python_heap_growth(build)
    how = "Python heap growth (tracemalloc) per started generator"
    return MemoryResult("generator", "generator", count, grown / count / 1024, how)


def memory_per_unit(quick: bool = False) -> list[MemoryResult]:
    """Start many idle units of each kind (bounded counts) and divide the memory they add."""
    scale = 1 if quick else 4
    return [
        _processes_memory(8 * scale),
        _threads_memory(250 * scale),
        _tasks_memory(20_000 * scale),
        _generators_memory(50_000 * scale),
    ]


def plot_memory(results: Sequence[MemoryResult], ax: Axes | None = None) -> Axes:
    """Bars of KiB per unit on a log axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.8))
    palette = dict(zip(MECHANISMS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    ordered = list(results)[::-1]
    ax.barh(
        range(len(ordered)),
        [max(r.kib_per_unit, 1e-3) for r in ordered],
        color=[palette[r.mechanism] for r in ordered],
    )
    for i, r in enumerate(ordered):
        ax.annotate(f" {_us(r.kib_per_unit)} KiB (n={r.count:,})", (r.kib_per_unit, i), va="center")
    ax.set_yticks(range(len(ordered)), [r.unit for r in ordered])
    ax.set_ylabel("unit")
    ax.set_xscale("log")
    ax.set_xlim(right=max(r.kib_per_unit for r in ordered) * 30)
    ax.set_xlabel("memory per idle unit (KiB, log scale)")
    ax.set_title("What one more idle unit costs in memory")
    ax.grid(axis="x", alpha=0.3)
    return ax


def _noop() -> None:
    pass


def startup_costs(quick: bool = False) -> list[SwitchResult]:
    """Time to create, start and finish one unit that does nothing, per mechanism (µs)."""
    repeats = 8 if quick else 30

    def timed(one: Callable[[], object], inner: int) -> list[float]:
        out = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            for _ in range(inner):
                one()
            out.append((time.perf_counter() - start) / inner)
        return out[1:]

    def process() -> None:
        p = mp.Process(target=_noop)
        p.start()
        p.join()

    def thread() -> None:
        t = threading.Thread(target=_noop)
        t.start()
        t.join()

    async def nothing() -> None:
        pass

    def generator() -> None:
        for _ in _mirror_once():
            pass

    measured = {
        ("process", f"mp.Process ({mp.get_start_method()})"): timed(process, 2),
        ("thread", "threading.Thread"): timed(thread, 50),
        ("coroutine", "asyncio.Task"): run_sync(lambda: _tasks_samples(nothing, repeats, 500)),
        ("generator", "generator"): timed(generator, 5000),
    }
    results = []
    for (mechanism, name), samples in measured.items():
        s = summarize(samples).scaled(1e6)
        results.append(SwitchResult(mechanism, name, s.median, s.p10, s.p90, s.cv, s.n, 1))
    return results


def _mirror_once() -> Generator[None, None, None]:
    yield


async def _time_tasks(make: Callable[[], Coroutine[Any, Any, None]], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        await asyncio.create_task(make())
    return (time.perf_counter() - start) / inner


async def _tasks_samples(
    make: Callable[[], Coroutine[Any, Any, None]], repeats: int, inner: int
) -> list[float]:
    return [await _time_tasks(make, inner) for _ in range(repeats + 1)][1:]
