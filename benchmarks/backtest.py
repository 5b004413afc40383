"""The same SMA crossover, same bars: our event-driven engine, our vectorised version,
backtrader (with its fastest feed, and with ``PandasData``) and backtesting.py.

    python benchmarks/backtest.py                 # 200k bars, 5 interleaved repeats
    python benchmarks/backtest.py --quick --json  # 20k bars, 3 repeats; JSON on stdout
    python benchmarks/backtest.py --profile       # and cProfile the engine's hot path

It writes ``benchmarks/results/backtest.json`` unless ``--no-save`` is given, and prints
(and records) the command that produced it.

backtrader and backtesting.py come with the bench extra: ``pip install -e '.[bench]'``.
Without them, their figures are null and ``same_trades`` compares the others only.

How the conventions are aligned, so that all of them must make the same trades:

* data: one synthetic series (``mqlab.market.synthetic_frame``, labelled synthetic), as
  ``Kline`` events for us, as a backtrader feed, and as backtesting.py's OHLCV frame;
* signal: long 0.1 BTC while SMA(10) > SMA(30) of closes, flat otherwise, decided on a close,
  first on bar 30 (backtrader: ``bt.ind.SMA`` and ``next()``; backtesting.py: the signal as
  one ``self.I`` indicator, because with the two SMAs as indicators it would begin a bar
  later, at its "warm-up + 1");
* execution: market orders fill at the next bar's open (backtrader's default, backtesting.py's
  ``trade_on_close=False``), an order on the last bar never fills;
* sizing and costs: fixed size 0.1 (backtesting.py trades whole units, so it runs as
  ``FractionalBacktest`` with ``fractional_unit=0.1``, its documented way to trade fractions),
  commission 0.1 % of traded value (our taker fee), 1,000,000 USDT of cash so no order is
  ever refused for margin;
* the others' execution prices carry float noise (41703.05999999999 for 41703.06), so they
  are rounded to the 0.01 tick before the trades are compared;
* backtrader runs with its defaults (preload, runonce) and ``stdstats=False`` (no observers),
  the fastest way to run it, while our engine still records an equity point per bar.

backtrader's feeds. ``PandasData`` (what the first version of this benchmark used) reads the
frame cell by cell; its fast paths are ``PandasDirectData`` (rows from ``itertuples``) and a
feed of plain lists (a ``DataBase`` subclass whose ``_load`` copies one row from lists, the
pattern its docs give for new feeds). All three are timed from the same DataFrame, and the
headline ratios are taken against whichever was fastest in the run (usually the list feed,
but ``PandasDirectData`` has won some runs; ``backtrader_fastest_feed`` names it); the others'
ratios are reported beside it.

What is timed, so that the ratios compare like with like:

* each peer starts from the DataFrame: backtrader's time includes building its feed and
  loading it into its lines, backtesting.py's includes renaming the columns, its
  ``FractionalBacktest`` and ``run()`` (which ends by computing its statistics: it cannot be
  told not to);
* ``event_driven_from_frame`` starts from the same DataFrame too: its time includes building
  the ``Kline`` events (``mqlab.market.iter_frame_klines``, a chunk at a time as the engine
  pulls them; each bar's close and open are exact Decimals at once, its high, low and volumes
  when first read), so ``ratio_like_for_like`` is the honest comparison
  (``ratio_vs_backtrader`` and ``event_driven_bars_per_s`` carry this figure);
* ``event_driven_events`` is the engine fed ready-made events, the form a message bus
  delivers them in; ``ratio_engine_only`` flatters us, since the peers' loading is in their
  time and our building is not;
* every run ends by listing its trades, and all of them must agree (``same_trades``).

Timing: the fixtures (frame, ready-made events) are built first and frozen out of the garbage
collector's scans (``gc.freeze()``); one untimed warm-up run of each follows, then the runs
are interleaved, each after a ``gc.collect()`` so that none pays for the garbage of the one
before, and the median of
``--repeats`` is reported, both in wall time (``*_bars_per_s``, ``ratio_*``) and in the
process's CPU time (``cpu``), which other load on a shared machine disturbs less. The load
average at the start and at the end is recorded.
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
import shlex
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


def backtrader_run(frame: Any, feed: str = "lists") -> Trades | None:
    """backtrader from the DataFrame, with one of its feeds: ``lists`` (usually the fastest),
    ``direct`` (``PandasDirectData``) or ``pandas`` (``PandasData``)."""
    try:
        import backtrader as bt
    except ImportError:
        return None
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
    cerebro.adddata(_backtrader_feed(bt, frame, feed))
    cerebro.addstrategy(SmaCrossBT)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=FEE)
    cerebro.run()
    return trades


def _backtrader_feed(bt: Any, frame: Any, feed: str) -> Any:
    if feed == "pandas":  # reads the frame cell by cell
        data = frame.assign(datetime=frame["open_time"].astype("datetime64[ms]"))
        return bt.feeds.PandasData(dataname=data.set_index("datetime"), openinterest=None)
    if feed == "direct":  # rows from itertuples; the index is column 0, then OHLCV
        data = frame.assign(datetime=frame["open_time"].astype("datetime64[ms]"))
        ohlcv = data.set_index("datetime")[["open", "high", "low", "close", "volume"]]
        return bt.feeds.PandasDirectData(dataname=ohlcv, openinterest=-1)

    class ListData(bt.feed.DataBase):  # one row a _load() from plain lists
        def start(self) -> None:
            super().start()
            self._row = -1

        def _load(self) -> bool:
            i = self._row = self._row + 1
            if i >= len(times):
                return False
            lines = self.lines
            lines.datetime[0] = times[i]
            lines.open[0], lines.high[0] = opens[i], highs[i]
            lines.low[0], lines.close[0], lines.volume[0] = lows[i], closes[i], volumes[i]
            return True

    # backtrader's clock: days since 0001-01-01 as a float (date2num); 1970-01-01 is day 719163
    times = (frame["open_time"].to_numpy() / 86_400_000 + 719_163.0).tolist()
    opens, highs, lows, closes, volumes = (
        frame[c].tolist() for c in ("open", "high", "low", "close", "volume")
    )
    return ListData()


def backtesting_run(frame: Any) -> Trades | None:
    """backtesting.py from the DataFrame: the same rule as one signal indicator."""
    try:
        import warnings

        import numpy as np
        import pandas as pd
        from backtesting import Strategy
        from backtesting.lib import FractionalBacktest
    except ImportError:
        return None
    unit = QTY  # it trades whole units: one unit of 0.1 BTC

    def signal(close: Any) -> Any:  # SMA(fast) > SMA(slow); False while either is unknown
        closes = pd.Series(close)
        return (closes.rolling(FAST).mean() > closes.rolling(SLOW).mean()).to_numpy()

    class SmaCrossBP(Strategy):
        def init(self) -> None:
            self.above = self.I(signal, self.data.Close)

        def next(self) -> None:
            if self.above[-1]:
                if not self.position:
                    self.buy(size=1)
            elif self.position:
                self.position.close()

    data = frame.rename(
        columns={"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}
    ).set_index(pd.DatetimeIndex(frame["open_time"].astype("datetime64[ms]")))
    import backtesting.backtesting

    # Its run() draws a tqdm bar; without one it runs (a little) faster, as ours does.
    backtesting.backtesting._tqdm = lambda seq, **_: seq  # type: ignore[attr-defined]
    with warnings.catch_warnings():  # "some trades remain open": as ours, it is left open
        warnings.simplefilter("ignore")
        test = FractionalBacktest(
            data, SmaCrossBP, cash=CASH, commission=FEE, fractional_unit=unit, finalize_trades=False
        )
        result = test.run()
    strategy = result["_strategy"]
    trades: Trades = []
    for t in [*strategy.closed_trades, *strategy.trades]:  # its own units and scaled prices
        entry = (np.datetime64(t.entry_time, "ms").astype(int).item(), "BUY")
        trades.append((*entry, QTY, float(round(t.entry_price / unit, 2))))
        if t.exit_time is not None:
            exit_ = (np.datetime64(t.exit_time, "ms").astype(int).item(), "SELL")
            trades.append((*exit_, QTY, float(round(t.exit_price / unit, 2))))
    return sorted(trades)


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


#: The peers, as (run name, label); ``backtrader`` is its list feed, usually the fastest.
PEERS = {
    "backtrader": "backtrader, list feed",
    "backtrader_pandasdirect": "backtrader, PandasDirectData",
    "backtrader_pandasdata": "backtrader, PandasData",
    "backtesting": "backtesting.py (FractionalBacktest)",
}
#: backtrader's feeds; the headline ratios are taken against the fastest of them in each run.
BACKTRADER_FEEDS = ("backtrader", "backtrader_pandasdirect", "backtrader_pandasdata")


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
    if n < SLOW + 2 or repeats < 1:
        parser.error(f"need --bars >= {SLOW + 2} and --repeats >= 1")
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    given = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/backtest.py", *given])

    frame = synthetic_frame(n, seed=1)
    klines = frame_to_klines(frame)
    vector_frame = frame.assign(ts=frame["close_time"] + 1)
    # The fixtures (the frame, n ready-made events) live through every run. Frozen, they are
    # left out of the garbage collector's full scans, so that no engine pays for scanning
    # them (at 200k bars they cost whichever run triggered those scans about 13 %).
    gc.collect()
    gc.freeze()
    runs: dict[str, Callable[[], Any]] = {
        "event_driven_events": lambda: event_driven(klines),
        "event_driven_from_frame": lambda: event_driven(iter_frame_klines(frame)),
        "vectorised": lambda: vectorised(vector_frame),
        "backtrader": lambda: backtrader_run(frame, "lists"),
        "backtrader_pandasdirect": lambda: backtrader_run(frame, "direct"),
        "backtrader_pandasdata": lambda: backtrader_run(frame, "pandas"),
        "backtesting": lambda: backtesting_run(frame),
    }
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    trades: dict[str, Trades | None] = {}
    from tqdm.auto import tqdm

    with tqdm(total=(repeats + 1) * len(runs), desc=f"{n} bars", file=sys.stderr) as bar:
        for name, run in runs.items():  # warm-up: imports, caches, first-call costs
            trades[name] = run()
            bar.update()
        for _ in range(repeats):  # interleaved: background load hits every engine alike
            for name, run in runs.items():
                if trades[name] is None:  # not installed
                    bar.update()
                    continue
                seconds, cpu_seconds, trades[name] = timed(run)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
                bar.update()
    names = [name for name in runs if trades[name] is not None]
    reference = trades["event_driven_events"] or []
    differ = {
        name: _first_difference(reference, trades[name] or [])
        for name in names
        if trades[name] != reference
    }

    def rates(seconds: dict[str, list[float]]) -> dict[str, float]:
        return {name: n / statistics.median(seconds[name]) for name in names}

    def fastest_backtrader(rate: dict[str, float]) -> str | None:
        """The backtrader feed that ran fastest in this run: the list feed usually, but
        PandasDirectData has won some runs, and the headline must not flatter us."""
        feeds = [name for name in BACKTRADER_FEEDS if name in rate]
        return max(feeds, key=rate.__getitem__) if feeds else None

    def ratios(rate: dict[str, float]) -> dict[str, Any]:
        ours, events = rate["event_driven_from_frame"], rate["event_driven_events"]

        def vs(peer: str | None, mine: float = ours) -> float | None:
            return round(mine / rate[peer], 1) if peer is not None and peer in rate else None

        fastest = fastest_backtrader(rate)
        return {
            "backtrader_fastest_feed": fastest,
            "backtrader_fastest_bars_per_s": round(rate[fastest]) if fastest else None,
            # The contract key carries the honest figure: like for like, against
            # whichever backtrader feed was fastest in this run.
            "ratio_vs_backtrader": vs(fastest),
            "ratio_like_for_like": vs(fastest),
            "ratio_engine_only": vs(fastest, events),
            "ratio_like_for_like_lists": vs("backtrader"),
            "ratio_like_for_like_pandasdata": vs("backtrader_pandasdata"),
            "ratio_like_for_like_pandasdirect": vs("backtrader_pandasdirect"),
            "ratio_vs_backtesting": vs("backtesting"),
            "ratio_engine_only_vs_backtesting": vs("backtesting", events),
            "vectorised_vs_event_driven": round(rate["vectorised"] / ours, 1),
        }

    wall_rate, cpu_rate = rates(wall), rates(cpu)
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
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
        "warm_up_runs": 1,
        "load_average": round(load, 2) if load is not None else None,
        "load_average_end": round(load_end, 2) if load_end is not None else None,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": _versions(),
        "data": "synthetic (mqlab.market.synthetic_frame, seed=1)",
        "command": command,
    }
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    say(f"\n$ {command}")
    say(f"SMA({FAST}/{SLOW}) crossover on {n:,} synthetic 1m bars, median of {repeats} runs")
    say(f"(1 warm-up run each; load average {result['load_average']} at the start, ")
    say(
        f" {result['load_average_end']} at the end, on {result['cpus']} CPUs; CPU time in brackets)"
    )
    labels = {
        "event_driven_events": "ours, fed ready-made events",
        "event_driven_from_frame": "ours, building events from the frame",
        "vectorised": "ours, vectorised (numpy)",
        **PEERS,
    }
    for name in runs:
        if name not in names:
            say(f"{labels[name]:<40}{'not installed':>14}  (pip install -e '.[bench]')")
            continue
        say(f"{labels[name]:<40}{wall_rate[name]:>14,.0f} bars/s  ({cpu_rate[name]:,.0f})")
    c = result["cpu"]
    fastest = PEERS.get(result["backtrader_fastest_feed"] or "", "?").removeprefix("backtrader, ")
    rows = [
        (f"vs backtrader, fastest feed ({fastest}), like for like", "ratio_like_for_like"),
        (f"vs backtrader, fastest feed ({fastest}), engine only", "ratio_engine_only"),
        ("vs backtrader, list feed, like for like", "ratio_like_for_like_lists"),
        ("vs backtrader, PandasDirectData, like for like", "ratio_like_for_like_pandasdirect"),
        ("vs backtrader, PandasData, like for like", "ratio_like_for_like_pandasdata"),
        ("vs backtesting.py, like for like", "ratio_vs_backtesting"),
        ("vs backtesting.py, engine only", "ratio_engine_only_vs_backtesting"),
    ]
    for label, key in rows:
        if result[key] is not None:
            say(f"{label:<58}{result[key]:>6}x  ({c[key]}x)")
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


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for package in ("backtrader", "backtesting", "numpy", "pandas"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


if __name__ == "__main__":
    sys.exit(main())
