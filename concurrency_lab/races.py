"""Shared state between threads: lost updates, locks (锁), and a deadlock that cannot hang.

A lost update needs two threads to read the same old value before either writes. On CPython
3.11, ``counter.value += 1`` alone loses nothing: the interpreter only switches threads at a
call or a backward jump, never between the load, the add and the store of that one line. Put a
call (or anything that releases the GIL) between the read and the write and updates vanish by
the thousand. The race was always there; the interpreter just hides it for the simplest code,
and a free-threaded build (3.13t) or another Python does not.

The deadlock demos use :class:`TimedLock`, a lock whose ``with`` gives up after a timeout and
raises :class:`DeadlockError` naming who holds what, so that nothing here can hang. A
``TimedLock`` given a :class:`~concurrency_lab.timeline.Timeline` records when each thread
waited for it and held it: :func:`lock_diagram` draws the seed's lock diagram from a real run.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from concurrency_lab.timeline import Timeline

__all__ = [
    "INCREMENTS",
    "Account",
    "BoundedBuffer",
    "Counter",
    "DeadlockError",
    "RaceResult",
    "TimedLock",
    "TransferReport",
    "increment_plain",
    "increment_with_call",
    "increment_with_sleep",
    "lock_cost",
    "lock_diagram",
    "locked",
    "lost_update",
    "plot_threads",
    "produce_consume",
    "race_table",
    "reenter",
    "run_transfers",
    "switch_interval",
    "transfer_naive",
    "transfer_ordered",
]


# -- lost updates ----------------------------------------------------------------------------
class Counter:
    """A shared integer: the simplest shared resource (共享资源)."""

    def __init__(self) -> None:
        self.value = 0


def increment_plain(c: Counter) -> None:
    """``c.value += 1``: a read-modify-write in one line (no switch point inside on 3.11)."""
    c.value += 1


def _work() -> None:
    """A function call: enough to give another thread its turn at the GIL."""


def increment_with_call(c: Counter) -> None:
    """Read, call a function, write: the window a real program has (logging, validation...)."""
    tmp = c.value
    _work()
    c.value = tmp + 1


def increment_with_sleep(c: Counter) -> None:
    """Read, release the GIL (as any IO does), write: every thread reads the same old value."""
    tmp = c.value
    time.sleep(0)
    c.value = tmp + 1


INCREMENTS: dict[str, Callable[[Counter], None]] = {
    "c.value += 1": increment_plain,
    "read; call; write": increment_with_call,
    "read; sleep(0); write": increment_with_sleep,
}


def locked(
    increment: Callable[[Counter], None], lock: AbstractContextManager[Any] | None = None
) -> Callable[[Counter], None]:
    """The same increment, made atomic by holding ``lock`` (a new ``threading.Lock``)."""
    guard = lock if lock is not None else threading.Lock()

    def safe(c: Counter) -> None:
        with guard:
            increment(c)

    safe.__name__ = f"locked_{increment.__name__}"
    return safe


@contextmanager
def switch_interval(seconds: float | None) -> Iterator[None]:
    """Temporarily ask the interpreter to switch threads every ``seconds`` (None: unchanged)."""
    before = sys.getswitchinterval()
    if seconds is not None:
        sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@dataclass(frozen=True)
class RaceResult:
    """What ``threads × per_thread`` increments of one shared counter added up to."""

    increment: str
    threads: int
    per_thread: int
    expected: int
    actual: int

    @property
    def lost(self) -> int:
        return self.expected - self.actual


def lost_update(
    increment: Callable[[Counter], None],
    threads: int = 4,
    per_thread: int = 100_000,
    *,
    interval: float | None = None,
) -> RaceResult:
    """Run ``increment`` ``per_thread`` times in each of ``threads`` threads on one counter."""
    counter = Counter()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()  # all threads begin together, so that they overlap
        for _ in range(per_thread):
            increment(counter)

    pool = [threading.Thread(target=worker, name=f"adder-{i}") for i in range(threads)]
    with switch_interval(interval):
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    name = getattr(increment, "__name__", repr(increment))
    return RaceResult(name, threads, per_thread, threads * per_thread, counter.value)


def race_table(quick: bool = False) -> pd.DataFrame:
    """Lost updates for each increment, at the default and at a 1 µs switch interval."""
    import pandas as pd

    n = 200_000 if quick else 1_000_000
    rows = []
    cases: list[tuple[str, Callable[[Counter], None], int]] = [
        *((k, f, n if "sleep" not in k else n // 100) for k, f in INCREMENTS.items()),
        ("with Lock: read; sleep(0); write", locked(increment_with_sleep), n // 100),
    ]
    for name, fn, per_thread in cases:
        for interval in (None, 1e-6):
            r = lost_update(fn, 4, per_thread, interval=interval)
            rows.append(
                {
                    "increment": name,
                    "switch interval": "default 5 ms" if interval is None else "1 µs",
                    "expected": r.expected,
                    "actual": r.actual,
                    "lost": r.lost,
                    "lost %": 100 * r.lost / r.expected,
                }
            )
    return pd.DataFrame(rows)


def lock_cost(n: int = 200_000, repeats: int = 5) -> tuple[float, float]:
    """Nanoseconds per ``c.value += 1`` without and with an uncontended ``Lock`` around it.

    Both versions go through one wrapper call, so the difference is the ``with lock:`` alone;
    each is the best of ``repeats`` runs of ``n`` calls (the least disturbed by other programs).
    """
    import timeit

    counter, lock = Counter(), threading.Lock()

    def bare(c: Counter) -> None:
        increment_plain(c)

    def guarded(c: Counter) -> None:
        with lock:
            increment_plain(c)

    def best(fn: Callable[[Counter], None]) -> float:
        return min(timeit.repeat(lambda: fn(counter), number=n, repeat=repeats)) / n * 1e9

    return best(bare), best(guarded)


# -- the seed's lock diagram ---------------------------------------------------------------
def lock_diagram(
    threads: int = 3, rounds: int = 3, hold: float = 0.008, own: float = 0.004
) -> tuple[Timeline, Counter]:
    """Threads take turns on one lock around a shared counter; returns the timeline and counter.

    Each thread does ``rounds`` times: its own work (``own`` s, no lock needed), then, holding
    the lock, a read-modify-write of the shared counter that waits ``hold`` s in the middle (a
    slow shared resource, such as a database row). Waiting for and holding the lock are
    recorded, so the chart shows one holder at a time and the others blocked (阻塞).
    """
    from concurrency_lab.timeline import Timeline

    tl, counter = Timeline(), Counter()
    lock = TimedLock("lock", timeout=5.0, timeline=tl)
    gate = threading.Barrier(threads)

    def worker(k: int) -> None:
        gate.wait()
        for _ in range(rounds):
            with tl.span("own work (no lock needed)"):
                time.sleep(own * (1 + k) / threads)  # unequal, so that arrivals spread out
            with lock:
                tmp = counter.value
                time.sleep(hold)
                counter.value = tmp + 1

    pool = [
        threading.Thread(target=worker, args=(k,), name=f"thread-{k + 1}") for k in range(threads)
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return tl, counter


def _pale(color: str, amount: float = 0.6) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return tuple(c + (1 - c) * amount for c in to_rgb(color))  # type: ignore[return-value]


def plot_threads(tl: Timeline, ax: Axes | None = None, title: str = "Who ran when") -> Axes:
    """This module's timelines, one style per meaning: work strong, a wait pale and hatched.

    "holds X" and "waits for X" share X's colour; producers are blue, consumers green.
    """
    locks = sorted({s.label.split()[-1] for s in tl.spans if s.label.startswith("holds ")})
    palette = ["tab:red", "tab:blue", "tab:purple", "tab:brown"]
    colors: dict[str, Any] = {"own work (no lock needed)": "tab:green"}
    hatches: dict[str, str] = {}
    for name, color in zip(locks, palette * len(locks), strict=False):
        colors[f"holds {name}"], colors[f"waits for {name}"] = color, _pale(color)
        hatches[f"waits for {name}"] = "///"
    for work, wait, color in [
        ("produce", "put (waits while full)", "tab:blue"),
        ("consume", "get (waits while empty)", "tab:green"),
    ]:
        colors[work], colors[wait], hatches[wait] = color, _pale(color), "///"
    lanes = sorted(tl.lanes, key=lambda lane: (not lane.startswith("producer"), lane))
    return tl.plot(ax=ax, title=title, lanes=lanes, colors=colors, hatches=hatches, ylabel="thread")


# -- RLock ---------------------------------------------------------------------------------
def reenter(lock: Any, timeout: float = 0.2) -> bool:
    """Take ``lock``, then try to take it again from the same thread, as a helper would.

    True when the inner acquire succeeds (``RLock``); False when it would wait for itself
    forever (``Lock``) — the timeout turns that self-deadlock into a ``False``.
    """
    with lock:
        inner = lock.acquire(timeout=timeout)
        if inner:
            lock.release()
        return bool(inner)


# -- Condition: a bounded buffer ----------------------------------------------------------
class BoundedBuffer:
    """A producer/consumer buffer built on one ``threading.Condition``.

    ``put`` waits while the buffer is full, ``get`` while it is empty. This is, in essence,
    what ``queue.Queue(maxsize)`` already does (it holds two Conditions on one lock).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: list[Any] = []
        self._changed = threading.Condition()

    def put(self, item: Any) -> None:
        with self._changed:
            self._changed.wait_for(lambda: len(self._items) < self.capacity)
            self._items.append(item)
            self._changed.notify_all()

    def get(self) -> Any:
        with self._changed:
            self._changed.wait_for(lambda: len(self._items) > 0)
            item = self._items.pop(0)
            self._changed.notify_all()
            return item

    def qsize(self) -> int:
        with self._changed:
            return len(self._items)


