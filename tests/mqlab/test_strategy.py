"""Strategy: one event at a time in, orders out through an injected sink, deterministic ids."""

from __future__ import annotations

import pickle
from decimal import Decimal as D

import pytest
from event_builders import T0, book, fill, kline, update

from mqlab.events import Cancel, Kline, Order, OrderBook, OrderStatus, OrderType, Side
from mqlab.market import synthetic_book_events, synthetic_klines
from mqlab.strategies import STRATEGIES, BookImbalance, SmaCross, make_strategy
from mqlab.strategy import NotBoundError, Strategy


def bar(i: int, close: str, symbol: str = "BTCUSDT") -> Kline:
    """A flat bar, received 7 ms after it closes: strategies must stamp orders with recv_ts."""
    return kline(i, close, symbol=symbol, volume="1", recv_delay=7)


class Recorder(Strategy):
    name = "rec"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def on_kline(self, kline: Kline) -> None:
        self.seen.append(kline.id)
        if len(self.seen) == 1:
            self.buy("0.5")
        elif len(self.seen) == 2:
            self.sell(1, price="43000.5")
            self.cancel("rec-2")


def run(strategy: Strategy, events: list) -> list[Order | Cancel]:
    sent: list[Order | Cancel] = []
    strategy.bind(sent.append)
    for event in events:
        strategy.handle(event)
    return sent


def test_orders_leave_through_the_sink_with_deterministic_ids_and_times() -> None:
    sent = run(Recorder(), [bar(0, "100"), bar(1, "101"), bar(2, "102")])
    assert [r.id for r in sent] == ["rec-1", "rec-2", "rec-3"]
    buy, sell, cancel = sent
    assert isinstance(buy, Order) and buy.type is OrderType.MARKET and buy.price is None
    assert buy.qty == D("0.5") and buy.ts == buy.recv_ts == bar(0, "1").recv_ts
    assert isinstance(sell, Order) and sell.type is OrderType.LIMIT and sell.side is Side.SELL
    assert sell.price == D("43000.5") and sell.symbol == "BTCUSDT"
    assert isinstance(cancel, Cancel) and cancel.order_id == "rec-2"


def test_a_strategy_must_be_bound_before_it_trades() -> None:
    with pytest.raises(NotBoundError, match=r"strategy.bind\(send\)"):
        Recorder().handle(bar(0, "100"))


def test_floats_are_refused_for_money() -> None:
    strategy = Recorder().bind(lambda order: None)
    strategy.handle(bar(5, "1"))  # buys "0.5": fine
    with pytest.raises(TypeError, match=r"Decimal\('0.1'\)"):
        strategy.buy(0.1)


def test_positions_and_open_orders_follow_fills_and_updates() -> None:
    strategy = Recorder()
    run(strategy, [bar(0, "100")])
    assert set(strategy.open_orders) == {"rec-1"}
    strategy.handle(fill("rec-1", Side.BUY, "0.2", "100", seq=1))
    strategy.handle(fill("rec-1", Side.BUY, "0.3", "100", seq=2))
    assert strategy.position("BTCUSDT") == D("0.5")
    strategy.handle(update("rec-1", OrderStatus.FILLED, "0.5", "100", seq=3))
    assert strategy.open_orders == {} and strategy.now == T0


def test_unknown_event_types_are_refused() -> None:
    with pytest.raises(TypeError, match="does not handle Order"):
        Recorder().handle(Order("x-1", "x", "binance", "BTCUSDT", Side.BUY, OrderType.MARKET,
                                D(1), None, T0, T0))  # fmt: skip


def test_bad_names_are_refused() -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        Strategy(name="my.strategy")


def sma_reference(closes: list[D], fast: int, slow: int) -> list[tuple[int, Side]]:
    """Brute force: recompute both averages at every bar, trade on each change of sign."""
    out, long = [], False
    for i in range(slow - 1, len(closes)):
        above = sum(closes[i - fast + 1 : i + 1]) / fast > sum(closes[i - slow + 1 : i + 1]) / slow
        if above != long:
            long = above
            out.append((i, Side.BUY if above else Side.SELL))
    return out


def test_sma_cross_matches_a_brute_force_reference() -> None:
    klines = synthetic_klines(1500, seed=4)
    strategy = SmaCross(fast=5, slow=20)
    sent = run(strategy, klines)
    index = {k.recv_ts: i for i, k in enumerate(klines)}
    got = [(index[o.ts], o.side) for o in sent]
    assert got == sma_reference([k.close for k in klines], 5, 20) and len(got) > 20


def test_sma_cross_treats_an_exact_tie_as_not_above() -> None:
    # Both averages are exactly 0.2 on the last bar; pandas' float rolling means say
    # 0.20000000000000004 > 0.19999999999999998 and would buy.
    closes = ["0.1", "0.2", "0.3", "0.1", "0.1", "0.4"]
    assert run(SmaCross(fast=3, slow=6, qty="1"), [bar(i, c) for i, c in enumerate(closes)]) == []
    closes[-1] = "0.41"
    sent = run(SmaCross(fast=3, slow=6, qty="1"), [bar(i, c) for i, c in enumerate(closes)])
    assert [o.side for o in sent] == [Side.BUY]


def test_sma_cross_ignores_other_symbols() -> None:
    strategy = SmaCross(fast=1, slow=2, symbol="ETHUSDT")
    assert run(strategy, [bar(0, "1"), bar(1, "2")]) == []


def test_same_events_same_orders_and_a_pickled_strategy_resumes() -> None:
    klines = synthetic_klines(800, seed=6)
    whole = run(SmaCross(fast=4, slow=12), klines)
    first = SmaCross(fast=4, slow=12)
    head = run(first, klines[:400])
    resumed = pickle.loads(pickle.dumps(first))
    tail = run(resumed, klines[400:])
    assert head + tail == whole and len(whole) > 10


def top(bid_size: str, ask_size: str, seq: int) -> OrderBook:
    """A book of one level a side: bid 100, ask 101."""
    return book([("100", bid_size)], [("101", ask_size)], T0 + seq, seq)


def test_book_imbalance_buys_on_heavy_bids_and_sells_when_they_fade() -> None:
    sent = run(BookImbalance(depth=1, enter="0.7", exit="0.5", qty="2"),
               [top("9", "1", 1), top("9", "1", 2), top("4", "6", 3)])  # fmt: skip
    assert [(o.side, o.qty, o.type) for o in sent] == [
        (Side.BUY, D(2), OrderType.MARKET), (Side.SELL, D(2), OrderType.MARKET),
    ]  # fmt: skip


def test_book_imbalance_trades_on_synthetic_books() -> None:
    sent = run(BookImbalance(), synthetic_book_events(600, seed=1))
    assert len(sent) > 4


def test_registry_builds_by_name_and_lists_names_on_error() -> None:
    assert set(STRATEGIES) == {"sma_cross", "imbalance"}
    assert make_strategy("sma_cross", fast=3, slow=7).slow == 7
    with pytest.raises(ValueError, match="sma_cross, imbalance"):
        make_strategy("golden_goose")
