"""Paper trading over the bus, free-running: ``python -m mqlab paper --url URL [--processes]``.

The backtest pipeline (:mod:`mqlab.services`) runs in lockstep: the market service waits for
every step so the bus reproduces the backtest exactly. A live system cannot wait: the market
does not. Here three services share nothing but the broker, and nobody waits for anybody:

* the **live market service** publishes each event on ``market`` the moment the websocket
  source yields it (with the time it arrived, in the ``x-mqlab-arrival-ns`` header);
* the **strategy host** reacts to each market event, fill and order update it is pushed, and
  publishes its orders on ``orders``;
* the **venue service** owns the simulated venue and the portfolio
  (:class:`mqlab.live.bus_venue.BusVenue`): it feeds each market event to the engine when it
  arrives, and each order when *it* arrives, so an order fills against the live prices that
  come after it reached the venue, never earlier ones (no look-ahead); it publishes fills and
  updates on ``execution``, shows the status line, and writes the session file, which
  :func:`mqlab.live.bus_venue.replay_bus_session` replays exactly.

The end of a session travels through the bus too: the market service publishes ``control.end``
after its last event; the strategy host, having handled everything before it, forwards it on
``orders`` after its last order; the venue stops once it has both.

:func:`run_bus_session` runs the three in this process; :mod:`mqlab.live.bus_processes` runs
each in an OS process of its own (``--processes``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from mqlab.bus import Bus, Delivery
from mqlab.events import (
    Cancel,
    Event,
    Fill,
    Kline,
    MarketEvent,
    Order,
    decode,
    encode,
    routing_key,
)
from mqlab.live.binance import Notice
from mqlab.live.bus_venue import BusVenue
from mqlab.live.common import Until, p50, run_until, status_head
from mqlab.live.record import SessionRecorder
from mqlab.live.source import BinanceSource, Reconnect, wall_ms
from mqlab.strategy import Strategy
from mqlab.venue import Latency

__all__ = [
    "END_KEY",
    "HEADER_ARRIVAL",
    "BusPaperResult",
    "LiveMarketService",
    "LiveStrategyHost",
    "LiveVenueService",
    "delete_topology",
    "run_bus_session",
]

#: Routing key of the end-of-session message (on ``market``, then on ``orders``).
END_KEY = "control.end"
NOTICE_KEY = "notice.live"
#: When the market event that caused a message reached the market service (``time.time_ns``).
HEADER_ARRIVAL = "x-mqlab-arrival-ns"
QUEUES = ("venue.market", "venue.orders", "strategy.market", "strategy.execution")


def _arrival_ns(delivery: Delivery) -> int | None:
    value = delivery.headers.get(HEADER_ARRIVAL)
    return int(value) if value is not None else None


class LiveMarketService:
    """Publish a live source's events on ``market`` as they arrive; ``control.end`` last."""

    def __init__(self, url: str, prefix: str, source: BinanceSource) -> None:
        self.url, self.prefix, self.source = url, prefix, source
        self.published = self.bars = 0
        self._notices: list[str] = []
        self._task: asyncio.Task[None] | None = None
        source.on_notice = self._on_notice

    def _on_notice(self, notice: Notice | Reconnect) -> None:
        self._notices.append(str(notice))  # published with the next event (this is sync)

    def stop(self) -> None:
        """Stop after the event in hand (Ctrl-C); the end message still goes out."""
        self.source.close()
        if self._task is not None:
            self._task.cancel()

    async def _flush_notices(self, bus: Bus) -> None:
        while self._notices:
            text = self._notices.pop(0)
            await bus.publish("market", NOTICE_KEY, text.encode(), message_id=uuid.uuid4().hex)

    async def _publish_all(self, bus: Bus, until: Until) -> None:
        async for event in self.source:
            arrival = time.time_ns()
            await self._flush_notices(bus)
            await bus.publish("market", routing_key(event), encode(event), message_id=event.id,
                              headers={HEADER_ARRIVAL: arrival})  # fmt: skip
            self.published += 1
            if isinstance(event, Kline):
                self.bars += 1
            if until.reached(self.bars):
                return

    async def run(
        self,
        *,
        max_bars: int | None = None,
        seconds: float | None = None,
        stop_when: Callable[[], bool] | None = None,
        wait: float = 60.0,
    ) -> None:
        """Publish until ``max_bars`` bars, ``seconds``, ``stop_when()`` (polled too, for a
        stream that went quiet) or :meth:`stop`; then publish the end message."""
        until = Until.after(max_bars, seconds, stop_when)
        async with Bus(self.url, prefix=self.prefix) as bus:
            await bus.wait_for_consumers(QUEUES, timeout=wait)
            self._task = asyncio.ensure_future(self._publish_all(bus, until))
            try:
                await run_until(self._task, until, self.stop)
            finally:
                self.source.close()
                await self._flush_notices(bus)
                await bus.publish("market", END_KEY, b"{}", message_id=f"end-{self.prefix}")