class _Buffer(Protocol):
    def put(self, item: Any) -> None: ...
    def get(self) -> Any: ...


def produce_consume(
    buffer: _Buffer,
    items: int = 20,
    producers: int = 2,
    consumers: int = 2,
    *,
    produce_s: float = 0.002,
    consume_s: float = 0.005,
    timeline: Timeline | None = None,
) -> list[int]:
    """Producers put numbered items, consumers take them; returns what was consumed.

    Each consumer stops at a ``None`` sentinel. Work is ``time.sleep`` (an IO stand-in), so
    consumers slower than producers fill the buffer and the producers then wait in ``put``.
    """
    from contextlib import nullcontext

    consumed: list[int] = []
    span = timeline.span if timeline is not None else (lambda label: nullcontext())

    def produce(start: int) -> None:
        for n in range(start, items, producers):
            with span("produce"):
                time.sleep(produce_s)
            with span("put (waits while full)"):
                buffer.put(n)

    def consume() -> None:
        while True:
            with span("get (waits while empty)"):
                item = buffer.get()
            if item is None:
                return
            with span("consume"):
                time.sleep(consume_s)
            consumed.append(item)  # list.append is atomic in CPython

    workers = [
        threading.Thread(target=produce, args=(i,), name=f"producer-{i}") for i in range(producers)
    ] + [threading.Thread(target=consume, name=f"consumer-{i}") for i in range(consumers)]
    for t in workers:
        t.start()
    for t in workers[:producers]:
        t.join()
    for _ in range(consumers):
        buffer.put(None)
    for t in workers[producers:]:
        t.join()
    return consumed


