"""The same SMA crossover, same bars: our event-driven engine, our vectorised version, backtrader.

    python benchmarks/backtest.py                 # 200k bars, 5 interleaved repeats
    python benchmarks/backtest.py --quick --json  # 20k bars, 3 repeats; JSON on stdout
    python benchmarks/backtest.py --profile       # and cProfile the engine's hot path

It writes ``benchmarks/results/backtest.json`` unless ``--no-save`` is given.

backtrader comes with the bench extra: ``pip install -e '.[bench]'``. Without it, its
figures are null and ``same_trades`` compares our two engines only.

How the conventions are aligned, so that all three must make the same trades:

* data: one synthetic series (``mqlab.market.synthetic_frame``, labelled synthetic), as
  ``Kline`` events for us and as a ``PandasData`` feed for backtrader;
* signal: long 0.1 BTC while SMA(10) > SMA(30) of closes, flat otherwise, decided on a close
  (backtrader: ``bt.ind.SMA`` and ``next()``; its first ``next()`` is on bar 30, as ours);
* execution: market orders fill at the next bar's open (backtrader's default: no
  cheat-on-open, no cheat-on-close), an order on the last bar never fills;
* sizing and costs: fixed size 0.1, commission 0.1 % of traded value
  (``setcommission(commission=0.001)``, our taker fee), 1,000,000 USDT of cash so no order
  is ever refused for margin;
* backtrader's execution prices carry float noise (41703.05999999999 for 41703.06), so they
  are rounded to the 0.01 tick before the trades are compared;
* backtrader runs with its defaults (preload, runonce) and ``stdstats=False`` (no observers),
  the fastest way to run it, while our engine still records an equity point per bar.

What is timed, so that the ratios compare like with like:

* ``backtrader`` starts from the DataFrame: its time includes loading the ``PandasData``
  feed (converting the bars into its own lines) and running;
* ``event_driven_from_frame`` starts from the same DataFrame too: its time includes
  building the ``Kline`` events, exact Decimals and all (``mqlab.market.iter_frame_klines``,
  which builds them a chunk at a time as the engine pulls them), so
  ``ratio_like_for_like`` is the honest comparison (``ratio_vs_backtrader`` and
  ``event_driven_bars_per_s``, the keys the issue names, carry this figure);
* ``event_driven_events`` is the engine fed ready-made events, the form a message bus
  delivers them in; ``ratio_engine_only`` flatters us, since backtrader's loading is in its
  time and our building is not;
* every run ends by listing its trades, and all of them must agree (``same_trades``).

Timing: the runs are interleaved, each after a ``gc.collect()`` so that none pays for the
garbage of the one before, and the median of ``--repeats`` is reported, both in wall time
(``*_bars_per_s``, ``ratio_*``) and in the process's CPU time (``cpu``), which other load on
a shared machine disturbs less. The load average at the start is recorded. Results are
also written to ``benchmarks/results/backtest.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from concurrency_lab import QUICK
from mqlab.backtest import run_backtest
from mqlab.events import Kline
from mqlab.market import frame_to_klines, iter_frame_klines, synthetic_frame
from mqlab.strategies import SmaCross
from mqlab.vectorised import backtest_sma, trade_tuples

FAST, SLOW, QTY, FEE, CASH = 10, 30, 0.1, 0.001, 1_000_000
RESULTS = Path(__file__).parent / "results" / "backtest.json"

Trades = list[tuple[int, str, float, float]]


def event_driven(klines: Iterable[Kline]) -> Trades:
    result = run_backtest(SmaCross(FAST, SLOW, str(QTY)), klines, cash=CASH)
    return [(f.ts, f.side.value, float(f.qty), float(f.price)) for f in result.fills]


def vectorised(frame: Any) -> Trades:
    return trade_tuples(backtest_sma(frame, FAST, SLOW, qty=QTY, cash=CASH, fee=FEE).trades)


def backtrader_run(frame: Any) -> Trades | None:
    try:
        import backtrader as bt
    except ImportError:
        return None
    data = frame.assign(datetime=frame["open_time"].astype("datetime64[ms]")).set_index("datetime")
    trades: Trades = []

    class SmaCrossBT(bt.Strategy):  # the same rule, written the backtrader way
        def __init__(self) -> None:
            self.fast = bt.ind.SMA(self.data.close, period=FAST)
            self.slow = bt.ind.SMA(self.data.close, period=SLOW)

        def next(self) -> None:
            above = self.fast[0] > self.slow[0]
            if not self.position and above:
                self.buy(size=QTY)
            elif self.position and not above:
                self.close()

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                when = bt.num2date(order.executed.dt).replace(tzinfo=dt.UTC)
                side = "BUY" if order.isbuy() else "SELL"
                size = abs(order.executed.size)
                price = round(order.executed.price, 2)  # its floats drift: 41703.05999999999
                trades.append((round(when.timestamp() * 1000), side, size, price))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=data, openinterest=None))
    cerebro.addstrategy(SmaCrossBT)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=FEE)
    cerebro.run()
    return trades


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds of one call, after collecting the garbage left by earlier runs."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def profile_engine(klines: list, top: int = 12) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(run_backtest, SmaCross(FAST, SLOW, str(QTY)), klines, cash=CASH)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def _first_difference(a: Trades, b: Trades) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=QUICK, help="20k bars, 3 runs")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--bars", type=int, help="number of bars (default 200k; quick 20k)")
    parser.add_argument("--repeats", type=int, help="runs of each engine (default 5; quick 3)")
    parser.add_argument("--no-save", action="store_true", help="do not write the results file")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine too")
    args = parser.parse_args(argv)
    n = args.bars or (20_000 if args.quick else 200_000)
    repeats = args.repeats or (3 if args.quick else 5)
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    frame = synthetic_frame(n, seed=1)
    klines = frame_to_klines(frame)
    vector_frame = frame.assign(ts=frame["close_time"] + 1)
    runs: dict[str, Callable[[], Any]] = {
        "event_driven_events": lambda: event_driven(klines),
        "event_driven_from_frame": lambda: event_driven(iter_frame_klines(frame)),
        "vectorised": lambda: vectorised(vector_frame),
        "backtrader": lambda: backtrader_run(frame),
    }
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    trades: dict[str, Trades | None] = {}
    from tqdm.auto import tqdm

    with tqdm(total=repeats * len(runs), desc=f"{n} bars", file=sys.stderr) as bar:
        for _ in range(repeats):  # interleaved: background load hits every engine alike
            for name, run in runs.items():
                seconds, cpu_seconds, trades[name] = timed(run)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
                bar.update()
    have_bt = trades["backtrader"] is not None
    names = [name for name in runs if have_bt or name != "backtrader"]
    reference = trades["event_driven_events"] or []
    differ = {
        name: _first_difference(reference, trades[name] or [])
        for name in names
        if trades[name] != reference
    }

    def rates(seconds: dict[str, list[float]]) -> dict[str, float]:
        return {name: n / statistics.median(seconds[name]) for name in names}

    def ratios(rate: dict[str, float]) -> dict[str, float | None]:
        bt = rate.get("backtrader")
        like_for_like = round(rate["event_driven_from_frame"] / bt, 1) if bt else None
        return {
            # The contract key carries the honest (like-for-like) figure.
            "ratio_vs_backtrader": like_for_like,
            "ratio_like_for_like": like_for_like,
            "ratio_engine_only": round(rate["event_driven_events"] / bt, 1) if bt else None,
            "vectorised_vs_event_driven": round(
                rate["vectorised"] / rate["event_driven_from_frame"], 1
            ),
        }

    wall_rate, cpu_rate = rates(wall), rates(cpu)
    result: dict[str, Any] = {
        "bars": n,
        **{f"{name}_bars_per_s": round(wall_rate[name]) for name in names},
        "event_driven_bars_per_s": round(wall_rate["event_driven_from_frame"]),
        **ratios(wall_rate),
        "cpu": {
            **{f"{name}_bars_per_s": round(cpu_rate[name]) for name in names},
            **ratios(cpu_rate),
        },
        "same_trades": not differ,
        "trades": len(reference),
        "repeats": repeats,
        "load_average": round(load, 2) if load is not None else None,
        "python": platform.python_version(),
        "data": "synthetic (mqlab.market.synthetic_frame, seed=1)",
    }
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    say(f"\nSMA({FAST}/{SLOW}) crossover on {n:,} synthetic 1m bars, median of {repeats} runs")
    say(f"(load average {result['load_average']} at the start; CPU time in brackets)")
    for name in runs:
        if name not in names:
            say(f"{name:<26}{'not installed':>16}  (pip install -e '.[bench]')")
            continue
        say(f"{name:<26}{wall_rate[name]:>14,.0f} bars/s  ({cpu_rate[name]:,.0f})")
    if have_bt:
        c = result["cpu"]
        say(
            f"vs backtrader, like for like (events built from the frame): "
            f"{result['ratio_like_for_like']}x  ({c['ratio_like_for_like']}x)"
        )
        say(f"vs backtrader, engine only (events ready-made):              "
            f"{result['ratio_engine_only']}x  ({c['ratio_engine_only']}x)")  # fmt: skip
    say(f"same trades ({result['trades']}): {not differ}")
    for name, index in differ.items():
        say(f"  {name} differs first at trade {index}")
    if not args.no_save:
        say(f"written to {RESULTS}")
    if args.profile:
        say(profile_engine(klines))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
