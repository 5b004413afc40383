"""Simulated exchange: fills only on later events, partial fills on books, fees, reasons."""

from __future__ import annotations

import pickle
from decimal import Decimal as D

import pytest
from event_builders import MIN, T0, book, cancel, fills, kline, statuses

from mqlab.events import (
    Fill,
    Kline,
    Liquidity,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    Trade,
)
from mqlab.venue import Latency, SimulatedExchange, split_symbol


def order(n: int, side: Side, qty: str, price: str | None = None, ts: int = T0 + MIN,
          strategy: str = "s") -> Order:  # fmt: skip
    kind = OrderType.MARKET if price is None else OrderType.LIMIT
    return Order(f"{strategy}-{n}", strategy, "binance", "BTCUSDT", side, kind, D(qty),
                 None if price is None else D(price), ts, ts)  # fmt: skip


@pytest.fixture
def ex() -> SimulatedExchange:
    exchange = SimulatedExchange({"USDT": "10000", "BTC": "1"})
    exchange.on_market(kline(0, "100"))  # bar 0 closes at T0 + 1 min: the strategy decides then
    return exchange


def test_a_market_order_fills_at_the_next_bar_open_never_on_its_own_bar(
    ex: SimulatedExchange,
) -> None:
    (accepted,) = ex.on_order(order(1, Side.BUY, "2"))
    assert accepted.status is OrderStatus.NEW and accepted.id == "s-1.u1"
    out = ex.on_market(kline(1, "101", "110", "90", "105"))
    (fill,) = [e for e in out if isinstance(e, Fill)]
    assert (fill.price, fill.qty, fill.liquidity) == (D("101"), D(2), Liquidity.TAKER)
    assert fill.fee == D("0.202") and fill.fee_asset == "USDT" and fill.id == "s-1.f1"
    assert fill.ts == T0 + MIN and fill.recv_ts == T0 + 2 * MIN  # known when the bar closes
    assert statuses(out) == [OrderStatus.FILLED]
    assert ex.balance("USDT") == D("10000") - D("202") - D("0.202") and ex.balance("BTC") == 3


def test_a_bar_that_opened_before_the_order_was_sent_cannot_fill_it(ex: SimulatedExchange) -> None:
    ex.on_order(order(1, Side.BUY, "1", ts=T0 + MIN + 30_000))  # sent mid-way through bar 1
    assert fills(ex.on_market(kline(1, "101", "110", "90", "105"))) == []
    assert fills(ex.on_market(kline(2, "107"))) == [("s-1", D(1), D("107"), Liquidity.TAKER)]


def test_latency_longer_than_a_bar_pushes_the_fill_later() -> None:
    ex = SimulatedExchange(latency=Latency(order_ms=90_000))
    ex.on_market(kline(0, "100"))
    ex.on_order(order(1, Side.BUY, "1"))  # arrives 1.5 bars after it was sent
    assert fills(ex.on_market(kline(1, "101"))) == []
    assert fills(ex.on_market(kline(2, "102"))) == [("s-1", D(1), D("102"), Liquidity.TAKER)]


def test_latency_jitter_is_deterministic_per_order() -> None:
    model = Latency(order_ms=5, jitter_ms=20)
    delays = [model.delay(f"s-{i}") for i in range(50)]
    assert delays == [model.delay(f"s-{i}") for i in range(50)]
    assert min(delays) >= 5 and max(delays) <= 25 and len(set(delays)) > 5


