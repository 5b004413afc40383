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
confirmed publishing loses nothing silently. :func:`measure` times them after a warm-up, in
interleaved rounds; :func:`compare` says which differences held in every round.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange
from aio_pika.exceptions import DeliveryError

from mqlab.patterns._common import unique

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "STRATEGIES",
    "Comparison",
    "ConfirmResult",
    "compare",
    "measure",
    "plot_throughput",
    "publish_batched",
    "publish_one_by_one",
    "publish_streaming",
    "publish_unconfirmed",
    "summarize",
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
    rounds: int = 1,
    warmup: int = 100,
    progress: bool = False,
) -> list[ConfirmResult]:
    """Publish ``messages`` small messages with each strategy into a scratch queue.

    Each strategy first publishes ``warmup`` messages that are not timed (the first publishes
    on a fresh channel pay for imports, allocation and the broker's own warm-up). Then
    ``rounds`` rounds run every strategy once, interleaved, so a burst of load from elsewhere
    on the machine hits all strategies alike. Returns one result per strategy per round.
    """
    names = list(strategies)
    bodies = [f"order {i}".encode() for i in range(messages)]
    steps: list[tuple[str, Sequence[bytes], bool]] = [(n, bodies[:warmup], False) for n in names]
    steps += [(n, bodies, True) for _ in range(rounds) for n in names]
    if warmup <= 0:
        steps = [step for step in steps if step[2]]
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="confirm strategies (warm-up, then rounds)")
    results = []
    for name, batch, timed in steps:
        strategy, confirms = STRATEGIES[name]
        channel = await connection.channel(publisher_confirms=confirms)
        queue = await channel.declare_queue(unique("ch09.confirms"), auto_delete=True)
        try:
            result = await strategy(channel.default_exchange, batch, queue.name)
        finally:
            await queue.delete(if_unused=False, if_empty=False)
            await channel.close()
        if timed:
            results.append(result)
    return results


def summarize(results: Sequence[ConfirmResult], baseline: str = "no confirms") -> pd.DataFrame:
    """Per strategy: median, min and max rate over the rounds, and how it compares.

    ``x <baseline>`` is the ratio of medians; ``rounds faster`` counts the rounds in which the
    strategy beat the baseline of the same round (rounds are interleaved, so they pair up).
    """
    import pandas as pd

    by_name: dict[str, list[float]] = {}
    for r in results:
        by_name.setdefault(r.strategy, []).append(r.rate)
    base = by_name.get(baseline)
    rows = {}
    for name, rates in by_name.items():
        row: dict[str, object] = {
            "rounds": len(rates),
            "median msg/s": statistics.median(rates),
            "min msg/s": min(rates),
            "max msg/s": max(rates),
        }
        if base is not None and name != baseline:
            row[f"x {baseline}"] = statistics.median(rates) / statistics.median(base)
            row["rounds faster"] = sum(a > b for a, b in zip(rates, base, strict=False))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass(frozen=True)
class Comparison:
    """How one publishing strategy did against a baseline, over rounds run side by side."""

    strategy: str
    baseline: str
    ratio: float  # the strategy's median rate / the baseline's median rate
    faster_rounds: int  # rounds in which it beat the baseline of the same round
    rounds: int

    @property
    def steady(self) -> str | None:
        """``"faster"`` or ``"slower"`` if it was so in every round; None if rounds disagree."""
        if self.faster_rounds == self.rounds:
            return "faster"
        return "slower" if self.faster_rounds == 0 else None


def compare(
    results: Sequence[ConfirmResult],
    baseline: str = "no confirms",
    against: Sequence[str] | None = None,
) -> list[Comparison]:
    """Each strategy (``against``, default all) against ``baseline``, from :func:`summarize`.

    A difference *holds* (:attr:`Comparison.steady`) only when the strategy was faster, or
    slower, than the baseline in every round.
    """
    table = summarize(results, baseline)
    return [
        Comparison(
            strategy=str(name),
            baseline=baseline,
            ratio=float(row[f"x {baseline}"]),
            faster_rounds=int(row["rounds faster"]),
            rounds=int(row["rounds"]),
        )
        for name, row in table.iterrows()
        if name != baseline and (against is None or name in against)
    ]


def plot_throughput(results: Sequence[ConfirmResult], broker: str = "") -> Figure:
    """Bar chart of the median messages per second per strategy; whiskers span the rounds."""
    import matplotlib.pyplot as plt

    table = summarize(results)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(table.index)
    medians = table["median msg/s"].to_numpy(dtype=float)
    spread = [medians - table["min msg/s"].to_numpy(float), table["max msg/s"] - medians]
    colours = ["#9e9e9e" if n == "no confirms" else "#1565c0" for n in names]
    rounds = int(table["rounds"].max()) if len(table) else 0
    bars = ax.bar(names, medians, color=colours, yerr=spread if rounds > 1 else None, capsize=4)
    for bar, rate in zip(bars, medians, strict=True):  # at the foot: clear of the whiskers
        ax.text(bar.get_x() + bar.get_width() / 2, 0.03 * max(medians), f"{rate:,.0f}",
                ha="center", va="bottom", color="white", fontsize=9)  # fmt: skip
    ax.set_ylabel("throughput (messages / s)")
    ax.set_xlabel("publishing strategy")
    n = results[0].messages if results else 0
    detail = [broker] if broker else []
    detail += [f"median of {rounds} rounds, whiskers min to max"] if rounds > 1 else []
    title = f"Publisher confirms: {n} small messages per strategy"
    ax.set_title(title + ("\n" + "; ".join(detail) if detail else ""), fontsize=10)
    ax.margins(y=0.15)
    fig.tight_layout()
    return fig
