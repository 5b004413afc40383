"""Sizing and shorts at the venue: quote amounts (quoteOrderQty), lot sizes (whole shares),
and the margin account's leverage cap and liquidation; and the portfolio's view of shorts."""

from __future__ import annotations

import pickle
from decimal import Decimal as D

import pytest

from mqlab.events import (
    Fill,
    Kline,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    decode,
    encode,
)
from mqlab.portfolio import Portfolio
from mqlab.venue import MarginExchange, SimulatedExchange

T0 = 1_704_067_200_000
DAY = 86_400_000


def bar(i: int, o: str, c: str | None = None, symbol: str = "ACME") -> Kline:
    t = T0 + i * DAY
    c = c or o
    hi, lo = max(D(o), D(c)), min(D(o), D(c))
    return Kline("binance", symbol, "1d", t, D(o), hi, lo, D(c), D(5), t + DAY, t + DAY)


def order(n: int, side: Side, qty: str = "0", quote_qty: str | None = None, day: int = 1,
          symbol: str = "ACME") -> Order:  # fmt: skip
    t = T0 + day * DAY
    amount = None if quote_qty is None else D(quote_qty)
    return Order(f"s-{n}", "s", "binance", symbol, side, OrderType.MARKET, D(qty), None, t, t,
                 amount)  # fmt: skip


def fills(events: list) -> list[Fill]:
    return [e for e in events if isinstance(e, Fill)]


def updates(events: list) -> list[OrderUpdate]:
    return [e for e in events if isinstance(e, OrderUpdate)]


def test_a_quote_amount_buys_whole_lots_at_the_fill_price_not_the_signal_price() -> None:
    ex = SimulatedExchange({"USD": "1000"}, quote="USD", lot_size="1", taker_fee="0.001")
    ex.on_market(bar(0, "100"))  # the signal bar closes at 100
    assert updates(ex.on_order(order(1, Side.BUY, quote_qty="950")))[0].status is OrderStatus.NEW
    done = fills(ex.on_market(bar(1, "90")))  # ...and the next bar opens at 90
    assert [(f.qty, f.price) for f in done] == [(D(10), D(90))]  # 950 / 90 = 10.5 -> 10 shares
    assert ex.balance("ACME") == 10 and ex.balance("USD") == D("1000") - D("900") - D("0.9")


def test_fractional_lots_and_a_quote_amount_sell() -> None:
    ex = SimulatedExchange({"USD": "0", "ACME": "5"}, quote="USD", lot_size="0.001")
    ex.on_market(bar(0, "100"))
    ex.on_order(order(1, Side.SELL, quote_qty="250"))
    (fill,) = fills(ex.on_market(bar(1, "300")))
    assert fill.qty == D("0.833") and fill.price == 300  # 250 / 300, rounded down to 0.001


def test_whole_shares_refuse_a_fraction_and_a_tiny_amount_is_canceled_with_a_reason() -> None:
    ex = SimulatedExchange({"USD": "1000"}, quote="USD", lot_size="1")
    ex.on_market(bar(0, "100"))
    refused = updates(ex.on_order(order(1, Side.BUY, qty="0.5")))[0]
    assert refused.status is OrderStatus.REJECTED and "multiple of 1" in refused.reason
    ex.on_order(order(2, Side.BUY, quote_qty="50"))
    (closed,) = updates(ex.on_market(bar(1, "100")))
    assert closed.status is OrderStatus.CANCELED and "less than one lot" in closed.reason


def test_quote_qty_is_for_market_orders_and_travels_on_the_bus() -> None:
    ex = SimulatedExchange({"USD": "1000"}, quote="USD")
    ex.on_market(bar(0, "100"))
    t = T0 + DAY
    limit = Order("s-1", "s", "binance", "ACME", Side.BUY, OrderType.LIMIT, D(0), D(99), t, t, D(5))
    assert "only a market order" in updates(ex.on_order(limit))[0].reason
    sized = order(2, Side.BUY, quote_qty="12.5")
    assert decode(encode(sized)) == sized


def test_symbols_without_a_known_quote_take_the_venues() -> None:
    ex = SimulatedExchange({"USD": "1000"}, quote="USD")
    assert ex.pair("AAPL") == ("AAPL", "USD") and ex.pair("BTCUSD") == ("BTC", "USD")
    assert SimulatedExchange().pair("ETHBTC") == ("ETH", "BTC")


def test_spot_refuses_a_short_sale() -> None:
    ex = SimulatedExchange({"USD": "1000"}, quote="USD")
    ex.on_market(bar(0, "100"))
    refused = updates(ex.on_order(order(1, Side.SELL, qty="1")))[0]
    assert refused.status is OrderStatus.REJECTED and "insufficient balance" in refused.reason