def test_limit_orders_take_at_the_open_or_make_at_their_price(ex: SimulatedExchange) -> None:
    ex.on_order(order(1, Side.BUY, "1", "102"))  # open 101 is below 102: takes at the open
    ex.on_order(order(2, Side.BUY, "1", "95"))  # low 90 trades through 95: made at 95
    ex.on_order(order(3, Side.SELL, "0.5", "120"))  # high 110: not reached, rests
    out = ex.on_market(kline(1, "101", "110", "90", "105"))
    assert fills(out) == [
        ("s-1", D(1), D("101"), Liquidity.TAKER), ("s-2", D(1), D("95"), Liquidity.MAKER),
    ]  # fmt: skip
    assert [o.id for o in ex.open_orders] == ["s-3"]
    assert ex.free("BTC") == D("2.5")  # 3 held, 0.5 locked by the resting sell
    out = ex.on_market(kline(2, "119", "125", "118", "121"))  # trades through 120
    assert fills(out) == [("s-3", D("0.5"), D("120"), Liquidity.MAKER)]
    assert ex.balance("BTC") == D("2.5") and ex.free("BTC") == D("2.5")


def test_a_resting_limit_fills_at_its_own_price_when_the_market_gaps_through(
    ex: SimulatedExchange,
) -> None:
    ex.on_order(order(1, Side.BUY, "1", "98"))
    assert fills(ex.on_market(kline(1, "100", "101", "99", "100"))) == []
    assert fills(ex.on_market(kline(2, "97", "97", "96", "96"))) == [
        ("s-1", D(1), D("98"), Liquidity.MAKER)
    ]


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (order(1, Side.BUY, "1000"), "insufficient balance: needs 100100 USDT, 10000 free"),
        (order(1, Side.SELL, "1.5"), "insufficient balance: needs 1.5 BTC, 1 free"),
        (order(1, Side.BUY, "1", "100.001"), "bad price 100.001: must be a positive multiple"),
        (order(1, Side.BUY, "1", "-5"), "bad price -5"),
        (order(1, Side.BUY, "0.000001"), "bad quantity 0.000001"),
        (order(1, Side.BUY, "0"), "bad quantity 0"),
    ],
)
def test_rejections_say_why(ex: SimulatedExchange, request_: Order, words: str) -> None:
    (update,) = ex.on_order(request_)
    assert update.status is OrderStatus.REJECTED and words in update.reason
    assert ex.open_orders == [] and ex.free("USDT") == 10_000


def test_more_rejections_unknown_symbol_platform_and_no_price_yet() -> None:
    ex = SimulatedExchange()
    (update,) = ex.on_order(order(1, Side.BUY, "1"))
    assert "no market price for BTCUSDT yet" in update.reason
    weird = Order("s-2", "s", "binance", "BTCXYZ", Side.BUY, OrderType.LIMIT, D(1), D(1), T0, T0)
    assert "unknown symbol 'BTCXYZ'" in ex.on_order(weird)[0].reason
    other = Order("s-3", "s", "kraken", "BTCUSDT", Side.BUY, OrderType.LIMIT, D(1), D(1), T0, T0)
    assert "unknown platform 'kraken'" in ex.on_order(other)[0].reason


def test_cancel_releases_the_lock_and_unknown_or_closed_orders_are_refused(
    ex: SimulatedExchange,
) -> None:
    ex.on_order(order(1, Side.BUY, "10", "90"))
    assert ex.free("USDT") == D("10000") - D("900.9")
    (done,) = ex.on_order(cancel("s-2", "s-1", T0 + MIN))
    assert (done.status, done.reason, done.id) == (OrderStatus.CANCELED, "canceled", "s-1.u2")
    assert ex.free("USDT") == 10_000 and ex.open_orders == []
    again = ex.on_order(cancel("s-3", "s-1", T0 + MIN))
    assert again[0].status is OrderStatus.CANCEL_REJECTED and "already CANCELED" in again[0].reason
    ghost = ex.on_order(cancel("s-4", "s-99", T0 + MIN))
    assert ghost[0].reason == "unknown order"
    ex.on_order(order(5, Side.BUY, "1", "90", strategy="s"))
    theirs = ex.on_order(cancel("t-1", "s-5", T0 + MIN))
    assert theirs[0].reason == "unknown order" and len(ex.open_orders) == 1