class LiveStrategyHost:
    """Run one strategy on what the bus pushes it; publish its orders as it makes them."""

    def __init__(self, url: str, prefix: str, strategy: Strategy) -> None:
        self.url, self.prefix, self.strategy = url, prefix, strategy
        self.orders = 0
        self.done = asyncio.Event()
        self._outbox: list[Order | Cancel] = []
        strategy.bind(self._outbox.append)

    async def _handle(self, bus: Bus, delivery: Delivery) -> None:
        """Hand the strategy one event; publish the orders it made, stamped with the arrival
        of the market event behind them."""
        self.strategy.handle(decode(delivery.body))
        outbox = list(self._outbox)  # the strategy appends to self._outbox: keep that list
        self._outbox.clear()
        arrival = _arrival_ns(delivery)
        headers = {} if arrival is None else {HEADER_ARRIVAL: arrival}
        for request in outbox:
            await bus.publish("orders", routing_key(request), encode(request),
                              message_id=request.id, headers=headers)  # fmt: skip
            self.orders += 1

    async def run(self) -> None:
        async with Bus(self.url, prefix=self.prefix) as bus:

            async def on_market(delivery: Delivery) -> None:
                if delivery.routing_key == NOTICE_KEY:
                    return
                if delivery.routing_key == END_KEY:
                    await bus.publish("orders", END_KEY, b"{}", message_id=f"end-{self.prefix}")
                    self.done.set()
                    return
                await self._handle(bus, delivery)

            async def on_execution(delivery: Delivery) -> None:
                await self._handle(bus, delivery)

            await bus.subscribe("strategy.market", [("market", "#")], on_market)
            await bus.subscribe("strategy.execution", [("execution", "#")], on_execution)
            await self.done.wait()


@dataclass
class BusPaperResult:
    """What a bus paper session did, as the venue counted it."""

    summary: dict[str, Any]
    equity_curve: Any  # pandas Series of equity (USDT) after each market event
    fills: list[Fill]
    latencies_ms: list[float]  # event arrival at the market service → order at the venue
    notices: list[str]
    record: Path


