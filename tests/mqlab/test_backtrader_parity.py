"""An outside reference: the same long/short SMA cross in backtrader and in mqlab, same bars.

SMA 10/20, reversing on each cross (close, then open the other side), market orders filled at
the next bar's open, commission 0.002 on every fill, cash 10,000, backtrader's
``PercentSizerInt(percents=95)``; mqlab runs on its margin venue with whole shares. The two
must make the same round trips (dates, sides, sizes, PnL net of commission) and end with the
same equity to the cent. docs/benchmarks.md explains how this relates to sizing by quote.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mqlab.__main__ import main
from mqlab.backtest import run_backtest
from mqlab.bars import SAMPLE_STOCK, Bars, load_bars
from mqlab.report import build_report
from mqlab.strategies import strategy_class
from mqlab.venue import MarginExchange

bt = pytest.importorskip(
    "backtrader", reason="backtrader is the outside reference: pip install -e '.[dev]'"
)

STRATEGY = f"{Path(__file__).parent / 'backtrader_sized.py'}:SizedAsBacktrader"
CASH, COMMISSION, PERCENTS = 10_000, 0.002, 50


def _backtrader(bars: Bars) -> tuple[float, list[dict[str, Any]], int]:
    """Final value, closed trades and the count of orders that did not complete."""
    trades: list[dict[str, Any]] = []
    failed: list[int] = []

    class Cross(bt.Strategy):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            fast, slow = bt.ind.SMA(period=10), bt.ind.SMA(period=20)
            self.cross = bt.ind.CrossOver(fast, slow)

        def next(self) -> None:
            if self.cross > 0:
                if self.position:
                    self.close()
                self.buy()
            elif self.cross < 0:
                if self.position:
                    self.close()
                self.sell()

        def notify_order(self, order: Any) -> None:
            if order.status in (order.Margin, order.Rejected, order.Canceled):
                failed.append(order.ref)

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                trades.append(
                    {
                        "open": bt.num2date(trade.dtopen).date(),
                        "close": bt.num2date(trade.dtclose).date(),
                        "side": "long" if trade.long else "short",
                        "pnl": trade.pnlcomm,
                    }
                )

    frame = bars.frame()
    frame.index = frame.index.tz_localize(None)
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Cross)
    cerebro.addsizer(bt.sizers.PercentSizerInt, percents=PERCENTS)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=COMMISSION)
    cerebro.run()
    return cerebro.broker.getvalue(), trades, len(failed)


@pytest.fixture(scope="module")
def bars() -> Bars:
    return load_bars(SAMPLE_STOCK)


def test_round_trips_and_final_equity_match_backtrader(bars: Bars) -> None:
    value, theirs, failed = _backtrader(bars)
    assert failed == 0, "backtrader refused orders: the comparison would not be like for like"
    exchange = MarginExchange(
        {"USD": CASH}, quote="USD", taker_fee=str(COMMISSION), lot_size=1, leverage=3
    )
    cls = strategy_class(STRATEGY)
    strategy = cls(fast=10, slow=20, fraction=Decimal(PERCENTS) / 100)
    result = run_backtest(strategy, bars, cash=CASH, quote="USD", exchange=exchange)
    assert not [u for u in result.updates if u.status in ("REJECTED", "CANCELED")]
    ours = [t for t in build_report(result).trades if t.closed]
    assert len(ours) == len(theirs) > 10
    for mine, other in zip(ours, theirs, strict=True):
        assert _day(mine.entry_ts) == other["open"] and _day(mine.exit_ts) == other["close"]
        assert mine.side == other["side"]
        assert float(mine.pnl) == pytest.approx(other["pnl"], abs=0.005)
    assert abs(float(result.portfolio.equity()) - value) < 0.005


def test_the_cli_agrees_with_backtrader_to_the_cent(
    bars: Bars, capsys: pytest.CaptureFixture[str]
) -> None:
    value, theirs, _ = _backtrader(bars)
    argv = ["backtest", "--data", str(SAMPLE_STOCK), "--strategy", STRATEGY, "--venue", "margin"]
    argv += ["--leverage", "3", "--fee", str(COMMISSION), "--lot-size", "1", "--json"]
    argv += ["--param", "fast=10", "--param", "slow=20", "--param", f"fraction={PERCENTS / 100}"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["round_trips"] == len(theirs)
    assert abs(Decimal(report["final_equity"]) - Decimal(repr(value))) < Decimal("0.005")


def _day(ms: int | None) -> Any:
    import datetime as dt

    assert ms is not None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date()