def test_an_order_can_fill_before_a_slow_cancel_arrives() -> None:
    ex = SimulatedExchange(latency=Latency(order_ms=90_000))
    ex.on_market(kline(0, "100"))
    ex.on_order(order(1, Side.BUY, "1", "100", ts=T0 - 2 * MIN))  # arrived long ago
    ex.on_market(kline(1, "100.5"))  # rests
    assert ex.on_order(cancel("s-2", "s-1", T0 + 2 * MIN)) == []
    out = ex.on_market(kline(2, "100.5", "101", "99", "100"))  # before the cancel lands: fills
    assert fills(out) == [("s-1", D(1), D("100"), Liquidity.MAKER)]


def test_a_slow_cancel_lands_on_the_first_event_after_it_arrives() -> None:
    ex = SimulatedExchange(latency=Latency(order_ms=30_000))
    ex.on_market(kline(0, "100"))
    ex.on_order(order(1, Side.BUY, "1", "90", ts=T0 - 2 * MIN))
    ex.on_order(cancel("s-2", "s-1", T0 + MIN))
    (update,) = ex.on_market(kline(1, "100"))
    assert update.status is OrderStatus.CANCELED and update.ts == T0 + MIN + 30_000


def test_repeated_orders_and_market_events_are_ignored_and_counted(ex: SimulatedExchange) -> None:
    first = order(1, Side.BUY, "1", "99")
    assert ex.on_order(first) and ex.on_order(first) == []
    ex.on_order(order(2, Side.BUY, "1"))
    snapshot = book([("99.5", "0.2")], [("100", "0.3")], ts=T0 + MIN)
    assert fills(ex.on_market(snapshot)) == [("s-2", D("0.3"), D("100"), Liquidity.TAKER)]
    assert ex.on_market(snapshot) == []  # redelivered: must not take the same 0.3 again
    assert ex.duplicates == 2


def test_market_orders_walk_the_book_with_partial_fills(ex: SimulatedExchange) -> None:
    ex.on_order(order(1, Side.BUY, "1"))
    out = ex.on_market(book([("99", "5")], [("100", "0.3"), ("100.5", "0.4")], T0 + MIN))
    assert fills(out) == [
        ("s-1", D("0.3"), D("100"), Liquidity.TAKER),
        ("s-1", D("0.4"), D("100.5"), Liquidity.TAKER),
    ]
    assert statuses(out) == [OrderStatus.PARTIALLY_FILLED] * 2
    out = ex.on_market(book([("99", "5")], [("101", "2")], T0 + MIN + 1000, seq=2))
    assert fills(out) == [("s-1", D("0.3"), D("101"), Liquidity.TAKER)]
    (last,) = [u for u in out if isinstance(u, OrderUpdate)]
    assert last.status is OrderStatus.FILLED and last.filled_qty == 1
    assert last.avg_price == (D("30") + D("40.2") + D("30.3"))


def test_limit_orders_on_the_book_take_what_crosses_then_rest_then_make(
    ex: SimulatedExchange,
) -> None:
    ex.on_order(order(1, Side.BUY, "1", "100"))
    out = ex.on_market(book([("99", "5")], [("100", "0.25"), ("100.5", "3")], T0 + MIN))
    assert fills(out) == [("s-1", D("0.25"), D("100"), Liquidity.TAKER)]
    trade = Trade("binance", "BTCUSDT", 1, D("99.9"), D("0.5"), Side.SELL, T0 + MIN + 10,
                  T0 + MIN + 10)  # fmt: skip
    assert fills(ex.on_market(trade)) == [("s-1", D("0.5"), D("100"), Liquidity.MAKER)]
    out = ex.on_market(book([("98", "5")], [("99.5", "9")], T0 + MIN + 1000, seq=2))
    assert fills(out) == [("s-1", D("0.25"), D("100"), Liquidity.MAKER)]
    assert ex.open_orders == []


