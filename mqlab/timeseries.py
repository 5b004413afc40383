"""A time-series factor (时序因子) on one instrument, vectorised and event-driven; and how each
style decides live.

The seed frames the two ways of backtesting around *a time-series factor*: a number computed
from one instrument's own history at each bar, judged by how well it predicts that
instrument's next move. Here the factor is ``n``-bar momentum, the close minus the close
``n`` bars earlier, and the judgement is its **information coefficient** (IC, 信息系数): the
correlation between the factor at bar t and the next bar's price change, with the **hit
rate**, how often their signs agree.

* :func:`evaluate_vectorised` computes both with whole-array operations on the closes;
* :class:`FactorRecorder` is a :class:`~mqlab.strategy.Strategy` that sees one kline at a time
  in the event-driven engine, keeps only the last ``n + 1`` closes, and pairs each factor
  value with the change that follows it when the next kline arrives.

Both count in integer ticks and keep exact integer sums, then turn the same sums into the IC
with the same function, so the two results are equal to the last bit, not merely close.

:class:`RollingSignal` and :func:`live_decision_costs` are for the other half of the
comparison: a vectorised strategy trading live does not re-run the whole history at every
bar; it keeps a rolling window of the last ``slow`` closes and re-runs its research code on
that window. Its cost per decision does not grow with the history, like the event-driven one.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from mqlab.events import Cancel, Kline, Order
from mqlab.strategy import Strategy
from mqlab.vectorised import _ticks, sma_signal

__all__ = [
    "FactorEvaluation",
    "FactorRecorder",
    "RollingSignal",
    "evaluate_event_driven",
    "evaluate_vectorised",
    "live_decision_costs",
]


@dataclass(frozen=True)
class FactorEvaluation:
    """How well a factor predicted the next bar: IC, hit rate, and the pairs they rest on."""

    ic: float  # Pearson correlation of factor[t] with close[t+1] - close[t]
    hit_rate: float  # share of pairs, both non-zero, whose signs agree
    pairs: int  # (factor, next change) pairs evaluated
    factor: tuple[int, ...]  # the factor at each bar from bar n on, in ticks


def _from_sums(
    n: int, sf: int, sr: int, sff: int, srr: int, sfr: int, hits: int, signed: int
) -> tuple[float, float]:
    """IC and hit rate from exact integer sums: both styles call this, so they agree exactly."""
    cov = n * sfr - sf * sr
    var_f, var_r = n * sff - sf * sf, n * srr - sr * sr
    ic = cov / math.sqrt(var_f * var_r) if var_f > 0 and var_r > 0 else float("nan")
    return ic, hits / signed if signed else float("nan")


def _to_ticks(price: Decimal, tick: Decimal) -> int:
    """An exact price as a whole number of ticks; a price between ticks is refused."""
    value = price / tick
    if value != value.to_integral_value():
        raise ValueError(f"price {price} is not a multiple of the tick {tick}")
    return int(value)


def evaluate_vectorised(close: Any, n: int, *, tick: Decimal = Decimal("0.01")) -> FactorEvaluation:
    """IC and hit rate of ``n``-bar momentum against the next bar's change, whole arrays at once.

    ``close`` is any array of closes (a DataFrame column, say); prices become integer ticks.
    """
    if n < 1:
        raise ValueError(f"need n >= 1, got {n}")
    ticks = _ticks(np.asarray(close, dtype=float), float(tick))
    factor = ticks[n:] - ticks[:-n]
    f, r = factor[:-1], np.diff(ticks)[n:]  # factor at t, change from t to t+1
    if len(f) and int(np.abs(f).max()) * int(np.abs(r).max() or 1) * len(f) > 2**62:
        raise ValueError("prices too large for exact int64 sums; use a coarser tick")
    sf, sr, sff, srr, sfr = (int(x) for x in (f.sum(), r.sum(), f @ f, r @ r, f @ r))
    signed = (f != 0) & (r != 0)
    hits = int((np.sign(f) == np.sign(r))[signed].sum())
    ic, hit_rate = _from_sums(len(f), sf, sr, sff, srr, sfr, hits, int(signed.sum()))
    return FactorEvaluation(ic, hit_rate, len(f), tuple(int(x) for x in factor))


class FactorRecorder(Strategy):
    """The same factor and evaluation, event-driven: one kline at a time, no trades.

    It holds the last ``n + 1`` closes and seven running integer sums, and nothing else.
    """

    name = "momentum_factor"

    def __init__(self, n: int = 20, *, tick: Decimal | str = Decimal("0.01")) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"need n >= 1, got {n}")
        self.n, self.tick = n, Decimal(tick)
        self._closes: deque[int] = deque(maxlen=n + 1)
        self._pending: int | None = None  # the factor at the previous bar, waiting for its outcome
        self.values: list[int] = []
        self._sums = [0] * 8  # pairs, Σf, Σr, Σf², Σr², Σfr, hits, pairs with both non-zero

    def on_kline(self, kline: Kline) -> None:
        close = _to_ticks(kline.close, self.tick)
        if self._pending is not None:  # the outcome of the previous bar's factor is known now
            f, r = self._pending, close - self._closes[-1]
            s = self._sums
            s[0] += 1
            s[1] += f
            s[2] += r
            s[3] += f * f
            s[4] += r * r
            s[5] += f * r
            if f and r:
                s[7] += 1
                s[6] += (f > 0) == (r > 0)
        self._closes.append(close)
        if len(self._closes) == self.n + 1:
            self._pending = close - self._closes[0]
            self.values.append(self._pending)

    def evaluation(self) -> FactorEvaluation:
        n, sf, sr, sff, srr, sfr, hits, signed = self._sums
        ic, hit_rate = _from_sums(n, sf, sr, sff, srr, sfr, hits, signed)
        return FactorEvaluation(ic, hit_rate, n, tuple(self.values))


def evaluate_event_driven(
    klines: Iterable[Kline], n: int, *, tick: Decimal = Decimal("0.01")
) -> FactorEvaluation:
    """Drip-feed ``klines`` through the backtest engine to a :class:`FactorRecorder`."""
    from mqlab.backtest import run_backtest

    recorder = FactorRecorder(n, tick=tick)
    run_backtest(recorder, klines)
    return recorder.evaluation()


# --- deciding live ---------------------------------------------------------------------------


class RollingSignal:
    """A vectorised SMA strategy deciding live: its research code re-run on a rolling window.

    Each new close goes into a window of the last ``slow`` closes; :func:`~mqlab.vectorised.
    sma_signal` runs on that window, and its last value is the decision. The work per bar is
    the same after a hundred bars or a million.
    """

    def __init__(self, fast: int, slow: int) -> None:
        self.fast, self.slow = fast, slow
        self.window: deque[float] = deque(maxlen=slow)

    def update(self, close: float) -> bool:
        """Add one close; True when SMA(fast) > SMA(slow) on the window (False while filling)."""
        self.window.append(close)
        if len(self.window) < self.slow:
            return False
        return bool(
            sma_signal(np.fromiter(self.window, float, self.slow), self.fast, self.slow)[-1]
        )


def _best_per_call(run: Callable[[], object], calls: int, repeats: int) -> float:
    """Seconds per call, from the least disturbed of ``repeats`` runs."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / calls


