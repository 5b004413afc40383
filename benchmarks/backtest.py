"""The same SMA crossover, same bars: our event-driven engine, our vectorised version, backtrader.

    python benchmarks/backtest.py                 # 200k bars, 5 interleaved repeats
    python benchmarks/backtest.py --quick --json  # 20k bars, 3 repeats; JSON on stdout
    python benchmarks/backtest.py --profile       # and cProfile the engine's hot path

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

Timing: repeats are interleaved and the median is reported. ``event_driven_bars_per_s`` is
the engine fed ready-made events, the form a bus delivers them in; backtrader's figure
includes loading its feed from the DataFrame, so ``event_driven_with_decode_bars_per_s``
and ``ratio_with_decode`` also count building the events from the same DataFrame.
Results are also written to ``benchmarks/results/backtest.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from concurrency_lab import QUICK
from mqlab.backtest import run_backtest
from mqlab.market import frame_to_klines, synthetic_frame
from mqlab.strategies import SmaCross
from mqlab.vectorised import backtest_sma, trade_tuples

FAST, SLOW, QTY, FEE, CASH = 10, 30, 0.1, 0.001, 1_000_000
RESULTS = Path(__file__).parent / "results" / "backtest.json"

Trades = list[tuple[int, str, float, float]]


def event_driven(klines: list) -> Trades:
    result = run_backtest(SmaCross(FAST, SLOW, str(QTY)), klines, cash=CASH)
    return trade_tuples(result.trades())


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


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def profile_engine(klines: list, top: int = 12) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(run_backtest, SmaCross(FAST, SLOW, str(QTY)), klines, cash=CASH)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=QUICK, help="20k bars, 3 runs")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument("--bars", type=int, help="number of bars (default 200k; quick 20k)")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine too")
    args = parser.parse_args(argv)
    n = args.bars or (20_000 if args.quick else 200_000)
    repeats = 3 if args.quick else 5
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print

    frame = synthetic_frame(n, seed=1)
    klines = frame_to_klines(frame)
    vector_frame = frame.assign(ts=frame["close_time"] + 1)
    runs: dict[str, Callable[[], Any]] = {
        "event_driven": lambda: event_driven(klines),
        "event_driven_with_decode": lambda: event_driven(frame_to_klines(frame)),
        "vectorised": lambda: vectorised(vector_frame),
        "backtrader": lambda: backtrader_run(frame),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    trades: dict[str, Trades | None] = {}
    from tqdm.auto import tqdm

    with tqdm(total=repeats * len(runs), desc=f"{n} bars", file=sys.stderr) as bar:
        for _ in range(repeats):  # interleaved: background load hits every engine alike
            for name, run in runs.items():
                seconds, trades[name] = timed(run)
                times[name].append(seconds)
                bar.update()
    rate = {name: n / statistics.median(t) for name, t in times.items()}
    have_bt = trades["backtrader"] is not None
    same = trades["event_driven"] == trades["vectorised"]
    if have_bt:
        same = same and trades["event_driven"] == trades["backtrader"]
    result: dict[str, Any] = {
        "bars": n,
        "event_driven_bars_per_s": round(rate["event_driven"]),
        "vectorised_bars_per_s": round(rate["vectorised"]),
        "backtrader_bars_per_s": round(rate["backtrader"]) if have_bt else None,
        "ratio_vs_backtrader": round(rate["event_driven"] / rate["backtrader"], 1)
        if have_bt
        else None,
        "same_trades": same,
        "trades": len(trades["event_driven"] or []),
        "event_driven_with_decode_bars_per_s": round(rate["event_driven_with_decode"]),
        "ratio_with_decode": round(rate["event_driven_with_decode"] / rate["backtrader"], 1)
        if have_bt
        else None,
        "vectorised_vs_event_driven": round(rate["vectorised"] / rate["event_driven"], 1),
        "repeats": repeats,
        "python": platform.python_version(),
        "data": "synthetic (mqlab.market.synthetic_frame, seed=1)",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    say(f"\nSMA({FAST}/{SLOW}) crossover on {n} synthetic 1m bars, median of {repeats} runs")
    for name in runs:
        if name == "backtrader" and not have_bt:
            say(f"{name:<26}{'not installed':>16}  (pip install -e '.[bench]')")
            continue
        say(f"{name:<26}{rate[name]:>16,.0f} bars/s")
    if have_bt:
        say(f"event-driven vs backtrader: {result['ratio_vs_backtrader']}x "
            f"({result['ratio_with_decode']}x counting event decoding)")  # fmt: skip
    say(f"same trades ({result['trades']}): {same}")
    if not same:
        for name in ("vectorised", "backtrader"):
            other = trades[name]
            if other is not None and other != trades["event_driven"]:
                diff = next(
                    (
                        i
                        for i, (a, b) in enumerate(zip(trades["event_driven"], other, strict=False))
                        if a != b
                    ),
                    min(len(other), len(trades["event_driven"] or [])),
                )
                say(f"  {name} differs first at trade {diff}")
    say(f"written to {RESULTS}")
    if args.profile:
        say(profile_engine(klines))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
