"""Shared pieces of the patterns: unique names, the delivery log, and one pattern run.

Every pattern demo records *who received which message* in a :class:`DeliveryLog` and what it
declared in a :class:`~mqlab.topology.Topology`, and returns both as a :class:`PatternRun`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue

if TYPE_CHECKING:
    import pandas as pd

    from mqlab.topology import Topology

__all__ = [
    "Delivery",
    "DeliveryLog",
    "PatternRun",
    "consume_into",
    "flush",
    "mark_end",
    "text",
    "unique",
]

_MARKER = b"end-of-run:"


def unique(prefix: str) -> str:
    """``prefix`` plus a short random suffix: names never clash on a shared RabbitMQ."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def text(body: bytes) -> str:
    """A message body for printing (bodies in these chapters are UTF-8 text)."""
    return body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Delivery:
    """One message as one consumer saw it."""

    consumer: str
    body: str
    routing_key: str = ""
    redelivered: bool = False
    note: str = ""
    at: float = field(default_factory=time.perf_counter, compare=False)


class DeliveryLog:
    """Who received which message; awaitable until enough have arrived.

    Deliveries are kept in the order they were recorded and printed in the order of their
    ``at`` time, so a consumer that records an entry only after its work finished (and
    stamps it with the time the message arrived) still prints in its place.
    """

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.flushed: set[str] = set()  # consumers whose end-of-run marker has arrived
        self._changed = asyncio.Event()

    def record(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self._changed.set()

    def record_message(
        self, consumer: str, message: AbstractIncomingMessage, note: str = ""
    ) -> None:
        """Record an aio-pika message as received by ``consumer`` (markers are kept apart)."""
        if message.body.startswith(_MARKER):
            self.flushed.add(consumer)
            self._changed.set()
            return
        delivery = Delivery(
            consumer, text(message.body), message.routing_key or "", bool(message.redelivered), note
        )
        self.record(delivery)

    async def wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``done()`` holds; raise TimeoutError saying ``what`` did not happen."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            self._changed.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._changed.wait(), max(remaining, 0))
            except TimeoutError:
                raise TimeoutError(f"{what} within {timeout} s") from None

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        """Wait until ``count`` deliveries are logged."""
        await self.wait_until(
            lambda: len(self.deliveries) >= count,
            timeout,
            f"expected {count} deliveries, got {len(self.deliveries)} (is every queue consumed?)",
        )

    def by_consumer(self) -> dict[str, list[str]]:
        """``{consumer: [body, ...]}`` in arrival order."""
        out: dict[str, list[str]] = {}
        for d in self.deliveries:
            out.setdefault(d.consumer, []).append(d.body)
        return out

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        columns = ["consumer", "body", "routing_key", "redelivered", "note"]
        rows = [[getattr(d, c) for c in columns] for d in self.deliveries]
        return pd.DataFrame(rows, columns=columns)

    def __len__(self) -> int:
        return len(self.deliveries)

    def __iter__(self) -> Iterator[Delivery]:
        return iter(self.deliveries)

    def __str__(self) -> str:
        if not self.deliveries:
            return "(no deliveries)"
        width = max(len(d.consumer) for d in self.deliveries)
        lines = []
        for d in sorted(self.deliveries, key=lambda d: d.at):
            extra = [f"key={d.routing_key}"] if d.routing_key not in ("", d.body) else []
            extra += ["redelivered"] if d.redelivered else []
            extra += [d.note] if d.note else []
            suffix = f"   [{', '.join(extra)}]" if extra else ""
            lines.append(f"{d.consumer:<{width}} <- {d.body}{suffix}")
        return "\n".join(lines)


async def consume_into(
    queue: AbstractQueue, log: DeliveryLog, consumer: str, *, note: str = ""
) -> str:
    """Consume ``queue`` into ``log`` as ``consumer``, acking each message after recording it."""

    async def on_message(message: AbstractIncomingMessage) -> None:
        log.record_message(consumer, message, note)
        await message.ack()

    return await queue.consume(on_message)


async def mark_end(queue: AbstractQueue, exchange: AbstractExchange, consumer: str) -> None:
    """Bind ``queue`` to an end-of-run marker key of its own (not recorded in the topology)."""
    await queue.bind(exchange, _marker_key(consumer))


async def flush(
    exchange: AbstractExchange, log: DeliveryLog, consumers: Iterable[str], timeout: float = 5.0
) -> None:
    """Publish each consumer's marker last and wait for all: then every earlier message is in.

    A queue delivers in order, so once a consumer has its marker nothing published before it
    is still on the way to that consumer: "did not receive" is proven, not guessed by waiting.
    """
    names = list(consumers)
    for name in names:
        key = _marker_key(name)
        marker = aio_pika.Message(_MARKER + key.encode())
        await exchange.publish(marker, routing_key=key, mandatory=False)
    await log.wait_until(
        lambda: log.flushed.issuperset(names),
        timeout,
        f"end-of-run markers missing for {sorted(set(names) - log.flushed)}",
    )


def _marker_key(consumer: str) -> str:
    return "end-of-run-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in consumer)


@dataclass
class PatternRun:
    """What one pattern demo did: the deliveries, what it declared, and counters."""

    log: DeliveryLog
    topology: Topology
    counts: dict[str, int] = field(default_factory=dict)
    #: anything else a demo wants to show (e.g. the headers of dead-lettered messages)
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        counts = "".join(f"\n{k}: {v}" for k, v in self.counts.items())
        return f"{self.log}{counts}"

    def received(self) -> dict[str, list[str]]:
        return self.log.by_consumer()
