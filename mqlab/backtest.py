"""The event-driven backtest (事件驱动回测): one event at a time, in time order, in one process.

:class:`Backtest` merges one or more time-ordered sources of market events with a heap
(``heapq``), keyed by ``recv_ts``, and drip-feeds them: the next event of a source is pulled
only after the current one has been fully handled, so with a lazy source (such as
:func:`mqlab.market.iter_binance_csv`) the future does not even exist yet while the strategy
runs. Each market event goes, in this order, to

1. the :class:`~mqlab.venue.SimulatedExchange`, which may fill orders sent earlier; those
   fills reach the portfolio and the strategy first;
2. the :class:`~mqlab.portfolio.Portfolio`, which marks to market;
3. the strategy, through the very same :meth:`~mqlab.strategy.Strategy.handle` a bus host
   calls. Its orders go to the exchange; the exchange's answers come back through the heap
   at their ``recv_ts`` (after the order latency).

So data → strategy → orders → exchange → fills → portfolio, and nothing can fill on the event
that caused it. Runs are deterministic: same data, same strategy, same fills.

The strategy can read the portfolio (``strategy.portfolio``: cash, equity, positions) to
size its orders; the backtest attaches it.

Public API: ``Backtest(strategy, *sources, cash=..., quote="USDT", exchange=...,
portfolio=..., progress=False).run()`` → :class:`BacktestResult` (``fills``, ``orders``,
``updates``, ``portfolio``, ``stats``, ``trades()``, ``summary()``, ``report()``);
:func:`run_backtest` (the same in one call); :func:`plot_equity`; :func:`draw_event_flow`.
CLI: ``python -m mqlab backtest [--data FILE] [--symbol S] [--interval I] [--quote Q]
[--strategy NAME | file.py:Class | module:Class] [--param NAME=VALUE] [--venue spot|margin]
[--leverage X] [--lot-size Q] [--json] [--plot FILE]``; it prints :mod:`mqlab.report`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from mqlab.engine import Engine, merge_sources, unsorted
from mqlab.events import Cancel, Event, Fill, Kline, MarketEvent, Order, OrderUpdate
from mqlab.portfolio import Portfolio, Stats
from mqlab.strategy import Strategy
from mqlab.venue import SimulatedExchange

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mqlab.report import Report

__all__ = [
    "DECISIONS_PER_DAY",
    "RECORDED_BENCHMARK",
    "Backtest",
    "BacktestResult",
    "DecisionCpu",
    "RecordedRun",
    "bars_per_second",
    "daily_decision_cpu",
    "draw_event_flow",
    "fee_runs",
    "plot_equity",
    "recorded_benchmark",
    "run_backtest",
    "speed_comparison",
    "timed",
]


@dataclass
class BacktestResult:
    """What a run produced, in the order it happened."""

    strategy: str
    events: int  # market events fed
    orders: list[Order | Cancel] = field(default_factory=list)
    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    portfolio: Portfolio = field(default_factory=Portfolio)
    exchange: SimulatedExchange = field(default_factory=SimulatedExchange)
    elapsed: float = 0.0  # seconds of wall time

    @property
    def stats(self) -> Stats:
        return self.portfolio.stats()

    def report(self, interval: str | None = None) -> Report:
        """The standard report (:func:`mqlab.report.build_report`) of this run."""
        from mqlab.report import build_report

        return build_report(self.portfolio, interval=interval)

    def trades(self) -> pd.DataFrame:
        """One row per fill: ts (ms), side, qty, price, fee, order_id (exact Decimals)."""
        return pd.DataFrame(
            [(f.ts, f.side.value, f.qty, f.price, f.fee, f.order_id) for f in self.fills],
            columns=["ts", "side", "qty", "price", "fee", "order_id"],
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: the stats plus counts and speed."""
        rejections = [u.reason for u in self.updates if u.status == "REJECTED"]
        return {
            "strategy": self.strategy,
            "events": self.events,
            "orders_sent": sum(isinstance(o, Order) for o in self.orders),
            "rejected": len(rejections),
            "first_rejection": rejections[0] if rejections else None,
            "fills": len(self.fills),
            **self.stats.to_dict(),
            "elapsed_s": round(self.elapsed, 4),
            "events_per_s": round(self.events / self.elapsed) if self.elapsed else None,
        }