# -- deadlock ------------------------------------------------------------------------------
class DeadlockError(RuntimeError):
    """A lock was not free within its timeout: most likely a cycle of threads waiting."""


class TimedLock:
    """A named ``threading.Lock`` whose ``with`` gives up after ``timeout`` seconds.

    ``hold`` sleeps right after acquiring, to stand for work done under the lock and to widen
    the window in which two threads can take their first locks. With a timeline, the time
    spent waiting for and holding the lock is recorded.
    """

    def __init__(
        self,
        name: str,
        timeout: float = 1.0,
        hold: float = 0.0,
        timeline: Timeline | None = None,
    ) -> None:
        self.name, self.timeout, self.hold, self.timeline = name, timeout, hold, timeline
        self._lock = threading.Lock()
        self.owner: str | None = None
        self._since = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            self.owner = threading.current_thread().name
        return got

    def release(self) -> None:
        self.owner = None
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> TimedLock:
        from concurrency_lab.timeline import now_ns

        me = threading.current_thread().name
        asked = now_ns()
        got = self.acquire(timeout=self.timeout)
        if self.timeline is not None:
            self.timeline.record(f"waits for {self.name}", asked, now_ns())
        if not got:
            if self.owner == me:
                raise DeadlockError(
                    f"{me} waited {self.timeout:g} s for lock {self.name!r}, which it holds "
                    "itself: a Lock is not re-entrant (take it once, or use an RLock)."
                )
            raise DeadlockError(
                f"{me} waited {self.timeout:g} s for lock {self.name!r}, held by "
                f"{self.owner or 'a thread that was just letting go'}: "
                "a cycle? Take locks in one global order (e.g. sorted by name)."
            )
        self._since = now_ns()
        if self.hold:
            time.sleep(self.hold)
        return self

    def __exit__(self, *exc: object) -> None:
        from concurrency_lab.timeline import now_ns

        if self.timeline is not None:
            self.timeline.record(f"holds {self.name}", self._since, now_ns())
        self.release()

    def __repr__(self) -> str:
        return f"<TimedLock {self.name!r} owner={self.owner}>"