def test_margin_goes_short_and_the_books_agree_with_the_portfolio() -> None:
    ex = MarginExchange({"USD": "1000"}, quote="USD", taker_fee="0.001")
    book = Portfolio(1000, quote="USD")
    ex.on_market(bar(0, "100"))
    ex.on_order(order(1, Side.SELL, qty="5"))
    for f in fills(ex.on_market(bar(1, "100", "80"))):
        book.on_fill(f)
    book.on_market(bar(1, "100", "80"))
    assert ex.position("ACME") == -5 and book.position("ACME") == -5
    assert ex.balance("USD") == D("1000") + D("500") - D("0.5")  # the proceeds are credited
    # short 5 from 100, marked at 80: +100, less the 0.5 fee
    assert ex.equity() == book.equity() == D("1099.5")
    ex.on_order(order(2, Side.BUY, qty="5", day=2))
    for f in fills(ex.on_market(bar(2, "70"))):
        book.on_fill(f)
    assert ex.position("ACME") == 0 and book.realised == D("150")
    assert ex.equity() == book.equity() == D("1000") + D("150") - D("0.5") - D("0.35")


def test_the_leverage_cap_refuses_what_would_exceed_it_but_always_lets_you_close() -> None:
    ex = MarginExchange({"USD": "1000"}, quote="USD", leverage=2)
    ex.on_market(bar(0, "100"))
    too_big = updates(ex.on_order(order(1, Side.SELL, qty="21")))[0]
    assert too_big.status is OrderStatus.REJECTED
    assert "insufficient margin: gross exposure would be 2100.00 USD, above 2 x" in too_big.reason
    assert updates(ex.on_order(order(2, Side.SELL, qty="20")))[0].status is OrderStatus.NEW
    # a working order counts: a second short on top of it would break the cap
    assert updates(ex.on_order(order(3, Side.SELL, qty="1")))[0].status is OrderStatus.REJECTED
    ex.on_market(bar(1, "100", "110"))
    assert ex.position("ACME") == -20
    # closing (and even reversing to the same size) never raises gross exposure
    assert updates(ex.on_order(order(4, Side.BUY, qty="40", day=2)))[0].status is OrderStatus.NEW


def test_a_fill_that_would_break_the_cap_at_its_own_price_is_canceled() -> None:
    ex = MarginExchange({"USD": "1000"}, quote="USD", leverage=1, lot_size=1)
    ex.on_market(bar(0, "100"))
    ex.on_order(order(1, Side.BUY, qty="10"))  # 1000 at the close: just within 1x
    (closed,) = updates(ex.on_market(bar(1, "110")))  # opens at 110: 1100 > 1x equity 1000
    assert closed.status is OrderStatus.CANCELED and "insufficient margin at fill" in closed.reason


def test_liquidation_closes_everything_at_the_mark_with_the_taker_fee() -> None:
    ex = MarginExchange({"USD": "1000"}, quote="USD", leverage=1, maintenance="0.25")
    ex.on_market(bar(0, "100"))
    ex.on_order(order(1, Side.SELL, qty="10"))
    ex.on_market(bar(1, "100", "140"))
    # short 10 from 100 at 140: equity 1000 - 400 - 1 = 599 >= 0.25 x 1400 = 350: no call
    assert ex.position("ACME") == -10 and ex.liquidations == 0
    ex.on_order(order(2, Side.BUY, qty="1", day=2))
    t = T0 + 2 * DAY
    resting = Order("s-3", "s", "binance", "ACME", Side.BUY, OrderType.LIMIT, D(1), D(1), t, t)
    assert updates(ex.on_order(resting))[0].status is OrderStatus.NEW  # far below: it rests
    out = ex.on_market(bar(2, "140", "182"))
    # (the order filled at the open 140 first: short 9; at 182: equity below 0.25 x 1638)
    (liq,) = [f for f in fills(out) if f.order_id.startswith("liquidation")]
    assert (liq.side, liq.qty, liq.price, liq.strategy) == (Side.BUY, D(9), D(182), "s")
    assert liq.fee == D(9) * D(182) * ex.taker_fee and ex.liquidations == 1
    assert ex.position("ACME") == 0 and "liquidated: equity" in updates(out)[-1].reason
    assert not ex.open_orders
    (canceled,) = [u for u in updates(out) if u.order_id == "s-3"]
    assert canceled.status is OrderStatus.CANCELED and canceled.reason.startswith("liquidated")
    assert ex.equity() == ex.balance("USD")
    assert pickle.loads(pickle.dumps(ex)).equity() == ex.equity()


def test_margin_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="leverage must be > 0"):
        MarginExchange({"USD": 1}, leverage=0)
    with pytest.raises(ValueError, match="one currency"):
        MarginExchange({"USD": 1, "EUR": 1})
    ex = MarginExchange({"USDT": "1000"})  # symbols split by their known quote assets
    ex.on_market(bar(0, "100", symbol="BTCEUR"))
    refused = updates(ex.on_order(order(1, Side.BUY, qty="1", symbol="BTCEUR")))[0]
    assert "settles in USDT, not EUR" in refused.reason
