"""Chapter 07 checks: vectorised without look-ahead; an event-driven strategy of your own.

- :func:`check_vectorised_trades`: ``vectorised_trades(frame, fast, slow)`` must list the SMA
  crossover's trades (ts, side, price) exactly as the event-driven engine makes them: at the
  open of the bar *after* the signal. A missing shift (未来函数) is caught and named.
- :func:`check_breakout`: a :class:`~mqlab.strategy.Strategy` subclass ``Breakout(n, qty)``
  that buys when a bar closes above the highest high of the previous ``n`` bars and sells
  when one closes below their lowest low. The engine runs it on data it has not seen, and
  its orders are compared with the rule's.

Both raise :class:`~mqlab.exercises.ExerciseError` with a hint; a notebook submits an answer
with :func:`mqlab.exercises.submit`, which shows the verdict instead of raising.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pandas as pd

from mqlab.backtest import run_backtest
from mqlab.events import Order, OrderType, Side
from mqlab.exercises import ExerciseError, Verdict, expect, passed
from mqlab.market import klines_to_frame, synthetic_klines
from mqlab.strategies import SmaCross
from mqlab.strategy import Strategy

__all__ = ["check_breakout", "check_vectorised_trades"]

_CASH = 1_000_000  # no order is refused for want of cash: only the rule decides


def _rows(trades: Any) -> list[tuple[int, str, float]]:
    frame = pd.DataFrame(trades)
    missing = {"ts", "side", "price"} - set(frame.columns)
    expect(
        not missing,
        f"the result lacks column(s) {sorted(missing)}",
        "return a DataFrame with columns ts (the bar's open_time, ms), side ('BUY'/'SELL') "
        "and price",
    )
    return [
        (int(ts), str(side).upper(), float(price))
        for ts, side, price in frame[["ts", "side", "price"]].itertuples(index=False)
    ]


def check_vectorised_trades(vectorised_trades: Callable[[pd.DataFrame, int, int], Any]) -> Verdict:
    """Compare ``vectorised_trades(frame, fast, slow)`` with the event-driven engine's trades."""
    for seed, fast, slow in ((71, 10, 30), (72, 5, 20)):
        klines = synthetic_klines(2000, seed=seed)
        frame = klines_to_frame(klines)
        engine = run_backtest(SmaCross(fast, slow), klines, cash=_CASH).fills
        want = [(f.ts, f.side.value, float(f.price)) for f in engine]
        got = _rows(vectorised_trades(frame.copy(), fast, slow))
        bar = {int(t): i for i, t in enumerate(frame["open_time"])}
        if got and want and got[0][0] in bar and bar[got[0][0]] == bar[want[0][0]] - 1:
            raise ExerciseError(
                f"your first trade is on bar {bar[got[0][0]]}, the engine's on bar "
                f"{bar[want[0][0]]}: you trade at the open of the bar whose close made the "
                "signal. That is look-ahead bias (未来函数).",
                "the position held during bar t may only use closes up to t-1: shift(1)",
            )
        expect(
            len(got) == len(want),
            f"{len(got)} trades, the event-driven engine made {len(want)} "
            f"(fast={fast}, slow={slow})",
            "one trade each time the position changes: BUY when it goes 0→1, SELL when 1→0",
        )
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            expect(
                g == w,
                f"trade {i}: yours is {g}, the engine's is {w}",
                "trade at the *open* of the bar after the signal (ts = that bar's open_time)",
            )
    return passed("vectorised_trades", "same trades as the event-driven engine, no 未来函数")


def _breakout_orders(frame: pd.DataFrame, n: int) -> list[tuple[int, Side]]:
    """The rule, computed over whole arrays: what a correct Breakout must send."""
    high, low, close = (frame[c].to_numpy(float) for c in ("high", "low", "close"))
    prev_high = pd.Series(high).rolling(n).max().shift(1).to_numpy()
    prev_low = pd.Series(low).rolling(n).min().shift(1).to_numpy()
    orders, long = [], False
    for i in range(n, len(close)):
        if not long and close[i] > prev_high[i]:
            long = True
            orders.append((i, Side.BUY))
        elif long and close[i] < prev_low[i]:
            long = False
            orders.append((i, Side.SELL))
    return orders


def check_breakout(breakout: Callable[..., Strategy]) -> Verdict:
    """Run ``breakout(n=..., qty=Decimal("0.1"))`` in the engine and compare its orders."""
    expect(
        isinstance(breakout, type) and issubclass(breakout, Strategy),
        f"expected a Strategy subclass, got {breakout!r}",
        "class Breakout(Strategy): ... with on_kline(self, kline)",
    )
    for seed, n in ((73, 20), (74, 7)):
        klines = synthetic_klines(3000, seed=seed)
        frame = klines_to_frame(klines)
        try:
            strategy = breakout(n=n, qty=Decimal("0.1"))
        except TypeError as exc:
            raise ExerciseError(
                f"Breakout(n={n}, qty=Decimal('0.1')) failed: {exc}",
                "take n and qty in __init__: def __init__(self, n=20, qty=Decimal('0.1'))",
            ) from None
        result = run_backtest(strategy, klines, cash=_CASH)
        index = {k.recv_ts: i for i, k in enumerate(klines)}
        sent = [o for o in result.orders if isinstance(o, Order)]
        expect(
            all(o.type is OrderType.MARKET and o.qty == Decimal("0.1") for o in sent),
            "an order that is not a market order of qty",
            "send market orders of qty: self.buy(self.qty) / self.sell(self.qty)",
        )
        got = [(index[o.ts], o.side) for o in sent]
        want = _breakout_orders(frame, n)
        expect(
            bool(got) or not want,
            f"no orders at all (n={n}); the rule buys {len(want)} times on this data",
            "compare the close with the highs of the *previous* n bars: a bar's close can "
            "never be above its own high, so don't include the current bar in the window",
        )
        buys = [i for i, side in got if side is Side.BUY]
        expect(
            len(buys) <= len([s for _, s in got if s is Side.SELL]) + 1,
            f"{len(buys)} buys but only {len(got) - len(buys)} sells: you buy again while "
            "already long",
            "keep a flag (self.long) and buy only when flat, sell only when long",
        )
        for k, (g, w) in enumerate(zip(got, want, strict=False)):
            expect(
                g == w,
                f"order {k} (n={n}): yours is {g[1].value} on bar {g[0]}, the rule's is "
                f"{w[1].value} on bar {w[0]}",
                "the window is the n bars *before* this one; decide, then add this bar",
            )
        expect(
            len(got) == len(want),
            f"{len(got)} orders (n={n}), the rule sends {len(want)}",
            "wait until n previous bars have been seen before deciding",
        )
        decided = {o.id: o.ts for o in sent}
        expect(
            bool(result.fills) and all(f.recv_ts > decided[f.order_id] for f in result.fills),
            "no fills, or a fill not later than its order",
            "orders must reach the exchange: use self.buy / self.sell",
        )
    return passed("Breakout", "same orders as the rule; every fill on a later bar")
