"""The standard report: each figure checked against a small run worked out by hand."""

from __future__ import annotations

import json
import math
from decimal import Decimal as D

import numpy as np
import pandas as pd
import pytest

from mqlab.events import Fill, Kline, Liquidity, Side
from mqlab.portfolio import Portfolio
from mqlab.report import build_report, round_trips

T0 = 1_704_067_200_000
DAY = 86_400_000


def bar(i: int, close: str) -> Kline:
    t = T0 + i * DAY
    c = D(close)
    return Kline("binance", "ACME", "1d", t, c, c, c, c, D(1), t + DAY, t + DAY)


def fill(n: int, side: Side, qty: str, price: str, day: int, fee: str = "0") -> Fill:
    t = T0 + day * DAY
    return Fill(f"s-{n}", "s", "binance", "ACME", side, D(qty), D(price), D(fee), "USD",
                Liquidity.TAKER, 1, t, t)  # fmt: skip


def run(closes: list[str], fills: dict[int, list[Fill]]) -> Portfolio:
    book = Portfolio(1000, quote="USD")
    for i, close in enumerate(closes):
        for f in fills.get(i, []):
            book.on_fill(f)
        book.on_market(bar(i, close))
    return book


def test_round_trips_split_a_fill_that_goes_through_zero() -> None:
    trips = round_trips(
        [
            fill(1, Side.BUY, "2", "10", 0, fee="0.2"),
            fill(2, Side.SELL, "3", "12", 1, fee="0.3"),  # closes 2 (+4), opens a short of 1
            fill(3, Side.BUY, "1", "11", 2, fee="0.1"),  # closes the short (+1)
        ]
    )
    long, short = trips
    assert (long.side, long.qty, long.entry_price, long.exit_price) == ("long", 2, 10, 12)
    assert long.pnl == D("4") - D("0.2") - D("0.2")  # two thirds of the 0.3 fee
    assert (short.side, short.qty, short.pnl) == ("short", 1, D("1") - D("0.1") - D("0.1"))
    assert long.closed and short.closed


def test_every_figure_of_a_hand_worked_run() -> None:
    closes = ["100", "110", "99", "121", "121"]
    # buy 1 share at 100 on day 1 (closes 110), sell it at 121 on day 4
    book = run(closes, {1: [fill(1, Side.BUY, "1", "100", 1, "1")],
                        3: [fill(2, Side.SELL, "1", "121", 3, "1")]})  # fmt: skip
    r = build_report(book)
    equity = np.array([1000, 1009, 998, 1019, 1019.0])
    returns = np.diff(equity) / equity[:-1]
    root = math.sqrt(4 / (4 / 365.25))  # 4 returns over 4 days: 365.25 samples a year
    assert r.samples == 5 and r.periods_per_year == pytest.approx(365.25)
    assert r.duration == pd.Timedelta(days=4)
    assert r.start == pd.Timestamp(T0 + DAY, unit="ms", tz="UTC")
    assert r.final_equity == D("1019") and r.total_return == pytest.approx(0.019)
    assert r.cagr == pytest.approx(1.019 ** (365.25 / 4) - 1)
    assert r.volatility == pytest.approx(returns.std(ddof=1) * root)
    assert r.sharpe == pytest.approx(returns.mean() / returns.std(ddof=1) * root)
    downside = math.sqrt(np.mean(np.minimum(returns, 0) ** 2))
    assert r.sortino == pytest.approx(returns.mean() / downside * root)
    assert r.max_drawdown == pytest.approx(11 / 1009)
    assert r.max_drawdown_duration == pd.Timedelta(days=2)  # from the 1009 peak to 1019
    assert r.exposure == pytest.approx(2 / 5)  # held at the closes of days 1 and 2
    assert (len(r.closed_trades), r.open_trades, r.fills, r.win_rate) == (1, 0, 2, 1.0)
    assert r.closed_trades[0].pnl == D("19") and r.fees == D("2")
    assert r.profit_factor is None  # no loss to divide by
    data = json.loads(r.to_json())
    assert data["round_trips"] == 1 and data["fills"] == 2 and data["final_equity"] == "1019"
    assert data["best_trade"] == data["worst_trade"] == "19"
    table = r.table("hand-worked")
    assert "round trips (trades), closed" in table and "fills (executions)" in table
    assert "under 30 days" in table


def test_profit_factor_win_rate_and_an_open_trip() -> None:
    fills = {
        1: [fill(1, Side.BUY, "1", "100", 1)],
        2: [fill(2, Side.SELL, "1", "110", 2)],  # +10
        3: [fill(3, Side.SELL, "1", "110", 3)],  # short
        4: [fill(4, Side.BUY, "1", "115", 4)],  # -5
        5: [fill(5, Side.BUY, "1", "115", 5)],  # still open at the end, marked at 120
    }
    r = build_report(run(["100", "100", "110", "110", "115", "115", "120"], fills))
    assert r.profit_factor == pytest.approx(2.0) and r.win_rate == pytest.approx(0.5)
    assert r.open_trades == 1 and r.trades[-1].pnl == D("5")


def test_marks_at_the_same_time_count_once_and_an_interval_resamples() -> None:
    book = Portfolio(1000, quote="USD")
    for i, close in enumerate(["100", "101", "102"]):
        book.on_market(bar(i, close))
        book.on_market(bar(i, close))  # a bus run marks on every event
    assert build_report(book).samples == 3
    assert build_report(book, interval="1d").samples == 3
    assert build_report(book, periods_per_year=252).periods_per_year == 252


def test_an_empty_run_reports_without_failing() -> None:
    r = build_report(Portfolio(1000))
    assert r.samples == 0 and r.sharpe == 0.0 and r.start is None
    assert json.loads(r.to_json())["round_trips"] == 0