class Backtest:
    """Drip-feed time-ordered market-event sources through exchange, portfolio and strategy."""

    def __init__(
        self,
        strategy: Strategy,
        *sources: Iterable[MarketEvent],
        cash: Decimal | str | int = 10_000,
        quote: str = "USDT",
        exchange: SimulatedExchange | None = None,
        portfolio: Portfolio | None = None,
        progress: bool = False,
        total: int | None = None,
    ) -> None:
        if not sources:
            raise ValueError("give the backtest at least one source of market events")
        self.strategy = strategy
        self.sources = sources
        self.exchange = exchange or SimulatedExchange({quote: cash}, quote=quote)
        self.portfolio = portfolio or Portfolio(cash, quote=quote)
        strategy.attach(self.portfolio)  # read-only: cash, equity, positions for sizing
        self.progress = progress
        self.total = total

    def run(self) -> BacktestResult:
        """Feed every event once; returns the fills, orders, updates and the portfolio.

        A thin driver of :class:`mqlab.engine.Engine`, which decides what happens next: this
        loop only hands each delivery to the portfolio and the strategy, and the strategy's
        requests back to the engine.
        """
        strategy, exchange, portfolio = self.strategy, self.exchange, self.portfolio
        result = BacktestResult(strategy.name, 0, portfolio=portfolio, exchange=exchange)
        orders, updates, fills = result.orders, result.updates, result.fills
        outbox: list[Order | Cancel] = []
        strategy.bind(outbox.append)
        engine = Engine(exchange)
        feed, next_delivery, submit = engine.feed, engine.next, engine.submit
        handle, on_fill, mark = strategy.handle, portfolio.on_fill, portfolio.on_market
        # Unless handle is overridden, deliver() does what it does for an answer: the
        # strategy's ``now`` (no clock is bound: recv_ts), then its book-keeping and hook.
        handled_here = type(strategy).handle is Strategy.handle
        own_fill, own_update = strategy._on_fill, strategy._on_update

        def deliver(x: Event) -> None:
            if type(x) is Fill:
                on_fill(x)
                fills.append(x)
                if handled_here:
                    strategy.now = x.recv_ts
                    own_fill(x)
                else:
                    handle(x)
            else:
                updates.append(x)  # type: ignore[arg-type]
                if handled_here and type(x) is OrderUpdate:
                    strategy.now = x.recv_ts
                    own_update(x)
                else:
                    handle(x)
            if outbox:
                orders.extend(outbox)
                submit(outbox)
                outbox.clear()

        # The loop's usual event is a Kline. Unless handle or on_market is overridden, the loop
        # does here what they do for one: the portfolio's mark, while the symbol is the one it
        # marked last, and the strategy's ``now`` (no clock is bound: recv_ts) and last event.
        # Two Python calls a bar fewer (~5 % of a bar), the same state after.
        direct = handled_here and type(portfolio).on_market is Portfolio.on_market
        on_kline = strategy.on_kline
        # Likewise the engine and the venue, while no answer is queued and no order works,
        # unless the venue's on_market is overridden (a margin account marks and may
        # liquidate on every event): two Python calls a bar fewer again, the same state after
        # but for the engine's ``event``, which nothing reads between two feeds of a run.
        quiet = type(exchange).on_market is SimulatedExchange.on_market
        heap, working, prices = engine.heap, exchange._working, exchange._last
        quiet_events = 0
        times, marks = portfolio._times, portfolio._marks
        bar = None
        if self.progress:
            with warnings.catch_warnings():  # tqdm.auto warns when ipywidgets is missing
                warnings.simplefilter("ignore")
                from tqdm.auto import tqdm

            bar = tqdm(total=self.total, unit="ev", desc=f"backtest {strategy.name}")
        started = time.perf_counter()
        try:
            with _young_collections_rarer():
                # One source (the usual case) is read directly, its order checked inline.
                single = len(self.sources) == 1
                stream = self.sources[0] if single else merge_sources(*self.sources)
                if bar is not None:  # counted on the way in: the loop below has no bar to tick
                    stream = _ticking(stream, bar)
                last = -1 << 62
                for event in stream:
                    ts = event.recv_ts
                    if ts < last and single:
                        raise unsorted(0, event, last)
                    last = ts
                    if quiet and not heap and not working:
                        # What feed() and the venue's on_market do when nothing is due
                        # and no order works (most bars): count it, note price and time.
                        quiet_events += 1
                        prices[event.symbol] = event
                        if event.ts > exchange.now:
                            exchange.now = event.ts
                    else:
                        # Even then, the event itself mostly comes straight back.
                        x: Event | None = feed(event)
                        while x is not event:
                            deliver(x)  # type: ignore[arg-type]
                            x = next_delivery()
                    if direct and type(event) is Kline:
                        if event.symbol is portfolio._marking:
                            times.append(event.ts)
                            marks.append(event.close)
                        else:
                            mark(event)
                        strategy.now = ts
                        strategy._last = event
                        on_kline(event)
                    else:
                        mark(event)
                        handle(event)
                    if outbox:
                        orders.extend(outbox)
                        submit(outbox)
                        outbox.clear()
                engine.events += quiet_events
                engine.end()
                while (y := next_delivery()) is not None:
                    deliver(y)
                if bar is not None:
                    bar.update(engine.events - bar.n)
        finally:  # a bad line in a lazy source raises mid-run: leave a tidy progress bar
            if bar is not None:
                bar.close()
        result.events = engine.events
        result.elapsed = time.perf_counter() - started
        return result


