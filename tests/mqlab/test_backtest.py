"""The event-driven engine: time-ordered, drip-fed, deterministic, books that balance."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from mqlab.__main__ import main
from mqlab.backtest import (
    RECORDED_BENCHMARK,
    Backtest,
    RecordedRun,
    bars_per_second,
    daily_decision_cpu,
    draw_event_flow,
    fee_runs,
    plot_equity,
    recorded_benchmark,
    run_backtest,
    speed_comparison,
    timed,
)
from mqlab.events import Fill, Kline, OrderBook, OrderStatus, OrderUpdate, Trade
from mqlab.market import synthetic_book_events, synthetic_frame, synthetic_klines
from mqlab.portfolio import Portfolio
from mqlab.strategies import BookImbalance, SmaCross
from mqlab.strategy import Strategy
from mqlab.venue import Latency, SimulatedExchange

KLINES = synthetic_klines(3000, seed=21)


def test_same_data_same_fills() -> None:
    a = run_backtest(SmaCross(fast=5, slow=20), KLINES)
    b = run_backtest(SmaCross(fast=5, slow=20), KLINES)
    assert a.fills == b.fills and len(a.fills) > 50 and a.events == len(KLINES)


def test_every_market_order_fills_at_the_open_of_the_bar_after_its_signal() -> None:
    result = run_backtest(SmaCross(fast=5, slow=20), KLINES)
    bar_after = {k.open_time: k for k in KLINES}
    sent = {o.id: o for o in result.orders}
    for fill in result.fills:
        order = sent[fill.order_id]
        nxt = bar_after[order.ts]  # the bar that opens when the signal bar closed
        assert fill.price == nxt.open and fill.ts == nxt.open_time
        assert fill.recv_ts > order.ts  # learned strictly later than the decision


def test_the_books_balance_and_agree_with_the_exchange() -> None:
    result = run_backtest(SmaCross(fast=5, slow=20), KLINES, cash=20_000)
    p, ex = result.portfolio, result.exchange
    assert p.equity() - p.initial == p.realised + p.unrealised() - p.fees
    assert ex.balance("USDT") == p.cash and ex.balance("BTC") == p.position("BTCUSDT")
    assert result.stats.trades == len(result.fills)


class Watcher(Strategy):
    """Records what it sees, and when."""

    name = "watch"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, str]] = []

    def on_kline(self, kline: Kline) -> None:
        self.seen.append((self.now, "kline"))
        if sum(kind == "kline" for _, kind in self.seen) == 3:
            self.buy("0.01")

    def on_orderbook(self, book: OrderBook) -> None:
        self.seen.append((self.now, "book"))

    def on_trade(self, trade: Trade) -> None:
        self.seen.append((self.now, "trade"))

    def on_order_update(self, update: OrderUpdate) -> None:
        self.seen.append((self.now, update.status.value))

    def on_fill(self, fill: Fill) -> None:
        self.seen.append((self.now, "fill"))


def test_sources_are_merged_in_time_order() -> None:
    klines = synthetic_klines(10, seed=1)
    books = synthetic_book_events(600, seed=1, every_ms=1000)
    watcher = Watcher()
    run_backtest(watcher, klines, books)
    times = [t for t, _ in watcher.seen]
    assert times == sorted(times)
    kinds = {kind for _, kind in watcher.seen}
    assert {"kline", "book", "trade", "NEW", "fill", "FILLED"} <= kinds


def test_equal_times_go_in_source_order_and_answers_first() -> None:
    class Log(Strategy):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[int, str]] = []

        def on_kline(self, kline: Kline) -> None:
            self.seen.append((kline.recv_ts, kline.symbol))
            if kline.symbol == "BTCUSDT" and len(self.seen) == 1:
                self.buy("0.1")  # its NEW answer is due at this same time

        def on_order_update(self, update: OrderUpdate) -> None:
            self.seen.append((update.recv_ts, update.status.value))

    btc = synthetic_klines(3, seed=1)
    eth = synthetic_klines(3, seed=2, symbol="ETHUSDT")
    log = Log()
    run_backtest(log, btc, eth)
    t0, t1, t2 = (k.recv_ts for k in btc)
    assert [k.recv_ts for k in eth] == [t0, t1, t2]
    assert log.seen == [
        (t0, "BTCUSDT"),
        (t0, "NEW"),  # an answer due now comes before market data due now
        (t0, "ETHUSDT"),  # and source 1's bar before source 0's next one
        (t1, "FILLED"),  # the exchange sees the bar first, then the strategy
        (t1, "BTCUSDT"),
        (t1, "ETHUSDT"),
        (t2, "BTCUSDT"),
        (t2, "ETHUSDT"),
    ]


def test_a_lazy_frame_source_makes_the_same_fills() -> None:
    from mqlab.market import frame_to_klines, iter_frame_klines, synthetic_frame

    frame = synthetic_frame(3000, seed=21)
    eager = run_backtest(SmaCross(fast=5, slow=20), frame_to_klines(frame))
    lazy = run_backtest(SmaCross(fast=5, slow=20), iter_frame_klines(frame, chunk=100))
    assert lazy.fills == eager.fills and len(eager.fills) > 50
    assert lazy.portfolio.equity_curve().equals(eager.portfolio.equity_curve())


def test_answers_come_back_after_the_order_latency() -> None:
    watcher = Watcher()
    exchange = SimulatedExchange(latency=Latency(order_ms=250))
    run_backtest(watcher, synthetic_klines(6, seed=2), exchange=exchange)
    sent_at = watcher.seen[2][0]
    (new_at,) = [t for t, kind in watcher.seen if kind == "NEW"]
    assert new_at == sent_at + 250
    order = [kind for _, kind in watcher.seen]
    assert order[:6] == ["kline", "kline", "kline", "NEW", "fill", "FILLED"]


def test_a_source_out_of_time_order_is_refused() -> None:
    with pytest.raises(ValueError, match="not in time order"):
        run_backtest(SmaCross(), [KLINES[1], KLINES[0]])


def test_the_same_strategy_object_runs_and_keeps_its_state() -> None:
    strategy = SmaCross(fast=5, slow=20)
    result = Backtest(strategy, KLINES).run()
    assert strategy.position("BTCUSDT") == result.portfolio.position("BTCUSDT")
    assert strategy.now == KLINES[-1].recv_ts


def test_book_strategy_gets_partial_fills() -> None:
    result = run_backtest(
        BookImbalance(qty="0.2"), synthetic_book_events(1500, seed=3), cash=50_000
    )
    partial = [u for u in result.updates if u.status is OrderStatus.PARTIALLY_FILLED]
    assert partial and result.fills
    assert result.portfolio.position("BTCUSDT") == result.exchange.balance("BTC")


def test_summary_and_trades_table() -> None:
    result = run_backtest(SmaCross(fast=5, slow=20), KLINES)
    summary = json.loads(json.dumps(result.summary()))
    assert summary["fills"] == len(result.fills) and summary["orders_sent"] >= summary["fills"]
    trades = result.trades()
    assert list(trades.columns) == ["ts", "side", "qty", "price", "fee", "order_id"]
    assert trades["qty"].iloc[0] == D("0.1")


def test_figures(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    result = run_backtest(SmaCross(fast=5, slow=20), KLINES)
    ax = plot_equity(result, tmp_path / "eq.png")
    assert (tmp_path / "eq.png").stat().st_size > 1000 and ax.get_ylabel() == "equity (USDT)"
    assert draw_event_flow().get_title().startswith("The event-driven engine")


def test_cli_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "equity.png"
    assert main(["backtest", "--json", "--plot", str(plot), "--param", "fast=5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 4320 and "synthetic" in summary["data"]
    assert summary["plot"] == str(plot) and plot.exists()


@pytest.mark.slow  # the CLI in a subprocess
def test_cli_prints_a_summary_with_a_progress_bar() -> None:
    done = subprocess.run([sys.executable, "-m", "mqlab", "backtest", "--strategy", "imbalance"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "backtest imbalance" in done.stderr  # tqdm writes to stderr
    assert "equity" in done.stdout and "synthetic order books" in done.stdout


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--data", "nowhere/BTCUSDT-1m.csv"], "not found"),
        (["--strategy", "imbalance", "--data", "x.csv"], "needs order-book data"),
        (["--param", "fast"], "NAME=VALUE"),
        (["--param", "fast=50"], "need 0 < fast < slow"),
        (["--param", "speed=5"], "no parameter speed; it takes: fast, slow"),
        (["--param", "qty=abc"], "qty must be a number"),
    ],
)
def test_cli_errors_are_clear(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", *argv]) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--cash", "abc"], ["--fee", "-0.1"], ["--cash", "nan"]])
def test_cli_refuses_bad_numbers(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["backtest", *argv])
    assert info.value.code == 2
    assert "expected a number >= 0" in capsys.readouterr().err


def test_cli_says_why_orders_were_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--json", "--cash", "100"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["fills"] == 0 and summary["rejected"] > 0
    assert summary["first_rejection"].startswith("insufficient balance")
    assert isinstance(summary["sharpe"], float) and summary["sharpe"] == round(summary["sharpe"], 6)


def test_progress_bar_is_closed_when_a_source_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tqdm.auto

    from mqlab.market import DataError, iter_binance_csv

    bars: list[object] = []

    class Bar:
        def __init__(self, **kw: object) -> None:
            self.n, self.closed = 0, False
            bars.append(self)

        def update(self, k: int) -> None:
            self.n += k

        def close(self) -> None:
            self.closed = True

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    bad = tmp_path / "BTCUSDT-1m-bad.csv"
    bad.write_text("1704067200000,1,1,1,1,1,1704067259999,1,1,1,1,0\nnot,a,bar\n")
    backtest = Backtest(SmaCross(), iter_binance_csv(bad), progress=True, total=2)
    with pytest.raises(DataError, match="line 2"):
        backtest.run()
    assert len(bars) == 1 and bars[0].closed  # type: ignore[attr-defined]


def test_timed_and_bars_per_second_count_every_call() -> None:
    calls: list[int] = []
    assert timed(lambda: calls.append(1)) >= 0
    assert bars_per_second(lambda: calls.append(1), bars=1000, repeats=4) > 0
    assert len(calls) == 5


def test_speed_comparison_names_the_three_ways() -> None:
    speed = speed_comparison(synthetic_frame(300, seed=1), 5, 20, D("0.1"), repeats=1)
    assert list(speed) == ["vectorised", "event-driven", "event-driven, building events"]
    assert all(rate > 0 for rate in speed.values())


def test_recorded_benchmark_reads_the_cpu_figures(tmp_path: Path) -> None:
    assert recorded_benchmark(tmp_path / "none.json") is None
    cpu = {
        "backtrader_bars_per_s": 19484,
        "event_driven_from_frame_bars_per_s": 381607,
        "event_driven_events_bars_per_s": 721633,
        "ratio_like_for_like": 19.6,
        "ratio_engine_only": 37.0,
    }
    run = {"bars": 200000, "python": "3.11.7", "load_average": 0.98, "same_trades": True}
    path = tmp_path / "backtest.json"
    path.write_text(json.dumps(run | {"cpu": cpu}))
    got = recorded_benchmark(path)
    assert got == RecordedRun(
        200000, "3.11.7", 0.98, True, "PandasData", 19484, 381607, 721633, 19.6, 37.0, {}
    )
    cpu |= {
        "backtesting_bars_per_s": 148078,
        "ratio_vs_backtesting": 2.6,
        "backtrader_pandasdata_bars_per_s": 14000,
        "ratio_like_for_like_pandasdata": 27.3,
    }
    path.write_text(json.dumps(run | {"cpu": cpu}))
    got = recorded_benchmark(path)
    assert got is not None and got.backtrader_feed == "fastest"
    assert got.others == {"backtrader_pandasdata": (14000, 27.3), "backtesting": (148078, 2.6)}
    assert RECORDED_BENCHMARK.name == "backtest.json"


def test_fee_runs_differ_only_by_the_fee() -> None:
    books = synthetic_book_events(600, seed=11)
    runs = fee_runs(lambda: BookImbalance(qty="0.3"), books, ("0", "0.001"), cash=50_000)
    free, paid = runs["0"], runs["0.001"]
    assert free.stats.fees == 0 < paid.stats.fees
    assert free.exchange is not paid.exchange and len(free.fills) > 0


def test_daily_decision_cpu() -> None:
    rows = daily_decision_cpu(0.5, 0.001, {"1-hour bars": 24, "ticks": 1000})
    assert [(r.label, r.decisions) for r in rows] == [("1-hour bars", 24), ("ticks", 1000)]
    assert rows[0].vectorised_s == 12.0 and rows[0].event_driven_s == 0.024
    assert rows[1].vectorised_s == 500.0 and rows[1].event_driven_s == 1.0


def test_the_loops_own_kline_path_leaves_the_same_state_as_the_calls() -> None:
    """Backtest.run does what Strategy.handle and Portfolio.on_market do for a Kline (and
    handle for a fill or an order update) itself, unless either is overridden: both ways must
    end in the same fills, curve, clock and strategy state."""

    class Handled(SmaCross):
        def handle(self, event: Any) -> None:
            super().handle(event)

    class Marked(Portfolio):
        def on_market(self, event: Any) -> None:
            super().on_market(event)

    inline_strategy, called_strategy = SmaCross(5, 20, "0.1"), Handled(5, 20, "0.1")
    inline = run_backtest(inline_strategy, KLINES)
    called = run_backtest(called_strategy, KLINES, portfolio=Marked(10_000))
    assert inline.fills == called.fills and len(inline.fills) > 10
    assert inline.portfolio.equity_curve().equals(called.portfolio.equity_curve())
    assert inline.stats == called.stats
    assert inline_strategy.now == called_strategy.now == KLINES[-1].recv_ts
    assert inline_strategy._last is called_strategy._last is KLINES[-1]
    # answers too: deliver() books fills and updates itself unless handle is overridden
    assert inline.updates == called.updates and inline.orders == called.orders
    assert inline_strategy._positions == called_strategy._positions
    assert inline_strategy.open_orders == called_strategy.open_orders
    assert inline_strategy.long is called_strategy.long


def test_young_garbage_collections_are_rarer_only_during_a_run() -> None:
    """Backtest.run raises the collector's first threshold while it runs (events hold no
    cycles) and puts it back after, also when the run fails; cycles are still collected."""
    import gc
    import weakref

    class Node:
        me: Node

    seen: list[int] = []
    nodes: list[weakref.ref[Node]] = []

    class Cyclic(SmaCross):
        def on_kline(self, kline: Kline) -> None:
            seen.append(gc.get_threshold()[0])
            node = Node()
            node.me = node  # garbage that only the cyclic collector frees
            nodes.append(weakref.ref(node))
            super().on_kline(kline)

    class Failing(SmaCross):
        def on_kline(self, kline: Kline) -> None:
            raise RuntimeError("boom")

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, *before[1:])
        run_backtest(Cyclic(5, 20, "0.1"), synthetic_klines(12_000, seed=21))
        assert set(seen) == {10_000} and gc.get_threshold()[0] == 700
        assert any(ref() is None for ref in nodes)  # collected during the run
        gc.set_threshold(50_000, *before[1:])  # already rarer: left alone
        seen.clear()
        run_backtest(Cyclic(5, 20, "0.1"), KLINES)
        assert set(seen) == {50_000}
        gc.set_threshold(700, *before[1:])
        with pytest.raises(RuntimeError, match="boom"):
            run_backtest(Failing(), KLINES)
        assert gc.get_threshold()[0] == 700
    finally:
        gc.set_threshold(*before)


def test_the_loops_quiet_path_leaves_the_same_state_as_the_engine() -> None:
    """While nothing is due and no order works, Backtest.run does itself what Engine.feed and
    the venue's on_market would do, unless on_market is overridden: both ways must end alike,
    with orders resting over many bars (limits), answers after a latency and a cancel."""

    class Called(SimulatedExchange):
        def on_market(self, event: Any) -> Any:
            return super().on_market(event)

    class Patient(Strategy):
        """Buys below the close with a limit and cancels it after a few bars."""

        def on_kline(self, kline: Kline) -> None:
            if not self.open_orders:
                self.buy("0.01", (kline.close * D("0.999")).quantize(D("0.01")))
            elif kline.open_time // 60_000 % 7 == 0:
                self.cancel(next(iter(self.open_orders)))

    def run(venue: type[SimulatedExchange]) -> Any:
        exchange = venue({"USDT": 50_000}, latency=Latency(order_ms=90_000))
        return run_backtest(Patient(), KLINES, exchange=exchange, cash=50_000)

    quiet, called = run(SimulatedExchange), run(Called)
    assert quiet.fills == called.fills and len(quiet.fills) > 10
    assert quiet.updates == called.updates and quiet.orders == called.orders
    assert any(u.status is OrderStatus.CANCELED for u in quiet.updates)
    assert quiet.events == called.events == len(KLINES)
    assert quiet.exchange.now == called.exchange.now == KLINES[-1].ts
    assert quiet.exchange._last == called.exchange._last
    assert quiet.exchange.balances == called.exchange.balances
    assert quiet.portfolio.equity_curve().equals(called.portfolio.equity_curve())
    sma_quiet, sma_called = (
        run_backtest(SmaCross(), KLINES),
        run_backtest(SmaCross(), KLINES, exchange=Called({"USDT": 10_000})),
    )
    assert sma_quiet.fills == sma_called.fills and sma_quiet.stats == sma_called.stats
