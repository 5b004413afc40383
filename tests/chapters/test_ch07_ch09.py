"""Chapters 07 and 09's lines: the words are chosen by the numbers they are given."""

from __future__ import annotations

from chapters import ch07, ch09
from mqlab.backtest import DecisionCpu, RecordedRun
from mqlab.patterns.confirms import Comparison
from mqlab.timeseries import FactorEvaluation


def test_factor_line_carries_the_numbers() -> None:
    line = ch07.factor_line(FactorEvaluation(0.0123, 0.5234, 4321, ()))
    assert line == "IC +0.0123, hit rate 52.34% over 4,321 bars"


def test_live_lines_name_the_cheaper_way_and_the_growth() -> None:
    runs = [
        {"bars": 1000, "rolling window µs": 10.0, "event-driven µs": 1.0, "same decisions": True},
        {"bars": 10000, "rolling window µs": 11.0, "event-driven µs": 0.5, "same decisions": True},
    ]
    lines = ch07.live_lines(runs)
    assert "cheaper: event-driven, 10.0x" in lines[0] and "cheaper: event-driven, 22.0x" in lines[1]
    assert (
        lines[2]
        == "history 10x as long: cost per decision x1.10 (rolling window), x0.50 (event-driven)"
    )
    runs[0]["event-driven µs"] = 20.0
    assert "cheaper: rolling window, 2.0x" in ch07.live_lines(runs)[0]
    assert len(ch07.live_lines(runs[:1])) == 1  # one run: no growth to speak of


def test_benchmark_lines_carry_the_recorded_figures() -> None:
    assert "python benchmarks/backtest.py" in ch07.benchmark_lines(None)[0]
    run = RecordedRun(200000, "3.11.7", 0.98, True, "PandasData", 19484, 381607, 721633, 19.6, 37.0)
    lines = ch07.benchmark_lines(run)
    assert lines[0].startswith("200,000 synthetic bars, Python 3.11.7")
    assert lines[2].split() == ["backtrader", "19,484"]
    assert "381,607" in lines[3] and "19.6x" in lines[3]
    assert "721,633" in lines[4] and "37.0x" in lines[4] and len(lines) == 5
    run = RecordedRun(
        1000, "3.11.7", None, True, "fastest", 1, 2, 3, 2.0, 3.0, {"backtesting": (148078, 2.6)}
    )
    lines = ch07.benchmark_lines(run)
    assert "backtrader, fastest feed" in lines[2]
    assert "backtesting.py" in lines[5] and "148,078" in lines[5] and "2.6x" in lines[5]


def test_daily_cpu_table_carries_the_seconds() -> None:
    rows = [DecisionCpu("1-hour bars", 24, 12.0, 0.024), DecisionCpu("ticks", 1000, 500.0, 1.0)]
    table = ch07.daily_cpu_table(rows)
    assert list(table.index) == ["1-hour bars", "ticks"]
    assert table.loc["1-hour bars"].tolist() == [24, 12.0, 0.02]
    assert table.loc["ticks"].tolist() == [1000, 500.0, 1.0]


def test_confirm_lines_claim_only_what_every_round_showed() -> None:
    lines = ch09.confirm_lines(
        [
            Comparison("one by one", "no confirms", 0.4, 0, 3),
            Comparison("streaming", "no confirms", 1.1, 2, 3),
            Comparison("batched", "one by one", 3.0, 3, 3),
        ]
    )
    assert lines[0] == (
        "one by one: 0.40x no confirms (median); slower than no confirms in all 3 rounds"
    )
    assert lines[1].endswith("faster in 2 of 3 rounds, slower in 1: not consistent across rounds")
    assert lines[2].endswith("faster than one by one in all 3 rounds")
