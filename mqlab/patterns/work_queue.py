"""Work queue (工作队列模式): competing workers share one task queue.

Three rules make it reliable and fair, and :class:`Worker` follows all three:

* **Ack after the work**, never before (aioquant acked first, so a crash lost the task). A task
  whose worker dies before acking is redelivered, marked ``redelivered``, to another worker.
* **Fair dispatch**: ``prefetch=1`` (``basic.qos``) lets the broker give a worker its next task
  only once it has acked the last. Without it the broker deals tasks out round-robin up front,
  so one worker can get all the slow ones while the other idles.
* **A failing task is rejected without requeue**, so it goes to the queue's dead-letter
  exchange (see :mod:`mqlab.patterns.dead_letter`) instead of looping forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from mqlab.patterns._common import Delivery, DeliveryLog, PatternRun, text, unique
from mqlab.topology import DEFAULT_EXCHANGE, TopologyRecorder

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "TaskRecord",
    "Work",
    "Worker",
    "crash_demo",
    "distribute",
    "plot_distribution",
    "publish_tasks",
    "simulated_work",
    "summarize",
    "task_body",
]

log = logging.getLogger(__name__)

#: What a worker does with one task body; raising means the task failed.
Work = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class TaskRecord:
    """One attempt at one task: who, when (seconds since the run began) and how it ended."""

    task: str
    worker: str
    start: float
    end: float
    redelivered: bool
    outcome: str  # "done", "failed" or "died"


def task_body(index: int, seconds: float) -> bytes:
    """The body of a simulated task: its name and how long it takes."""
    return f"task-{index:02d} {seconds:.3f}".encode()


async def simulated_work(body: bytes) -> None:
    """Sleep for the duration written in a :func:`task_body` (stands in for real work)."""
    await asyncio.sleep(float(body.split()[1]))


class Worker:
    """A consumer that does one task at a time on its own channel and acks after the work."""

    def __init__(
        self,
        name: str,
        connection: AbstractConnection,
        queue_name: str,
        work: Work = simulated_work,
        *,
        prefetch: int | None = 1,
        records: list[TaskRecord] | None = None,
        t0: float | None = None,
    ) -> None:
        self.name, self.connection, self.queue_name, self.work = name, connection, queue_name, work
        self.prefetch = prefetch
        self.records = [] if records is None else records
        self.t0 = time.perf_counter() if t0 is None else t0
        self.channel: AbstractChannel | None = None
        self._one_at_a_time = asyncio.Lock()  # aio-pika runs callbacks concurrently
        self._busy: set[asyncio.Task[object]] = set()
        self._consumer_tag: str | None = None

    async def start(self) -> None:
        """Open a channel, set prefetch (``None``/0 = unlimited) and start consuming."""
        self.channel = await self.connection.channel()
        if self.prefetch:
            await self.channel.set_qos(prefetch_count=self.prefetch)
        queue = await self.channel.get_queue(self.queue_name, ensure=False)
        self._consumer_tag = await queue.consume(self._on_message)

    async def stop(self) -> None:
        """Stop consuming and close the channel; unacked tasks go back to the queue."""
        if self.channel is not None and not self.channel.is_closed:
            await self.channel.close()

    async def die(self) -> None:
        """Simulate a crash: abandon the task in hand (no ack) and drop the channel."""
        for task in list(self._busy):
            task.cancel()
        await self.stop()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        current = asyncio.current_task()
        assert current is not None
        self._busy.add(current)
        try:
            async with self._one_at_a_time:
                await self._handle(message)
        finally:
            self._busy.discard(current)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        start = time.perf_counter() - self.t0
        name, redelivered = text(message.body).split()[0], bool(message.redelivered)

        def record(outcome: str) -> None:
            end = time.perf_counter() - self.t0
            self.records.append(TaskRecord(name, self.name, start, end, redelivered, outcome))

        try:
            await self.work(message.body)
        except asyncio.CancelledError:
            record("died")  # no ack: the broker redelivers once the channel is gone
            raise
        except Exception:
            log.exception(
                "%s: %s failed; rejecting it to the dead-letter exchange", self.name, name
            )
            record("failed")
            await message.reject(requeue=False)
        else:
            await message.ack()  # only now may the broker forget the task
            record("done")


async def publish_tasks(channel: AbstractChannel, queue_name: str, bodies: Sequence[bytes]) -> None:
    """Publish persistent tasks to ``queue_name`` through the default exchange, confirmed."""
    for body in bodies:
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await channel.default_exchange.publish(message, routing_key=queue_name)


async def _wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"work queue: {what} within {timeout} s")
        await asyncio.sleep(0.01)


async def distribute(
    connection: AbstractConnection,
    durations: Sequence[float],
    *,
    workers: int = 2,
    prefetch: int | None = 1,
    timeout: float = 30.0,
) -> list[TaskRecord]:
    """Run tasks of the given durations through ``workers`` workers; return who did what."""
    records: list[TaskRecord] = []
    async with TopologyRecorder(connection) as rec:
        queue = await rec.queue(unique("ch09.tasks"), durable=True)
        t0 = time.perf_counter()
        crew = [
            Worker(
                f"worker-{i + 1}", connection, queue.name, prefetch=prefetch, records=records, t0=t0
            )
            for i in range(workers)
        ]
        for worker in crew:
            await worker.start()  # all consume before the first task, so dispatch is comparable
        await publish_tasks(
            rec.channel, queue.name, [task_body(i, d) for i, d in enumerate(durations)]
        )
        try:
            await _wait_until(lambda: len(records) >= len(durations), timeout, "tasks not all done")
        finally:
            for worker in crew:
                await worker.stop()
    return records


async def crash_demo(connection: AbstractConnection, seconds: float = 0.2) -> PatternRun:
    """worker-1 dies mid-task; its unacked task is redelivered to worker-2."""
    records: list[TaskRecord] = []
    async with TopologyRecorder(connection) as rec:
        queue = await rec.queue(unique("ch09.tasks"), durable=True)
        rec.producer("producer", DEFAULT_EXCHANGE, queue.name)
        t0 = time.perf_counter()
        first = Worker("worker-1", connection, queue.name, records=records, t0=t0)
        second = Worker("worker-2", connection, queue.name, records=records, t0=t0)
        for worker in (first, second):
            rec.consumer(worker.name, queue)
        await first.start()  # alone at first, so it surely takes task-00
        await publish_tasks(rec.channel, queue.name, [task_body(0, seconds)])
        await _wait_until(lambda: bool(first._busy), 5, "worker-1 never started task-00")
        await second.start()
        await publish_tasks(rec.channel, queue.name, [task_body(1, seconds / 4)])
        await first.die()
        try:
            await _wait_until(
                lambda: sum(r.outcome == "done" for r in records) >= 2, 10, "tasks not redone"
            )
        finally:
            await second.stop()
    deliveries = DeliveryLog()
    for r in sorted(records, key=lambda r: r.start):
        deliveries.record(Delivery(r.worker, r.task, "", r.redelivered, r.outcome))
    return PatternRun(deliveries, rec.topology)


def summarize(runs: Mapping[str, Sequence[TaskRecord]]) -> pd.DataFrame:
    """Per run: when the last task finished and how long each worker was busy (seconds)."""
    import pandas as pd

    rows = {}
    for label, records in runs.items():
        row = {"all done after (s)": max(r.end for r in records)}
        for worker in sorted({r.worker for r in records}):
            row[f"{worker} busy (s)"] = sum(r.end - r.start for r in records if r.worker == worker)
        rows[label] = row
    return pd.DataFrame(rows).T.round(2)


def plot_distribution(runs: Mapping[str, Sequence[TaskRecord]]) -> Figure:
    """One Gantt chart per run: which worker did which task, when."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 1.7 * len(runs) + 1.2), sharex=True)
    axes = [axes] if len(runs) == 1 else list(axes)
    longest = max(r.end - r.start for rs in runs.values() for r in rs)
    for ax, (label, records) in zip(axes, runs.items(), strict=True):
        names = sorted({r.worker for r in records})
        for r in records:
            y = names.index(r.worker)
            heavy = (r.end - r.start) > longest / 2
            ax.barh(y, r.end - r.start, left=r.start, height=0.6, edgecolor="black",
                    color="#ef6c00" if heavy else "#90caf9")  # fmt: skip
            ax.text(r.start + (r.end - r.start) / 2, y, r.task.removeprefix("task-"),
                    ha="center", va="center", fontsize=7)  # fmt: skip
        makespan = max(r.end for r in records)
        busy = {n: sum(r.end - r.start for r in records if r.worker == n) for n in names}
        shares = ", ".join(f"{n} busy {b:.2f} s" for n, b in busy.items())
        ax.set_title(f"{label}: all done after {makespan:.2f} s ({shares})", fontsize=10)
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()
    axes[-1].set_xlabel("time since the first task was published (s)")
    fig.suptitle("Work queue dispatch (synthetic tasks: orange = slow, blue = fast)")
    fig.tight_layout()
    return fig
