"""The sans-IO matching core: fed directly, no broker, no asyncio."""

from __future__ import annotations

import heapq
from decimal import Decimal
from itertools import chain
from typing import Any

import pytest

from mqlab.backtest import run_backtest
from mqlab.engine import Engine, merge_sources
from mqlab.events import Event, Fill, Kline, MarketEvent, OrderBook, OrderUpdate, Trade
from mqlab.market import synthetic_book_events, synthetic_klines
from mqlab.strategy import Strategy
from mqlab.venue import Latency, SimulatedExchange


class Fidget(Strategy):
    """Reacts to everything: limit orders on data, cancels on NEW, re-orders on fills."""

    name = "fidget"

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def _tick(self, price: Decimal) -> None:
        self.n += 1
        if self.n % 7 == 0:
            self.buy("0.01", price=(price * Decimal("0.999")).quantize(Decimal("0.01")))
        elif self.n % 11 == 0 and self.position() > 0:
            self.sell("0.01")

    def on_kline(self, kline: Kline) -> None:
        self._tick(kline.close)

    def on_orderbook(self, book: OrderBook) -> None:
        self._tick(book.mid)

    def on_trade(self, trade: Trade) -> None:
        self._tick(trade.price)

    def on_order_update(self, update: OrderUpdate) -> None:
        if update.status.value == "NEW" and self.n % 3 == 0:
            self.cancel(update.order_id)

    def on_fill(self, fill: Fill) -> None:
        if self.n % 2:
            self.sell(fill.qty)


def reference_run(strategy: Strategy, events: list[MarketEvent], exchange: SimulatedExchange
                  ) -> list[str]:  # fmt: skip
    """The backtest's loop as it was before the engine existed (one heap of answers and
    market data), kept here as the oracle: the engine must reproduce its order exactly."""
    seen: list[str] = []
    outbox: list[Any] = []
    strategy.bind(outbox.append)
    heap: list[tuple[int, int, int, Event, Any]] = []
    it = iter(events)
    first = next(it)
    heap.append((first.recv_ts, 1, 0, first, it))
    answers = 0

    def send() -> None:
        nonlocal answers
        while outbox:
            request = outbox.pop(0)
            seen.append(f"order {request.id}")
            for answer in exchange.on_order(request):
                answers += 1
                heapq.heappush(heap, (answer.recv_ts, 0, answers, answer, None))

    def deliver(event: Any) -> None:
        seen.append(f"{type(event).__name__} {event.id}")
        strategy.handle(event)
        send()

    while heap:
        t, rank, i, head, source = heapq.heappop(heap)
        if not rank:
            deliver(head)
            continue
        for event in chain((head,), source):
            if event is not head:
                t = event.recv_ts
                if heap and heap[0] < (t, 1, i):
                    heapq.heappush(heap, (t, 1, i, event, source))
                    break
            for answer in exchange.on_market(event):
                deliver(answer)
            deliver(event)
    return seen


def engine_run(strategy: Strategy, events: list[MarketEvent], exchange: SimulatedExchange
               ) -> list[str]:  # fmt: skip
    """A minimal driver of the engine, written from its docstring."""
    seen: list[str] = []
    outbox: list[Any] = []
    strategy.bind(outbox.append)
    engine = Engine(exchange)

    def handle(x: Any) -> list[Any]:
        seen.append(f"{type(x).__name__} {x.id}")
        strategy.handle(x)
        requests = list(outbox)
        outbox.clear()
        seen.extend(f"order {r.id}" for r in requests)
        return requests

    for event in events:
        x = engine.feed(event)
        while x is not None:
            engine.submit(handle(x))
            x = engine.next()
    engine.end()
    while (x := engine.next()) is not None:
        engine.submit(handle(x))
    return seen


@pytest.mark.parametrize("latency", [Latency(), Latency(order_ms=1500, jitter_ms=900)])
@pytest.mark.parametrize("data", ["klines", "books"])
def test_engine_reproduces_the_original_backtest_order(latency: Latency, data: str) -> None:
    events: list[MarketEvent] = (
        list(synthetic_klines(600)) if data == "klines" else list(synthetic_book_events(600))
    )

    def venue() -> SimulatedExchange:
        return SimulatedExchange({"USDT": 10**6}, latency=latency)

    expected = reference_run(Fidget(), events, venue())
    got = engine_run(Fidget(), events, venue())
    assert got == expected
    # It is a busy run: answers interleave with data, and reactions to answers happen.
    kinds = {line.split()[0] for line in got}
    assert {"order", "OrderUpdate", "Fill"} <= kinds


def _buy_on_first_bar(latency: Latency, price: str | None = None
                      ) -> tuple[Engine, list[Kline]]:  # fmt: skip
    """An engine fed the first of 3 bars, on which a strategy bought 0.01 (market or limit)."""
    klines = list(synthetic_klines(3))
    engine = Engine(SimulatedExchange({"USDT": 10**6}, latency=latency))
    assert engine.feed(klines[0]) is klines[0]  # nothing due: the event itself
    strategy = Fidget()
    sent: list[Any] = []
    strategy.bind(sent.append)
    strategy.handle(klines[0])
    strategy.buy("0.01", price=price)
    engine.submit(sent)
    return engine, klines


def test_answers_due_come_before_the_event_then_fills_then_the_event() -> None:
    engine, klines = _buy_on_first_bar(Latency(order_ms=0))
    assert engine.busy("fidget") == 2  # the order works, its NEW update is queued
    first = engine.feed(klines[1])
    assert isinstance(first, OrderUpdate) and first.status.value == "NEW"  # due by now
    fill = engine.next()
    assert isinstance(fill, Fill)  # then on_market(klines[1]) fills at its open
    assert fill.price == klines[1].open
    rest = [engine.next(), engine.next()]
    assert isinstance(rest[0], OrderUpdate) and rest[0].status.value == "FILLED"
    assert rest[1] is klines[1]
    assert engine.next() is None
    assert engine.busy("fidget") == 0


def test_end_drains_answers_still_queued() -> None:
    engine, klines = _buy_on_first_bar(Latency(order_ms=10**9), price="1.00")
    assert engine.feed(klines[1]) is klines[1]  # its answer is due far later
    engine.end()
    update = engine.next()
    assert isinstance(update, OrderUpdate)
    assert engine.next() is None
    with pytest.raises(RuntimeError, match="after end"):
        engine.feed(klines[0])


def test_feeding_while_deliveries_are_pending_is_refused() -> None:
    engine, klines = _buy_on_first_bar(Latency())
    assert isinstance(engine.feed(klines[1]), OrderUpdate)
    with pytest.raises(RuntimeError, match="call next"):
        engine.feed(klines[2])


def test_merge_sources_orders_by_time_and_names_an_unsorted_source() -> None:
    books = list(synthetic_book_events(40))
    klines = list(synthetic_klines(5))
    merged = list(merge_sources(klines, books))
    assert [e.recv_ts for e in merged] == sorted(e.recv_ts for e in merged)
    assert len(merged) == len(books) + len(klines)
    with pytest.raises(ValueError, match="source 1 is not in time order"):
        list(merge_sources(klines, list(reversed(books))))


def test_backtest_is_a_driver_of_the_engine() -> None:
    from mqlab.strategies import SmaCross

    events = list(synthetic_klines(2000))
    result = run_backtest(SmaCross(5, 20, "0.01"), events, cash=10**6)
    expected = reference_run(SmaCross(5, 20, "0.01"), events, SimulatedExchange({"USDT": 10**6}))
    fills = [line.split()[1] for line in expected if line.startswith("Fill")]
    assert [f.id for f in result.fills] == fills
    assert fills
