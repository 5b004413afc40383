"""Publisher confirms (发布确认): the broker acks each message it has taken responsibility for.

On a channel opened with ``publisher_confirms=True`` (aio-pika's default), ``await
exchange.publish(...)`` returns once the broker's ``Basic.Ack`` arrives and raises
``DeliveryError`` on a ``Basic.Nack``. *When* you await decides the throughput:

* **one by one**: await each confirm before the next publish: simplest, one round trip each;
* **batched**: publish a batch, await all its confirms, repeat: a nack names a whole batch
  to republish;
* **streaming** (asynchronous): keep up to ``window`` confirms outstanding and handle each as it
  arrives: fastest, and a nack names exactly one message.

Every strategy returns the messages the broker refused, so the caller can republish them:
confirmed publishing loses nothing silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange
from aio_pika.exceptions import DeliveryError

from mqlab.patterns._common import unique

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "STRATEGIES",
    "ConfirmResult",
    "measure",
    "plot_throughput",
    "publish_batched",
    "publish_one_by_one",
    "publish_streaming",
    "publish_unconfirmed",
]


@dataclass(frozen=True)
class ConfirmResult:
    """One strategy's run: how many messages, how long, and which the broker refused."""

    strategy: str
    messages: int
    seconds: float
    nacked: list[bytes] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        return (
            f"{self.strategy:<12} {self.messages:>6} msgs in {self.seconds:6.3f} s "
            f"= {self.rate:8.0f} msg/s, nacked {len(self.nacked)}"
        )


async def _publish(exchange: AbstractExchange, body: bytes, routing_key: str) -> None:
    await exchange.publish(aio_pika.Message(body), routing_key=routing_key)


async def publish_one_by_one(
    exchange: AbstractExchange, bodies: Sequence[bytes], routing_key: str
) -> ConfirmResult:
    """Await each confirm before publishing the next message."""
    nacked: list[bytes] = []
    started = time.perf_counter()
    for body in bodies:
        try:
            await _publish(exchange, body, routing_key)
        except DeliveryError:
            nacked.append(body)
    return ConfirmResult("one by one", len(bodies), time.perf_counter() - started, nacked)


async def publish_batched(
    exchange: AbstractExchange, bodies: Sequence[bytes], routing_key: str, *, batch: int = 100
) -> ConfirmResult:
    """Publish ``batch`` messages, then await all their confirms, then the next batch."""
    nacked: list[bytes] = []
    started = time.perf_counter()
    for i in range(0, len(bodies), batch):
        chunk = bodies[i : i + batch]
        outcomes = await asyncio.gather(
            *(_publish(exchange, b, routing_key) for b in chunk), return_exceptions=True
        )
        for body, outcome in zip(chunk, outcomes, strict=True):
            if isinstance(outcome, DeliveryError):
                nacked.append(body)
            elif isinstance(outcome, BaseException):
                raise outcome
    return ConfirmResult("batched", len(bodies), time.perf_counter() - started, nacked)


async def publish_streaming(
    exchange: AbstractExchange, bodies: Sequence[bytes], routing_key: str, *, window: int = 256
) -> ConfirmResult:
    """Keep up to ``window`` confirms in flight; handle each confirm as it arrives."""
    nacked: list[bytes] = []
    slots = asyncio.Semaphore(window)

    async def one(body: bytes) -> None:
        try:
            await _publish(exchange, body, routing_key)
        except DeliveryError:
            nacked.append(body)
        finally:
            slots.release()

    started = time.perf_counter()
    in_flight: list[asyncio.Task[None]] = []
    for body in bodies:
        await slots.acquire()  # back-pressure: never more than `window` unconfirmed
        in_flight.append(asyncio.create_task(one(body)))
    await asyncio.gather(*in_flight)
    return ConfirmResult("streaming", len(bodies), time.perf_counter() - started, nacked)


async def publish_unconfirmed(
    exchange: AbstractExchange, bodies: Sequence[bytes], routing_key: str
) -> ConfirmResult:
    """Baseline: a channel without confirms; fast, and blind to what the broker lost."""
    started = time.perf_counter()
    for body in bodies:
        await _publish(exchange, body, routing_key)
    return ConfirmResult("no confirms", len(bodies), time.perf_counter() - started)


Strategy = Callable[[AbstractExchange, Sequence[bytes], str], Awaitable[ConfirmResult]]

#: name -> (strategy, does it need a confirm channel?)
STRATEGIES: dict[str, tuple[Strategy, bool]] = {
    "no confirms": (publish_unconfirmed, False),
    "one by one": (publish_one_by_one, True),
    "batched": (publish_batched, True),
    "streaming": (publish_streaming, True),
}


async def measure(
    connection: AbstractConnection,
    messages: int = 1000,
    strategies: Sequence[str] = tuple(STRATEGIES),
    *,
    progress: bool = False,
) -> list[ConfirmResult]:
    """Publish ``messages`` small messages with each strategy into a scratch queue."""
    results = []
    names = list(strategies)
    if progress:
        from tqdm.auto import tqdm

        names = tqdm(names, desc="confirm strategies")
    bodies = [f"order {i}".encode() for i in range(messages)]
    for name in names:
        strategy, confirms = STRATEGIES[name]
        channel = await connection.channel(publisher_confirms=confirms)
        queue = await channel.declare_queue(unique("ch09.confirms"), auto_delete=True)
        try:
            results.append(await strategy(channel.default_exchange, bodies, queue.name))
        finally:
            await queue.delete(if_unused=False, if_empty=False)
            await channel.close()
    return results


def plot_throughput(results: Sequence[ConfirmResult], broker: str = "") -> Figure:
    """Bar chart of messages per second, one bar per strategy."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = [r.strategy for r in results]
    rates = [r.rate for r in results]
    colours = ["#9e9e9e" if n == "no confirms" else "#1565c0" for n in names]
    bars = ax.bar(names, rates, color=colours)
    ax.bar_label(bars, [f"{r:,.0f}" for r in rates], padding=2)
    ax.set_ylabel("throughput (messages / s)")
    ax.set_xlabel("publishing strategy")
    n = results[0].messages if results else 0
    ax.set_title(
        f"Publisher confirms: {n} small messages each" + (f" ({broker})" if broker else "")
    )
    ax.margins(y=0.15)
    fig.tight_layout()
    return fig
