"""Vectorised vs event-driven: exactly the same trades when both are right; look-ahead inflates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqlab.backtest import run_backtest
from mqlab.market import SAMPLE_DATA, klines_to_frame, load_binance_csv, synthetic_klines
from mqlab.strategies import SmaCross
from mqlab.vectorised import (
    backtest_sma,
    lookahead_inflation,
    sma_positions,
    sma_signal,
    stats_table,
    trade_tuples,
)

CASH = 1_000_000  # enough that no order is ever refused: both engines trade every signal


@pytest.mark.parametrize(
    ("seed", "fast", "slow"), [(1, 10, 30), (2, 5, 20), (3, 3, 7), (4, 20, 60)]
)
def test_same_trades_as_the_event_driven_engine(seed: int, fast: int, slow: int) -> None:
    klines = synthetic_klines(5000, seed=seed)
    event = run_backtest(SmaCross(fast, slow), klines, cash=CASH)
    vector = backtest_sma(klines_to_frame(klines), fast, slow, cash=CASH)
    assert trade_tuples(event.trades()) == trade_tuples(vector.trades)
    assert len(vector.trades) > 40
    # and the same equity at every bar close, up to float rounding
    np.testing.assert_allclose(
        vector.equity.to_numpy(), event.portfolio.equity_curve().to_numpy(), rtol=1e-12
    )
    assert (vector.equity.index == event.portfolio.equity_curve().index).all()


def test_same_trades_on_the_bundled_sample() -> None:
    klines = load_binance_csv(SAMPLE_DATA)
    event = run_backtest(SmaCross(), klines, cash=CASH)
    vector = backtest_sma(klines_to_frame(klines), cash=CASH)
    assert trade_tuples(event.trades()) == trade_tuples(vector.trades)
    assert vector.stats()["trades"] == event.stats.trades


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_missing_shift_inflates_returns(seed: int) -> None:
    frame = klines_to_frame(synthetic_klines(5000, seed=seed))
    honest = backtest_sma(frame, 5, 20, cash=10_000, fee=0.0).stats()
    cheat = backtest_sma(frame, 5, 20, cash=10_000, fee=0.0, lookahead=True).stats()
    assert cheat["total_return"] > honest["total_return"] + 0.01
    assert cheat["sharpe"] > honest["sharpe"] + 5


def test_lookahead_trades_one_bar_early() -> None:
    close = synthetic_klines(500, seed=8)
    frame = klines_to_frame(close)
    honest = sma_positions(frame["close"], 5, 20)
    cheat = sma_positions(frame["close"], 5, 20, lookahead=True)
    np.testing.assert_array_equal(honest[1:], cheat[:-1])


def test_exact_ticks_do_not_see_float_ties() -> None:
    close = pd.Series([0.1, 0.2, 0.3, 0.1, 0.1, 0.4])
    floats = (close.rolling(3).mean() > close.rolling(6).mean()).to_numpy()
    assert floats[-1]  # 0.20000000000000004 > 0.19999999999999998
    assert not sma_signal(close, 3, 6)[-1]  # both averages are exactly 0.2


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="fast < slow"):
        sma_signal([1.0, 2.0], 3, 2)
    with pytest.raises(ValueError, match="not multiples of the tick"):
        sma_signal([1.001, 2.0, 3.0], 1, 2)
    assert not sma_signal([1.0, 2.0], 2, 5).any()  # too short for the slow average


def test_stats_agree_with_the_event_driven_portfolio() -> None:
    klines = synthetic_klines(3000, seed=5)
    event = run_backtest(SmaCross(5, 20), klines, cash=CASH).stats
    vector = backtest_sma(klines_to_frame(klines), 5, 20, cash=CASH).stats()
    assert vector["sharpe"] == pytest.approx(event.sharpe, rel=1e-6)
    assert vector["max_drawdown"] == pytest.approx(event.max_drawdown, rel=1e-6)
    assert vector["fees"] == pytest.approx(float(event.fees), rel=1e-12)


def test_stats_table_has_a_row_per_run() -> None:
    frame = klines_to_frame(synthetic_klines(2000, seed=1))
    honest = backtest_sma(frame)
    text = stats_table({"correct": honest, "cheat": backtest_sma(frame, lookahead=True)})
    header, correct, cheat = text.splitlines()
    assert header.split() == ["equity", "total_return", "max_drawdown", "trades", "fees"]
    assert correct.startswith("correct") and cheat.startswith("cheat")
    assert f"{honest.stats()['total_return']:+.2%}" in correct


def test_lookahead_inflation_table() -> None:
    frame = klines_to_frame(synthetic_klines(3000, seed=2))
    table = lookahead_inflation(frame, [(5, 20), (10, 30)], qty=0.1, cash=CASH)
    assert list(table.index) == ["5/20", "10/30"]
    correct = backtest_sma(frame, 10, 30, qty=0.1, cash=CASH, fee=0.0)
    assert table.loc["10/30", "trades"] == len(correct.trades)
    assert table.loc["10/30", "correct"] == correct.stats()["total_return"]
    assert (table["inflation"] == table["look-ahead"] - table["correct"]).all()
    assert (table["inflation"] > 0).all()
