"""Portfolio: exact books from fills, marked from prices; a repeated fill is never applied twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqlab.events import Fill, Kline, Liquidity, OrderBook, Side, Trade
from mqlab.portfolio import Portfolio, max_drawdown, sharpe_ratio

T0 = 1_704_067_200_000


def fill(n: int, side: Side, qty: str, price: str, fee: str = "0", symbol: str = "BTCUSDT") -> Fill:
    return Fill(f"s-{n}", "s", "binance", symbol, side, D(qty), D(price), D(fee), "USDT",
                Liquidity.TAKER, 1, T0 + n, T0 + n)  # fmt: skip


def mark(price: str, i: int = 0, symbol: str = "BTCUSDT") -> Kline:
    p = D(price)
    t = T0 + i * 60_000
    return Kline("binance", symbol, "1m", t, p, p, p, p, D(1), t + 60_000, t + 60_000)


def balanced(p: Portfolio) -> bool:
    return p.equity() - p.initial == p.realised + p.unrealised() - p.fees


def test_a_round_trip_books_cash_pnl_fees_and_turnover() -> None:
    p = Portfolio(1000)
    p.on_fill(fill(1, Side.BUY, "2", "100", fee="0.2"))
    assert p.cash == D("799.8") and p.position("BTCUSDT") == 2
    p.on_market(mark("110"))
    assert p.unrealised() == 20 and p.equity() == D("1019.8") and balanced(p)
    p.on_fill(fill(2, Side.SELL, "2", "105", fee="0.21"))
    assert (p.realised, p.fees, p.turnover) == (D(10), D("0.41"), D(410))
    assert p.cash == D("1009.59") and p.positions == {} and balanced(p)


def test_fifo_lots_keep_realised_pnl_exact() -> None:
    p = Portfolio(10_000)
    for n, price in enumerate(["100", "101", "103"], start=1):
        p.on_fill(fill(n, Side.BUY, "1", price))
    p.on_fill(fill(4, Side.SELL, "1.5", "102"))  # closes lot 100 and half of lot 101
    assert p.realised == D("2") + D("0.5")
    p.on_market(mark("104"))
    assert p.unrealised() == D("1.5") + D("1") and balanced(p)


def test_shorts_and_flips_are_booked_too() -> None:
    p = Portfolio(1000)
    p.on_fill(fill(1, Side.SELL, "1", "100"))
    p.on_fill(fill(2, Side.BUY, "3", "90"))  # covers at a 10 gain, then long 2 at 90
    assert p.realised == 10 and p.position("BTCUSDT") == 2
    p.on_market(mark("95"))
    assert p.unrealised() == 10 and balanced(p)


def test_a_repeated_fill_is_ignored_and_counted() -> None:
    p = Portfolio(1000)
    f = fill(1, Side.BUY, "1", "100", fee="0.1")
    assert p.on_fill(f) is True
    assert p.on_fill(f) is False
    assert p.position("BTCUSDT") == 1 and p.cash == D("899.9") and p.duplicates == 1
    assert p.stats().duplicates == 1 and p.stats().trades == 1


def test_marks_come_from_klines_books_and_trades() -> None:
    p = Portfolio(0)
    p.on_fill(fill(1, Side.BUY, "1", "100"))
    book = OrderBook("binance", "BTCUSDT", ((D("101"), D(1)),), ((D("102"), D(1)),), 1, T0, T0)
    p.on_market(book)
    assert p.equity() == D("1.5")
    p.on_market(Trade("binance", "BTCUSDT", 1, D("99"), D(1), Side.SELL, T0 + 1, T0 + 1))
    assert p.equity() == -1
    curve = p.equity_curve()
    assert list(curve) == [1.5, -1.0] and str(curve.index.tz) == "UTC"


def test_stats_from_a_known_curve() -> None:
    p = Portfolio(100)
    p.on_fill(fill(1, Side.BUY, "1", "100"))
    for i, price in enumerate(["100", "120", "90", "130"]):
        p.on_market(mark(price, i))
    s = p.stats()
    assert s.equity == 130 and s.total_return == pytest.approx(0.3)
    assert s.max_drawdown == pytest.approx(30 / 120)
    assert s.sharpe > 0 and s.orders_filled == 1
    assert json.loads(json.dumps(s.to_dict()))["equity"] == "130"


def test_sharpe_and_drawdown_helpers() -> None:
    times = np.arange(5) * 60_000
    assert sharpe_ratio(np.full(5, 100.0), times) == 0.0
    rising = np.array([100.0, 101, 103, 104, 106])
    assert sharpe_ratio(rising, times) > 0 > sharpe_ratio(rising[::-1], times)
    assert max_drawdown(np.array([1.0, 2, 1, 3, 1.5])) == pytest.approx(0.5)


def test_fees_in_another_asset_are_refused() -> None:
    f = Fill("s-1", "s", "binance", "BTCUSDT", Side.BUY, D(1), D(1), D(1), "BNB",
             Liquidity.TAKER, 1, T0, T0)  # fmt: skip
    with pytest.raises(ValueError, match="fee in BNB"):
        Portfolio().on_fill(f)


steps = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from(["BTCUSDT", "ETHUSDT"]),
        st.decimals("0.001", "5", places=3),
        st.decimals("1", "200", places=2),
    ),
    min_size=1,
    max_size=30,
)


def _replay(p: Portfolio, steps: list[tuple[bool, str, D, D]]) -> Iterator[tuple[bool, D]]:
    """Apply each step (a fill, or a mark at a price) to ``p``; after each, yield whether it
    was a fill and cash plus every position at its latest price, computed here exactly."""
    last: dict[str, D] = {}
    for n, (is_fill, symbol, qty, price) in enumerate(steps):
        if is_fill:
            side = Side.BUY if n % 3 else Side.SELL
            p.on_fill(fill(n, side, str(qty), str(price), fee=str(qty / 1000), symbol=symbol))
            last.setdefault(symbol, price)
        else:
            p.on_market(mark(str(price), n, symbol))
            last[symbol] = price
        yield is_fill, p.cash + sum((q * last[s] for s, q in p.positions.items()), D(0))


@settings(max_examples=60, deadline=None)
@given(steps=steps)
def test_books_always_balance(steps: list[tuple[bool, str, D, D]]) -> None:
    p = Portfolio(1000)
    for is_fill, marked in _replay(p, steps):
        if not is_fill:  # the curve's point is cash plus every position at its latest price
            assert p.equity_curve().iloc[-1] == float(marked)
        assert balanced(p)


@settings(max_examples=80, deadline=None)
@given(steps=steps)
def test_every_point_of_the_curve_is_exact(steps: list[tuple[bool, str, D, D]]) -> None:
    """Points are computed when asked for, from the marks and the books after each fill: each
    must equal cash plus every position at its latest price when it was marked, exactly."""
    p = Portfolio(1000)
    want: list[D] = []
    for n, (is_fill, marked) in enumerate(_replay(p, steps)):
        if not is_fill:
            want.append(marked)
        if n % 4 == 0:  # asked for midway too: the cache must not go stale
            assert p._values() == want
    assert p._values() == want
    assert list(p.equity_curve()) == [float(v) for v in want]


def _lots_by_direction(fills: list[tuple[D, D]]) -> tuple[D, list[list[D]]]:
    """FIFO lots as the portfolio first booked them, ``* direction`` and all: (realised, lots)."""
    realised, lots = D(0), list[list[D]]()
    for signed, price in fills:
        while signed and lots and (lots[0][0] > 0) != (signed > 0):
            lot = lots[0]
            take = min(abs(signed), abs(lot[0]))
            direction = 1 if lot[0] > 0 else -1
            realised += (price - lot[1]) * take * direction
            lot[0] -= take * direction
            signed += take * direction
            if not lot[0]:
                lots.pop(0)
        if signed:
            lots.append([signed, price])
    return realised, lots


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(), st.sampled_from(["0.1", "0.10", "0.25", "1", "2.000"]), st.integers(1, 9)
        ),
        min_size=1,
        max_size=25,
    )
)
def test_fifo_lots_book_what_the_direction_formula_did(steps: list[tuple[bool, str, int]]) -> None:
    """The lots are booked side by side (no ``* direction``): the same Decimals, digit for digit
    (trailing zeros and signs of zero included), as the formula they replace."""
    p = Portfolio(10**6)
    signed_fills = []
    for n, (buy, qty, price) in enumerate(steps):
        p.on_fill(fill(n, Side.BUY if buy else Side.SELL, qty, f"{price}.50"))
        signed_fills.append((D(qty) if buy else -D(qty), D(f"{price}.50")))
    realised, lots = _lots_by_direction(signed_fills)
    assert str(p.realised) == str(realised)
    assert [[str(q), str(c)] for q, c in p._lots["BTCUSDT"]] == [[str(q), str(c)] for q, c in lots]