#: The garbage collector's first threshold during a run (CPython's default is 700).
_GC_YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def _young_collections_rarer(threshold: int = _GC_YOUNG_THRESHOLD) -> Iterator[None]:
    """Collect the youngest generation every ``threshold`` allocations instead of every 700,
    for the time of a run; the thresholds are restored after.

    A run allocates an event a bar and keeps its orders, updates and fills. None of them
    holds a reference cycle, but CPython's cyclic collector cannot know: every 700
    allocations it scanned the bars still waiting in their chunk, and every kept order and
    fill moved up the generations, scanned again on the way (about 3 % of a run). Young
    collections every 10,000 allocations find most bars already freed by reference
    counting. Cyclic garbage a strategy makes is still collected, a little later. (The
    thresholds are the process's: a thread running meanwhile collects less often too.)
    """
    young, *older = gc.get_threshold()
    if not 0 < young < threshold:  # 0: automatic collection is off; or already as rare
        yield
        return
    gc.set_threshold(threshold, *older)
    try:
        yield
    finally:
        gc.set_threshold(young, *older)


def _ticking(stream: Iterable[MarketEvent], bar: Any) -> Iterator[MarketEvent]:
    """``stream``, moving the progress ``bar`` on every 1,024 events."""
    for n, event in enumerate(stream, 1):
        yield event
        if not n & 1023:
            bar.update(1024)


def run_backtest(
    strategy: Strategy, *sources: Iterable[MarketEvent], **options: Any
) -> BacktestResult:
    """``Backtest(strategy, *sources, **options).run()``."""
    return Backtest(strategy, *sources, **options).run()


# --- chapter 7's comparisons -------------------------------------------------------------------

RECORDED_BENCHMARK = Path(__file__).parents[1] / "benchmarks" / "results" / "backtest.json"
DECISIONS_PER_DAY: dict[str, int] = {
    "1-hour bars": 24,
    "1-minute klines": 1_440,
    "1-second ticks": 86_400,
    "10 book updates a second": 864_000,
}