def live_decision_costs(
    klines: Sequence[Kline], fast: int, slow: int, qty: Decimal, repeats: int = 3
) -> dict[str, Any]:
    """µs per live decision, both styles fed the same klines one at a time.

    * ``rolling window``: :class:`RollingSignal`, the vectorised research code on the last
      ``slow`` closes;
    * ``event-driven``: :class:`~mqlab.strategies.SmaCross`, bound to a list for its orders.

    ``same decisions`` says whether the rolling window decided, at every bar, what the
    vectorised research code decided on the whole history.
    """
    from mqlab.strategies import SmaCross

    closes = [float(k.close) for k in klines]

    def rolling() -> list[bool]:
        signal = RollingSignal(fast, slow)
        return [signal.update(c) for c in closes]

    def event_driven() -> None:
        orders: list[Order | Cancel] = []
        strategy = SmaCross(fast, slow, qty).bind(orders.append)
        for kline in klines:
            strategy.handle(kline)

    same = rolling() == sma_signal(np.asarray(closes), fast, slow).tolist()
    return {
        "bars": len(klines),
        "rolling window µs": _best_per_call(rolling, len(klines), repeats) * 1e6,
        "event-driven µs": _best_per_call(event_driven, len(klines), repeats) * 1e6,
        "same decisions": same,
    }