def test_book_snapshots_before_the_order_arrives_do_not_fill() -> None:
    ex = SimulatedExchange(latency=Latency(order_ms=50))
    ex.on_market(book([("99", "1")], [("100", "1")], T0))
    ex.on_order(order(1, Side.BUY, "0.1", ts=T0))
    assert fills(ex.on_market(book([("99", "1")], [("100", "1")], T0 + 40, seq=2))) == []
    assert len(fills(ex.on_market(book([("99", "1")], [("100", "1")], T0 + 60, seq=3)))) == 1


def test_a_fill_the_balance_cannot_pay_for_cancels_the_rest() -> None:
    ex = SimulatedExchange({"USDT": "1000"})
    ex.on_market(kline(0, "100"))
    ex.on_order(order(1, Side.BUY, "9"))  # 900.9 locked at the last price
    out = ex.on_market(kline(1, "150"))  # gapped up: 1351.35 needed
    assert fills(out) == [] and statuses(out) == [OrderStatus.CANCELED]
    assert "insufficient balance at fill" in out[0].reason and ex.free("USDT") == 1000


def test_the_exchange_pickles_mid_run() -> None:
    def play(ex: SimulatedExchange, events: list) -> list:
        return [e for event in events for e in ex.on_market(event)]

    ex = SimulatedExchange()
    ex.on_market(kline(0, "100"))
    ex.on_order(order(1, Side.BUY, "1", "95"))
    copy = pickle.loads(pickle.dumps(ex))
    later = [kline(1, "99"), kline(2, "99", "99", "94", "96")]
    assert play(ex, later) == play(copy, later) and len(play(copy, [])) == 0
    assert ex.balances == copy.balances


def test_split_symbol() -> None:
    assert split_symbol("BTCUSDT") == ("BTC", "USDT")
    assert split_symbol("ETHBTC") == ("ETH", "BTC")
    with pytest.raises(ValueError, match="unknown symbol"):
        split_symbol("USDT")


class RandomTrader:
    """Seeded random market/limit orders and cancels, to stress the books."""

    @staticmethod
    def make(seed: int):  # type: ignore[no-untyped-def]
        import random

        from mqlab.strategy import Strategy

        class Trader(Strategy):
            name = "rnd"

            def __init__(self) -> None:
                super().__init__()
                self.rng = random.Random(seed)

            def on_kline(self, kline: Kline) -> None:
                r = self.rng.random()
                qty = str(self.rng.choice(["0.01", "0.05", "0.2", "3"]))
                off = D(self.rng.randint(-30, 30)) / 10
                if r < 0.3:
                    self.buy(qty, price=None if r < 0.15 else kline.close + off)
                elif r < 0.6:
                    self.sell(qty, price=None if r < 0.45 else kline.close + off)
                elif r < 0.7 and self.open_orders:
                    self.cancel(self.rng.choice(sorted(self.open_orders)))

        return Trader()


@pytest.mark.parametrize("seed", range(6))
def test_random_trading_keeps_exchange_and_portfolio_in_agreement(seed: int) -> None:
    from mqlab.backtest import run_backtest
    from mqlab.market import synthetic_klines

    exchange = SimulatedExchange({"USDT": "5000"}, latency=Latency(order_ms=seed * 20_000))
    result = run_backtest(RandomTrader.make(seed), synthetic_klines(400, seed=seed),
                          cash=5000, exchange=exchange)  # fmt: skip
    p = result.portfolio
    assert exchange.balance("USDT") == p.cash and exchange.balance("BTC") == p.position("BTCUSDT")
    assert exchange.balance("USDT") >= 0 and exchange.balance("BTC") >= 0
    assert exchange.free("USDT") >= 0 and exchange.free("BTC") >= 0
    if not exchange.open_orders:
        assert exchange.free("USDT") == exchange.balance("USDT")
    statuses = {u.status for u in result.updates}
    assert OrderStatus.FILLED in statuses and OrderStatus.REJECTED in statuses
    assert p.equity() - p.initial == p.realised + p.unrealised() - p.fees
