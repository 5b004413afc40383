"""A learner's own strategy and data: strategy files and modules, typed parameters, sizing by
equity through a read-only portfolio, and the backtest CLI around them."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from mqlab.__main__ import main
from mqlab.backtest import run_backtest
from mqlab.bars import SAMPLE_STOCK, SAMPLE_STRATEGY, load_bars
from mqlab.events import Kline, Order
from mqlab.portfolio import Portfolio
from mqlab.strategies import SmaCross, StrategyLoadError, strategy_class, typed_params
from mqlab.strategy import NotBoundError, Strategy
from mqlab.venue import SimulatedExchange

LEARNER = f"{SAMPLE_STRATEGY}:SmaLongShort"


class HalfIn(Strategy):
    """Spends half its equity on the first bar, by quote amount."""

    def on_kline(self, kline: Kline) -> None:
        if not self.open_orders and not self.position():
            self.buy(quote_qty=self.equity_fraction("0.5"))


def test_the_portfolio_is_read_only_for_a_strategy() -> None:
    book = Portfolio(1000, quote="USD")
    view = book.view()
    assert (view.cash, view.equity, view.quote, view.position("X")) == (1000, 1000, "USD", 0)
    with pytest.raises(AttributeError, match="read-only"):
        view.cash = D(5)  # type: ignore[misc]
    with pytest.raises(NotBoundError, match="no portfolio to read"):
        _ = HalfIn().portfolio


def test_quote_sized_orders_and_their_mistakes() -> None:
    sent: list[Order] = []
    strategy = HalfIn().bind(sent.append)  # type: ignore[arg-type]
    strategy.attach(Portfolio(1000, quote="USD"))
    assert strategy.equity_fraction("0.25") == D("250")
    with pytest.raises(ValueError, match="fraction must be > 0"):
        strategy.equity_fraction("0")
    with pytest.raises(RuntimeError, match="no market event"):
        strategy.buy(quote_qty="10")
    strategy.handle(load_bars(SAMPLE_STOCK)[0])
    (order,) = sent
    assert order.qty == 0 and order.quote_qty == D("500") and order.price is None
    with pytest.raises(ValueError, match="give no qty and no price"):
        strategy.buy(1, quote_qty="10")
    with pytest.raises(TypeError, match="give qty"):
        strategy.sell()
    with pytest.raises(ValueError, match="quote_qty must be > 0"):
        strategy.sell(quote_qty="-1")


def test_a_backtest_lets_the_strategy_size_by_its_equity_at_the_fill_price() -> None:
    bars = load_bars(SAMPLE_STOCK)
    exchange = SimulatedExchange({"USD": 10_000}, quote="USD", lot_size=1)
    result = run_backtest(HalfIn(), bars, cash=10_000, quote="USD", exchange=exchange)
    (fill,) = result.fills
    assert fill.price == bars[1].open  # the next bar's open, not the signal's close
    assert fill.qty == (D(5000) / bars[1].open) // 1


def test_strategy_files_modules_and_their_errors(tmp_path: Path) -> None:
    assert strategy_class("sma_cross") is SmaCross
    assert strategy_class("mqlab.strategies.sma_cross:SmaCross") is SmaCross
    cls = strategy_class(LEARNER)
    assert cls.__name__ == "SmaLongShort" and issubclass(cls, Strategy)
    bad = tmp_path / "mine.py"
    bad.write_text("from mqlab.strategy import Strategy\nclass Mine(Strategy): pass\nX = 3\n")
    cases = {
        "nothing": "unknown strategy 'nothing'; choose one of: sma_cross, imbalance",
        f"{bad}:X": f"X in {bad} is not a Strategy: it must subclass mqlab.strategy.Strategy",
        f"{bad}:Other": "has no 'Other'; it defines: Mine",
        f"{tmp_path}/absent.py:Mine": "absent.py not found",
        "no_such_module_here:Mine": "no module 'no_such_module_here'",
    }
    for spec, words in cases.items():
        with pytest.raises(StrategyLoadError) as info:
            strategy_class(spec)
        assert words in str(info.value) and "\n" not in str(info.value)
    broken = tmp_path / "broken.py"
    broken.write_text("class Mine(:\n")
    with pytest.raises(StrategyLoadError, match=r"broken.py, line 1: syntax error"):
        strategy_class(f"{broken}:Mine")


def test_parameters_take_the_constructors_types() -> None:
    cls = strategy_class(LEARNER)
    params = typed_params(cls, {"fast": "5", "slow": "30", "fraction": "0.5"})
    assert params == {"fast": 5, "slow": 30, "fraction": D("0.5")}
    assert type(params["fast"]) is int
    wrong = r"SmaLongShort's parameter 'fast' expects a whole number \(int\), got 'five'"
    with pytest.raises(StrategyLoadError, match=wrong):
        typed_params(cls, {"fast": "five"})
    with pytest.raises(
        StrategyLoadError, match="no parameter speed; it takes: fast, slow, fraction"
    ):
        typed_params(cls, {"speed": "1"})


def test_cli_runs_a_strategy_file_on_a_yahoo_csv_on_the_margin_venue(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["backtest", "--data", str(SAMPLE_STOCK), "--strategy", LEARNER, "--venue", "margin"]
    assert main([*argv, "--json", "--param", "fraction=0.9"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["quote"] == "USD" and report["data"].startswith("ACME 1d bars")
    assert report["round_trips"] > 10 and report["fills"] > report["round_trips"]
    assert report["venue"].startswith("margin 1x") and report["rejected"] == 0
    assert report["periods_per_year"] == pytest.approx(261, abs=1)  # weekdays, not 365
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "round trips (trades), closed" in table and "Sharpe ratio" in table


def test_cli_overrides_symbol_interval_and_quote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "prices.csv"
    data.write_text(SAMPLE_STOCK.read_text())
    argv = ["backtest", "--data", str(data), "--symbol", "XYZ", "--quote", "EUR", "--json"]
    assert main([*argv, "--interval", "1d", "--param", "fast=5", "--param", "slow=10"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"].startswith("XYZ 1d bars from prices.csv") and report["quote"] == "EUR"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["--strategy", "mqlab.strategy:as_decimal"],
            "as_decimal in mqlab.strategy is not a Strategy",
        ),
        (["--strategy", LEARNER, "--param", "speed=1"], "SmaLongShort has no parameter speed"),
        (
            ["--strategy", LEARNER, "--param", "fast=x"],
            "parameter 'fast' expects a whole number (int), got 'x'",
        ),
        (["--param", "fast=5.5"], "parameter 'fast' expects a whole number (int), got '5.5'"),
        (["--data", "/bin/ls"], "a binary file"),
        (["--venue", "margin", "--leverage", "0"], "leverage must be > 0"),
        (["--lot-size", "0"], "--lot-size must be > 0"),
    ],
)
def test_cli_errors_are_one_line(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
