"""Ping-pongs: one round trip between two processes, threads, tasks or generators.

Each measure hands a market event (:data:`ORDER_BOOK`, a synthetic 10-level order-book tick) to
a partner and waits for it to come back, ``rounds`` times in a row; one sample is the mean time
per round trip (two switches: there and back). Threads, tasks and generators pass a reference;
processes share no memory, so the event is pickled and copied each way — that copy is part of
the price of a process. Every measure returns ``repeats`` samples in seconds; one warm-up run
before them is thrown away.

:func:`pinned` keeps both partners on one CPU (Linux), as lmbench does: the seed's claim is
about switching tasks on one CPU, and on two CPUs every OS-level hand-over becomes bimodal
(about 15 or about 50 µs here), depending on whether the partner wakes on the same core.
:mod:`concurrency_lab.switching` runs these measures side by side; :mod:`~concurrency_lab.handover`
takes the process/thread step apart with them.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from typing import Any

from concurrency_lab._runner import run_sync
from concurrency_lab.stats import seconds_per_call

__all__ = [
    "MECHANISMS",
    "ORDER_BOOK",
    "Samples",
    "asyncio_queue",
    "asyncio_sleep0",
    "generator_send",
    "least_busy_cpu",
    "mirror",
    "pinned",
    "process_bytes",
    "process_pipe",
    "sleep0_on",
    "thread_bytes",
    "thread_condition",
    "thread_event",
    "thread_queue",
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
    samples = seconds_per_call(ping, rounds, repeats)
    helper.join()
    return samples


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
def mirror() -> Generator[Any, Any, None]:
    """A generator that yields back whatever it is sent (the generator partner)."""
    msg = None
    while True:
        msg = yield msg


def generator_send(rounds: int, repeats: int) -> Samples:
    """A caller and a generator ping-pong with ``send()``: no scheduler at all."""
    send = mirror().send
    send(None)
    samples = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(rounds):
            send(ORDER_BOOK)
        samples.append((time.perf_counter() - start) / rounds)
    return samples[1:]
