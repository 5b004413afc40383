"""The time-series factor (时序因子) evaluated both ways, and the live rolling-window comparison."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from mqlab.market import SAMPLE_DATA, iter_binance_csv, klines_to_frame, synthetic_klines
from mqlab.timeseries import (
    FactorRecorder,
    RollingSignal,
    evaluate_event_driven,
    evaluate_vectorised,
    live_decision_costs,
)
from mqlab.vectorised import sma_signal


@pytest.mark.parametrize(("seed", "n"), [(1, 5), (2, 20), (3, 60)])
def test_vectorised_and_event_driven_agree_to_the_last_bit(seed: int, n: int) -> None:
    klines = synthetic_klines(1500, seed=seed)
    by_arrays = evaluate_vectorised(klines_to_frame(klines)["close"], n)
    by_events = evaluate_event_driven(iter(klines), n)
    assert by_arrays == by_events  # factor at every bar, IC, hit rate and pairs, exactly
    assert by_arrays.pairs == len(klines) - n - 1 and len(by_arrays.factor) == len(klines) - n


def test_the_sample_file_gives_the_same_result_both_ways() -> None:
    frame = klines_to_frame(list(iter_binance_csv(SAMPLE_DATA)))
    assert evaluate_vectorised(frame["close"], 20) == evaluate_event_driven(
        iter_binance_csv(SAMPLE_DATA), 20
    )


def test_ic_and_hit_rate_are_what_they_say() -> None:
    close = np.round(42_000 + np.cumsum(np.random.default_rng(5).normal(0, 5, 800)), 2)
    n = 10
    result = evaluate_vectorised(close, n)
    ticks = np.rint(close * 100)
    f, r = (ticks[n:] - ticks[:-n])[:-1], np.diff(ticks)[n:]
    assert result.ic == pytest.approx(np.corrcoef(f, r)[0, 1], abs=1e-12)
    both = (f != 0) & (r != 0)
    assert result.hit_rate == pytest.approx(np.mean(np.sign(f[both]) == np.sign(r[both])))
    assert result.pairs == len(f)


def test_a_factor_that_peeks_at_the_next_bar_would_not_agree() -> None:
    # The comparison can fail: shift the closes by one bar and the factor values differ.
    klines = synthetic_klines(300, seed=4)
    closes = klines_to_frame(klines)["close"]
    peeking = evaluate_vectorised(closes.shift(-1).ffill(), 5)
    assert peeking.factor != evaluate_event_driven(iter(klines), 5).factor


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n >= 1"):
        FactorRecorder(0)
    with pytest.raises(ValueError, match="n >= 1"):
        evaluate_vectorised([1.0, 2.0], 0)
    from mqlab.timeseries import _to_ticks

    assert _to_ticks(Decimal("42000.5"), Decimal("0.5")) == 84001
    with pytest.raises(ValueError, match="not a multiple of the tick"):
        _to_ticks(Decimal("42000.25"), Decimal("0.5"))


def test_rolling_signal_decides_as_the_research_code() -> None:
    closes = klines_to_frame(synthetic_klines(600, seed=9))["close"].to_numpy()
    signal = RollingSignal(5, 20)
    assert [signal.update(c) for c in closes] == sma_signal(closes, 5, 20).tolist()
    assert len(signal.window) == 20  # it never holds more than the window


def test_live_decision_costs() -> None:
    klines = synthetic_klines(400, seed=3)
    costs = live_decision_costs(klines, 5, 20, Decimal("0.1"), repeats=1)
    assert costs["bars"] == 400 and costs["same decisions"] is True
    assert costs["rolling window µs"] > 0 and costs["event-driven µs"] > 0