class LiveVenueService:
    """The simulated venue and the portfolio, fed as market events and orders arrive."""

    def __init__(
        self,
        url: str,
        prefix: str,
        meta: dict[str, Any],
        record: str | Path,
        *,
        status: Callable[[str], None] | None = None,
        status_every: float = 0.5,
    ) -> None:
        self.url, self.prefix, self.meta = url, prefix, meta
        self.venue = BusVenue(meta)
        self.recorder = SessionRecorder(record, {**meta, "mode": "bus"})
        self.record = Path(record)
        self.status, self.status_every = status, status_every
        self.notices: list[str] = []
        self.latencies_ms: list[float] = []
        self.bars = 0
        self.last_price: Decimal | None = None
        self.done = asyncio.Event()
        self._ends = 0
        self._last_status = 0.0

    def status_line(self) -> str:
        v = self.venue
        head = status_head(self.meta["symbol"], self.last_price, v.portfolio, len(v.orders),
                           len(v.fills), self.bars)  # fmt: skip
        median = p50(self.latencies_ms)
        shown = "-" if median is None else f"{median:.1f} ms"
        return f"{head}  event→order p50 {shown} (over the bus)"

    async def _publish(self, bus: Bus, answers: list[Event]) -> None:
        for x in answers:
            await bus.publish("execution", routing_key(x), encode(x), message_id=x.id)

    def _notice(self, text: str) -> None:
        self.notices.append(text)
        self.recorder.notice(text, wall_ms())
        # The source logged a malformed frame already, in the market's process.
        if self.status is not None and not text.startswith("malformed frame"):
            self.status(f"\n{text}\n")

    async def _market(self, bus: Bus, delivery: Delivery) -> None:
        event = decode(delivery.body)
        assert isinstance(event, MarketEvent)
        self.recorder.market(event, wall_ms())
        answers = self.venue.market(event)
        if isinstance(event, Kline):
            self.bars += 1
            self.last_price = event.close
        await self._publish(bus, answers)
        now = time.monotonic()
        if self.status is not None and now - self._last_status >= self.status_every:
            self._last_status = now
            self.status("\r" + self.status_line())

    def _order(self, delivery: Delivery) -> None:
        request = decode(delivery.body)
        assert isinstance(request, Order | Cancel)
        sent = _arrival_ns(delivery)
        if sent is not None:
            self.latencies_ms.append((time.time_ns() - sent) / 1e6)
        # Its venue time: now, but never before the time it was sent at plus the configured
        # latency (clocks of two machines may disagree a little).
        base = request.ts + Latency.delay(self.venue.latency, request.id)
        arrival = max(base, wall_ms())
        self.recorder.order(request, arrival)
        self.venue.order(request, arrival)

    async def run(self) -> BusPaperResult:
        async with Bus(self.url, prefix=self.prefix) as bus:

            async def on_market(delivery: Delivery) -> None:
                if delivery.routing_key == NOTICE_KEY:
                    self._notice(delivery.body.decode())
                elif delivery.routing_key == END_KEY:
                    await self._end(bus)
                else:
                    await self._market(bus, delivery)

            async def on_order(delivery: Delivery) -> None:
                if delivery.routing_key == END_KEY:
                    await self._end(bus)
                else:
                    self._order(delivery)

            await bus.subscribe("venue.market", [("market", "#")], on_market)
            await bus.subscribe("venue.orders", [("orders", "#")], on_order)
            await self.done.wait()
        v = self.venue
        return BusPaperResult(v.summary(), v.portfolio.equity_curve(), v.fills,
                              self.latencies_ms, self.notices, self.record)  # fmt: skip

    async def _end(self, bus: Bus) -> None:
        self._ends += 1
        if self._ends < 2:  # the market's end, then the strategy host's after its last order
            return
        await self._publish(bus, self.venue.finish())
        self.recorder.close(self.venue.summary(), wall_ms())
        self.done.set()


# --- the three in one process ------------------------------------------------------------------


async def run_bus_session(
    url: str,
    strategy: Strategy,
    source: BinanceSource,
    meta: dict[str, Any],
    record: str | Path,
    *,
    prefix: str | None = None,
    max_bars: int | None = None,
    seconds: float | None = None,
    status: Callable[[str], None] | None = None,
    on_market: Callable[[LiveMarketService], None] | None = None,
    stop_when: Callable[[], bool] | None = None,
) -> BusPaperResult:
    """The three services in this process, on the broker at ``url``; their queues and
    exchanges (``prefix``, unique by default) are deleted at the end."""
    prefix = prefix or f"mqlab-paper-{uuid.uuid4().hex[:8]}"
    venue = LiveVenueService(url, prefix, meta, record, status=status)
    host = LiveStrategyHost(url, prefix, strategy)
    market = LiveMarketService(url, prefix, source)
    if on_market is not None:
        on_market(market)  # e.g. to install a Ctrl-C handler that calls market.stop()
    venue_task = asyncio.ensure_future(venue.run())
    host_task = asyncio.ensure_future(host.run())
    try:
        await market.run(max_bars=max_bars, seconds=seconds, stop_when=stop_when)
        result = await venue_task
        await host_task
    finally:
        venue_task.cancel()
        host_task.cancel()
        await delete_topology(url, prefix)
    return result


async def delete_topology(url: str, prefix: str) -> None:
    """Delete a session's queues and exchanges (declared first, so the bus knows them)."""
    async with Bus(url, prefix=prefix) as bus:
        for name in ("market", "orders", "execution"):
            await bus.declare_exchange(name)
        for suffix in QUEUES:
            await bus.declare_queue(suffix, [])
        await bus.delete()