@dataclass
class Account:
    """A bank account whose balance lives "far away": reading it lets other threads run."""

    name: str
    balance: int = 0
    lock: TimedLock = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.lock is None:
            self.lock = TimedLock(self.name)

    def read_balance(self) -> int:
        """Read the balance like a database query: the value is read, then the reply travels
        back while other threads run (the GIL is released)."""
        value = self.balance
        time.sleep(0)
        return value

    def write_balance(self, value: int) -> None:
        self.balance = value


def transfer_naive(src: Account, dst: Account, amount: int) -> None:
    """Lock the source, then the destination: two opposite transfers can deadlock (死锁)."""
    with src.lock, dst.lock:
        src.write_balance(src.read_balance() - amount)
        dst.write_balance(dst.read_balance() + amount)


def transfer_ordered(src: Account, dst: Account, amount: int) -> None:
    """Lock both accounts in one global order (by name), whatever the direction."""
    first, second = sorted((src, dst), key=lambda account: account.name)
    with first.lock, second.lock:
        src.write_balance(src.read_balance() - amount)
        dst.write_balance(dst.read_balance() + amount)


@dataclass
class TransferReport:
    """How a batch of concurrent transfers ended."""

    errors: list[str]
    total_before: int
    total_after: int
    finished: int
    seconds: float

    @property
    def deadlocked(self) -> bool:
        return bool(self.errors)


def run_transfers(
    transfer: Callable[[Account, Account, int], None],
    accounts: Sequence[Account],
    moves: Sequence[tuple[int, int, int]],
    *,
    join_timeout: float = 10.0,
) -> TransferReport:
    """Run each move ``(src index, dst index, amount)`` in its own thread, all at once.

    Every error is collected (a :class:`DeadlockError` in particular). Threads that are still
    stuck after ``join_timeout`` are reported too, and left as daemons: nothing here hangs.
    """
    errors: list[str] = []
    done: queue.SimpleQueue[int] = queue.SimpleQueue()
    total_before = sum(a.balance for a in accounts)
    gate = threading.Barrier(len(moves))

    def move(i: int, src: int, dst: int, amount: int) -> None:
        gate.wait()
        try:
            transfer(accounts[src], accounts[dst], amount)
            done.put(i)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(
            target=move,
            args=(i, *m),
            name=f"transfer {accounts[m[0]].name}→{accounts[m[1]].name}",
            daemon=True,
        )
        for i, m in enumerate(moves)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    deadline = start + join_timeout
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()))
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        errors.append(f"still waiting after {join_timeout:g} s: {', '.join(stuck)}")
    return TransferReport(
        errors,
        total_before,
        sum(a.balance for a in accounts),
        done.qsize(),
        time.perf_counter() - start,
    )
