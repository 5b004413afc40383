"""Vectorised backtesting (向量化回测): the SMA crossover as whole-array numpy/pandas operations.

The whole price history goes in at once, and the strategy is a handful of array expressions.
It is fast and short, and one missing ``shift`` away from look-ahead bias (未来函数):

* ``signal[t]`` is decided on bar t's close (fast SMA above slow SMA);
* correct: the position held *during* bar t is ``signal[t - 1]``, entered at bar t's open;
* look-ahead: the position during bar t is ``signal[t]``, i.e. bought at bar t's open on
  the strength of a close that had not happened yet. Nothing fails; returns just look great.

The averages are compared exactly in integer ticks (``fast_sum * slow > slow_sum * fast``),
as :class:`~mqlab.strategies.SmaCross` does in Decimal, so the correct version trades on
exactly the same bars at exactly the same prices as the event-driven engine.

Public API: :func:`sma_signal`, :func:`sma_positions`, :func:`backtest_sma` →
:class:`VectorisedResult` (``trades``, ``equity``, ``stats()``), and :func:`trade_tuples` to
compare trade lists from any engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from mqlab.portfolio import max_drawdown, sharpe_ratio

__all__ = [
    "VectorisedResult",
    "backtest_sma",
    "lookahead_inflation",
    "sma_positions",
    "sma_signal",
    "stats_table",
    "trade_tuples",
]


def _ticks(close: np.ndarray, tick: float) -> np.ndarray:
    scaled = close / tick
    ticks = np.rint(scaled)
    if np.any(np.abs(scaled - ticks) > 1e-6):
        raise ValueError(f"prices are not multiples of the tick {tick}; pass tick=...")
    return ticks.astype(np.int64)


def sma_signal(close: Any, fast: int, slow: int, *, tick: float = 0.01) -> np.ndarray:
    """``signal[t]``: SMA(fast) > SMA(slow) on the closes up to and including t (False early)."""
    if not 0 < fast < slow:
        raise ValueError(f"need 0 < fast < slow, got fast={fast}, slow={slow}")
    ticks = _ticks(np.asarray(close, dtype=float), tick)
    total = np.concatenate(([0], np.cumsum(ticks)))
    n = len(ticks)
    signal = np.zeros(n, dtype=bool)
    if n >= slow:
        end = np.arange(slow, n + 1)  # windows ending at bar end-1
        fast_sum = total[end] - total[end - fast]
        slow_sum = total[end] - total[end - slow]
        signal[slow - 1 :] = fast_sum * slow > slow_sum * fast
    return signal


def sma_positions(close: Any, fast: int, slow: int, *, lookahead: bool = False) -> np.ndarray:
    """Position (1 long, 0 flat) held during each bar, entered at that bar's open.

    The correct version shifts the signal by one bar; ``lookahead=True`` forgets to.
    """
    signal = sma_signal(close, fast, slow)
    if lookahead:
        return signal.astype(np.int8)  # 未来函数: uses bar t's close to trade at bar t's open
    return np.concatenate(([0], signal[:-1])).astype(np.int8)


@dataclass
class VectorisedResult:
    """Trades (one row per fill) and the equity at each bar's close."""

    trades: pd.DataFrame  # ts (ms), side, qty, price, fee
    equity: pd.Series  # float USDT, indexed by each bar's close time (UTC)
    initial: float

    def stats(self) -> dict[str, float | int]:
        values = self.equity.to_numpy()
        times = self.equity.index.as_unit("ms").asi8
        return {
            "equity": float(values[-1]) if len(values) else self.initial,
            "total_return": float(values[-1] / self.initial - 1) if len(values) else 0.0,
            "sharpe": sharpe_ratio(values, times),
            "max_drawdown": max_drawdown(values),
            "trades": len(self.trades),
            "fees": float(self.trades["fee"].sum()),
        }


def backtest_sma(
    frame: pd.DataFrame,
    fast: int = 10,
    slow: int = 30,
    *,
    qty: float | Decimal | str = 0.1,
    cash: float = 10_000.0,
    fee: float = 0.001,
    lookahead: bool = False,
) -> VectorisedResult:
    """The SMA crossover over a frame with open_time, open, close and ts (or close_time) in ms.

    Same conventions as the event-driven run: hold ``qty`` while long, trade at the open,
    pay ``fee`` times the traded value, mark to each close. Set ``lookahead=True`` to see
    what a missing shift does.
    """
    size = float(qty)
    opens = frame["open"].to_numpy(float)
    closes = frame["close"].to_numpy(float)
    position = sma_positions(closes, fast, slow, lookahead=lookahead)
    change = np.diff(position, prepend=0).astype(float)  # +1 buy, -1 sell, at this bar's open
    value = np.abs(change) * size * opens
    fees = value * fee
    cash_path = cash + np.cumsum(-change * size * opens - fees)
    equity = cash_path + position * size * closes
    at = np.flatnonzero(change)
    trades = pd.DataFrame(
        {
            "ts": frame["open_time"].to_numpy(np.int64)[at],
            "side": np.where(change[at] > 0, "BUY", "SELL"),
            "qty": size,
            "price": opens[at],
            "fee": fees[at],
        }
    )
    close_ts = frame["ts"] if "ts" in frame else frame["close_time"] + 1
    index = pd.to_datetime(close_ts.to_numpy(np.int64), unit="ms", utc=True)
    return VectorisedResult(trades, pd.Series(equity, index=index, name="equity"), cash)


def trade_tuples(trades: pd.DataFrame) -> list[tuple[int, str, float, float]]:
    """``(ts, side, qty, price)`` per trade, as plain numbers, to compare engines exactly."""
    return [
        (int(ts), str(side), float(qty), float(price))
        for ts, side, qty, price in trades[["ts", "side", "qty", "price"]].itertuples(index=False)
    ]


def stats_table(results: dict[str, VectorisedResult]) -> str:
    """Equity, return, drawdown, trades and fees of each labelled run, one row each, printable."""
    table = pd.DataFrame([r.stats() for r in results.values()], index=list(results))
    money = "{:,.2f}".format
    return table[["equity", "total_return", "max_drawdown", "trades", "fees"]].to_string(
        formatters={
            "equity": money,
            "total_return": "{:+.2%}".format,
            "max_drawdown": "{:.2%}".format,
            "fees": money,
        }
    )


def lookahead_inflation(
    frame: pd.DataFrame,
    windows: list[tuple[int, int]],
    *,
    qty: float | Decimal | str = 0.1,
    cash: float = 10_000.0,
    fee: float = 0.0,
) -> pd.DataFrame:
    """Per (fast, slow) pair: trades and total return done correctly and with look-ahead, and
    by how much look-ahead inflates the return; indexed by "fast/slow"."""
    rows = []
    for fast, slow in windows:
        correct, peeking = (
            backtest_sma(frame, fast, slow, qty=qty, cash=cash, fee=fee, lookahead=cheating)
            for cheating in (False, True)
        )
        rows.append(
            {
                "fast/slow": f"{fast}/{slow}",
                "trades": len(correct.trades),
                "correct": correct.stats()["total_return"],
                "look-ahead": peeking.stats()["total_return"],
            }
        )
    table = pd.DataFrame(rows).set_index("fast/slow")
    table["inflation"] = table["look-ahead"] - table["correct"]
    return table