def timed(run: Callable[[], object]) -> float:
    """Seconds of wall time one call of ``run`` takes."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def bars_per_second(run: Callable[[], object], bars: int, repeats: int = 3) -> float:
    """``bars`` over the fastest of ``repeats`` calls of ``run`` (the least disturbed one)."""
    return bars / min(timed(run) for _ in range(repeats))


def speed_comparison(
    frame: pd.DataFrame,
    fast: int,
    slow: int,
    qty: Decimal | str,
    *,
    fee: float = 0.001,
    cash: float = 10**6,
    repeats: int = 3,
) -> dict[str, float]:
    """Bars per second of the SMA crossover: vectorised, event-driven, and event-driven
    counting the building of the events from ``frame`` (the like-for-like figure)."""
    from mqlab.market import frame_to_klines, iter_frame_klines
    from mqlab.strategies import SmaCross
    from mqlab.vectorised import backtest_sma

    events = frame_to_klines(frame)
    runs: dict[str, Callable[[], object]] = {
        "vectorised": lambda: backtest_sma(frame, fast, slow, qty=qty, fee=fee, cash=cash),
        "event-driven": lambda: run_backtest(SmaCross(fast, slow, qty), events, cash=cash),
        "event-driven, building events": lambda: run_backtest(
            SmaCross(fast, slow, qty), iter_frame_klines(frame), cash=cash
        ),
    }
    return {name: bars_per_second(run, len(frame), repeats) for name, run in runs.items()}


@dataclass(frozen=True)
class RecordedRun:
    """The last recorded ``benchmarks/backtest.py`` run, in CPU time (bars per second)."""

    bars: int
    python: str
    load_average: float | None
    same_trades: bool
    backtrader_feed: str  # "fastest" (newer runs), or "PandasData" (the first runs)
    backtrader: int
    from_frame: int  # ours, building the events from the frame
    events: int  # ours, fed ready-made events
    like_for_like: float  # from_frame / backtrader
    engine_only: float  # events / backtrader
    #: Other peers timed beside: name -> (bars/s, how many times as fast ours from the frame is)
    others: dict[str, tuple[int, float]] = field(default_factory=dict)


def recorded_benchmark(path: str | Path = RECORDED_BENCHMARK) -> RecordedRun | None:
    """The last recorded run against backtrader (``benchmarks/results/backtest.json``), or
    None if none is recorded (``python benchmarks/backtest.py --quick`` records one)."""
    path = Path(path)
    r = json.loads(path.read_text()) if path.exists() else {}
    cpu = r.get("cpu", {})
    if not cpu.get("backtrader_bars_per_s"):
        return None
    others = {
        name: (cpu[f"{name}_bars_per_s"], cpu[ratio])
        for name, ratio in (
            ("backtrader_pandasdata", "ratio_like_for_like_pandasdata"),
            ("backtesting", "ratio_vs_backtesting"),
        )
        if cpu.get(f"{name}_bars_per_s")
    }
    return RecordedRun(
        bars=r["bars"],
        python=r["python"],
        load_average=r.get("load_average"),
        same_trades=r["same_trades"],
        # Newer runs time backtrader with its fastest feed, and PandasData beside it.
        backtrader_feed="fastest" if "backtrader_pandasdata" in others else "PandasData",
        # The headline ratios are against backtrader's fastest feed in that run (newer runs
        # name it; older ones took the list feed as the fastest).
        backtrader=cpu.get("backtrader_fastest_bars_per_s") or cpu["backtrader_bars_per_s"],
        from_frame=cpu["event_driven_from_frame_bars_per_s"],
        events=cpu["event_driven_events_bars_per_s"],
        like_for_like=cpu["ratio_like_for_like"],
        engine_only=cpu["ratio_engine_only"],
        others=others,
    )


def fee_runs(
    make_strategy: Callable[[], Strategy],
    events: Sequence[MarketEvent],
    fees: Iterable[str] = ("0", "0.001"),
    *,
    cash: Decimal | str | int = 50_000,
) -> dict[str, BacktestResult]:
    """One backtest per taker fee, each with a fresh strategy and a fresh simulated exchange
    holding ``cash`` USDT; keyed by the fee as given."""
    return {
        fee: run_backtest(
            make_strategy(),
            events,
            cash=cash,
            exchange=SimulatedExchange({"USDT": cash}, taker_fee=fee),
        )
        for fee in fees
    }


@dataclass(frozen=True)
class DecisionCpu:
    """A day of decisions at one data rate, and the CPU seconds each way of deciding costs."""

    label: str
    decisions: int
    vectorised_s: float  # re-running the vectorised backtest for every decision
    event_driven_s: float  # answering one event per decision


def daily_decision_cpu(
    rerun: float, per_event: float, per_day: dict[str, int] = DECISIONS_PER_DAY
) -> list[DecisionCpu]:
    """CPU seconds a day of decisions costs: re-running a vectorised backtest (``rerun``
    seconds each) against answering one event (``per_event`` seconds each)."""
    return [DecisionCpu(label, n, n * rerun, n * per_event) for label, n in per_day.items()]


# --- figures -----------------------------------------------------------------------------------


def plot_equity(
    curves: dict[str, pd.Series] | BacktestResult,
    path: str | Path | None = None,
    *,
    title: str = "Equity curve",
    ax: Axes | None = None,
    quote: str | None = None,
) -> Axes:
    """Plot one or more equity curves (in ``quote``, default USDT, or the result's own quote,
    over time); save a PNG if ``path`` is given."""
    import matplotlib.pyplot as plt

    if isinstance(curves, BacktestResult):
        quote = quote or curves.portfolio.quote
        curves = {curves.strategy: curves.portfolio.equity_curve()}
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4))
    for label, curve in curves.items():
        ax.plot(curve.index, curve.to_numpy(), label=label, lw=1.2)
    ax.set(title=title, xlabel="time (UTC)", ylabel=f"equity ({quote or 'USDT'})")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    figure = cast("Figure", ax.figure)  # a plain Figure: we never draw into subfigures
    figure.autofmt_xdate()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110, bbox_inches="tight")
    return ax


def draw_event_flow(ax: Axes | None = None) -> Axes:
    """The engine as events flowing: data → strategy → orders → exchange → fills → portfolio."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 5))
    boxes = {
        (0.13, 0.50): "market data\nKline · OrderBook · Trade\n(drip-fed, time order)",
        (0.50, 0.84): "Strategy.handle(event)\non_kline, on_orderbook ...\n→ buy / sell / cancel",
        (0.87, 0.50): "SimulatedExchange\non_order, on_market\nmatching, fees, latency",
        (0.50, 0.16): "Portfolio\non_fill, on_market\ncash, PnL, equity curve",
    }
    for (x, y), text in boxes.items():
        ax.text(
            x,
            y,
            text,
            ha="center",
            va="center",
            fontsize=9.5,
            linespacing=1.5,
            bbox={"boxstyle": "round,pad=0.6", "fc": "#e8f0fe", "ec": "#3461c1", "lw": 1.4},
        )
    arrows = [  # (start, end, label, label position, colour, curvature)
        ((0.15, 0.62), (0.35, 0.84), "1. one event", (0.18, 0.76), "#1f5fbf", 0.0),
        ((0.65, 0.87), (0.86, 0.63), "2. Order", (0.80, 0.82), "#1f5fbf", 0.0),
        ((0.87, 0.37), (0.65, 0.16), "3. Fill\n(on a later event)", (0.82, 0.22), "#1f5fbf", 0.0),
        ((0.82, 0.63), (0.65, 0.79), "OrderUpdate, Fill", (0.68, 0.67), "#777", 0.0),
        ((0.28, 0.50), (0.72, 0.50), "prices to match against", (0.50, 0.53), "#777", 0.0),
        ((0.13, 0.38), (0.35, 0.16), "prices to mark to", (0.16, 0.22), "#777", 0.0),
    ]
    for start, end, label, where, colour, rad in arrows:
        ax.annotate(
            "",
            xy=end,
            xytext=start,
            arrowprops={
                "arrowstyle": "-|>",
                "lw": 1.6,
                "color": colour,
                "mutation_scale": 14,
                "connectionstyle": f"arc3,rad={rad}",
            },
        )
        ax.text(*where, label, ha="center", va="center", fontsize=9, color=colour)
    ax.set(xlim=(-0.02, 1.02), ylim=(0.0, 1.0))
    ax.set_title("The event-driven engine: events flow one at a time", fontsize=11)
    ax.axis("off")
    return ax
