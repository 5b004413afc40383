"""The standard report of a run: returns, risk, drawdown and round trips, as a table or JSON.

:func:`build_report` takes what a run produced (a :class:`~mqlab.portfolio.Portfolio`, or a
backtest's result, which holds one) and measures it; :class:`Report` prints as a two-column
table (:meth:`Report.table`) or as JSON-ready data (:meth:`Report.to_dict`). The backtest
CLI prints it; the pipeline's portfolio can be given to it the same way.

Definitions (the same every time, so two runs can be compared):

* **Samples.** The equity curve is the portfolio's equity after each market event. Several
  events at the same time (a bus run marks on each) count once, at their last value: one
  sample per bar.
* **Start, end, duration**: the first and last sample (bar close times, UTC) and the time
  between them.
* **Exposure**: the share of samples at which a position was open.
* **Total return** uses the exact final equity. **CAGR** compounds it over the duration in
  years of 365.25 days.
* **Annualised volatility, Sharpe, Sortino** come from the simple return between consecutive
  samples. They are scaled by the square root of *periods per year*, the number of samples
  the data has per year of calendar time: about 525,960 for 1-minute crypto bars (24/7),
  about 252 for daily stock bars (weekends and holidays have no bars). Volatility is the
  sample standard deviation (ddof 1) times that root; Sharpe is the mean return over that
  standard deviation, times the root, with no risk-free rate; Sortino divides by the downside
  deviation, the root mean square of the negative returns (counting the others as 0). Over a
  short sample, annualising extrapolates a lot: :attr:`Report.short_sample` flags spans under
  30 days.
* **Max drawdown**: the largest fall from a running peak, as a fraction of that peak. **Its
  duration**: the longest time the equity spent below an earlier peak (until it made a new
  one, or the run ended).
* **Round trips (trades) versus fills.** A fill is one execution. A round trip is a position
  from flat back to flat, in one symbol; a fill that goes through zero (long to short) closes
  one round trip and opens the next, its fee split by quantity. Its PnL is its net cash flow:
  proceeds less costs less fees. Win rate, best and worst trade and profit factor (gross
  profit over gross loss) count closed round trips only; one still open at the end is
  counted in ``open_trades``.
* **Fees**: everything the venue charged, in the quote asset.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mqlab.events import INTERVAL_MS, ZERO, Fill, Side
from mqlab.portfolio import Portfolio

__all__ = ["Report", "RoundTrip", "build_report", "round_trips"]

_YEAR_S = 365.25 * 24 * 3600
_SHORT_DAYS = 30


@dataclass(frozen=True)
class RoundTrip:
    """A position from flat back to flat in one symbol."""

    symbol: str
    side: str  # "long" or "short"
    qty: Decimal  # the largest size held
    entry_ts: int  # first fill (ms)
    exit_ts: int | None  # the fill that made it flat again; None while open
    entry_price: Decimal  # average price of the fills that built the position
    exit_price: Decimal | None  # average price of the fills that reduced it
    pnl: Decimal  # net cash flow (closed trips), fees included
    fees: Decimal
    fills: int

    @property
    def closed(self) -> bool:
        return self.exit_ts is not None

    @property
    def return_pct(self) -> float:
        """PnL as a percentage of the largest position's entry value."""
        basis = self.qty * self.entry_price
        return float(self.pnl / basis * 100) if basis else 0.0


class _Trip:
    __slots__ = (
        "cost_in",
        "cost_out",
        "fees",
        "fills",
        "flow",
        "peak",
        "qty_in",
        "qty_out",
        "sign",
        "start",
        "symbol",
    )  # fmt: skip

    def __init__(self, symbol: str, sign: int, start: int) -> None:
        self.symbol, self.sign, self.start = symbol, sign, start
        self.flow = self.fees = self.cost_in = self.cost_out = ZERO
        self.qty_in = self.qty_out = self.peak = ZERO
        self.fills = 0

    def add(self, signed: Decimal, price: Decimal, fee: Decimal) -> None:
        self.flow -= signed * price + fee
        self.fees += fee
        self.fills += 1
        if (signed > 0) == (self.sign > 0):
            self.qty_in += abs(signed)
            self.cost_in += abs(signed) * price
        else:
            self.qty_out += abs(signed)
            self.cost_out += abs(signed) * price

    def done(self, end: int | None, value: Decimal = ZERO) -> RoundTrip:
        """The trip, closed at ``end``; or open, its position worth ``value`` now."""
        entry = self.cost_in / self.qty_in if self.qty_in else ZERO
        exit_ = self.cost_out / self.qty_out if self.qty_out else None
        return RoundTrip(
            self.symbol,
            "long" if self.sign > 0 else "short",
            self.peak,
            self.start,
            end,
            entry,
            exit_,
            self.flow + value,
            self.fees,
            self.fills,
        )


def round_trips(fills: list[Fill], marks: dict[str, Decimal] | None = None) -> list[RoundTrip]:
    """Closed round trips in the order they closed, then any still open (see the module doc).

    An open trip's PnL counts its position at ``marks[symbol]`` (last prices), if given."""
    held: dict[str, Decimal] = {}
    open_: dict[str, _Trip] = {}
    out: list[RoundTrip] = []
    for fill in fills:
        symbol = fill.symbol
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        before = held.get(symbol, ZERO)
        after = before + signed
        trip = open_.get(symbol)
        if before and after and (before > 0) != (after > 0):  # through zero: split the fill
            closing = -before
            share = abs(closing) / fill.qty
            assert trip is not None
            trip.add(closing, fill.price, fill.fee * share)
            out.append(trip.done(fill.ts))
            trip = open_[symbol] = _Trip(symbol, 1 if after > 0 else -1, fill.ts)
            trip.add(after, fill.price, fill.fee - fill.fee * share)
        else:
            if trip is None:
                trip = open_[symbol] = _Trip(symbol, 1 if signed > 0 else -1, fill.ts)
            trip.add(signed, fill.price, fill.fee)
            if not after:
                out.append(trip.done(fill.ts))
                del open_[symbol]
        if symbol in open_:
            open_[symbol].peak = max(open_[symbol].peak, abs(after))
        held[symbol] = after
    marks = marks or {}
    out.extend(
        trip.done(None, held[s] * marks[s] if s in marks else ZERO) for s, trip in open_.items()
    )
    return out


class _HasPortfolio(Protocol):
    portfolio: Portfolio


@dataclass(frozen=True)
class Report:
    """The standard figures of a run; see the module docstring for each definition."""

    quote: str
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    duration: pd.Timedelta
    samples: int
    periods_per_year: float
    exposure: float  # share of samples with a position open
    initial: Decimal
    final_equity: Decimal
    total_return: float
    cagr: float | None
    volatility: float  # annualised
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_duration: pd.Timedelta
    fills: int
    orders_filled: int
    trades: list[RoundTrip] = field(repr=False)
    fees: Decimal = ZERO

    @property
    def closed_trades(self) -> list[RoundTrip]:
        return [t for t in self.trades if t.closed]

    @property
    def open_trades(self) -> int:
        return sum(not t.closed for t in self.trades)

    @property
    def win_rate(self) -> float | None:
        closed = self.closed_trades
        return sum(t.pnl > 0 for t in closed) / len(closed) if closed else None

    @property
    def profit_factor(self) -> float | None:
        """Gross profit over gross loss of closed trips (None with no loss to divide by)."""
        wins = sum((t.pnl for t in self.closed_trades if t.pnl > 0), ZERO)
        losses = -sum((t.pnl for t in self.closed_trades if t.pnl < 0), ZERO)
        return float(wins / losses) if losses else None

    @property
    def short_sample(self) -> bool:
        """True when the run spans under 30 days: annualised figures extrapolate wildly."""
        return self.duration < pd.Timedelta(days=_SHORT_DAYS)

    def _best_worst(self) -> tuple[RoundTrip | None, RoundTrip | None]:
        closed = self.closed_trades
        if not closed:
            return None, None
        return max(closed, key=lambda t: t.pnl), min(closed, key=lambda t: t.pnl)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: money as exact strings, times as ISO 8601, ratios as floats or None."""
        best, worst = self._best_worst()

        def finite(x: float | None) -> float | None:
            return None if x is None or not math.isfinite(x) else x

        return {
            "quote": self.quote,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "duration": str(self.duration),
            "samples": self.samples,
            "periods_per_year": round(self.periods_per_year, 2),
            "short_sample": self.short_sample,
            "exposure": self.exposure,
            "initial": format(self.initial, "f"),
            "final_equity": format(self.final_equity, "f"),
            "total_return": self.total_return,
            "cagr": finite(self.cagr),
            "volatility_annualised": self.volatility,
            "sharpe": self.sharpe,
            "sortino": finite(self.sortino),
            "max_drawdown": self.max_drawdown,
            "max_drawdown_duration": str(self.max_drawdown_duration),
            "round_trips": len(self.closed_trades),
            "open_trades": self.open_trades,
            "fills": self.fills,
            "orders_filled": self.orders_filled,
            "win_rate": self.win_rate,
            "best_trade": None if best is None else format(best.pnl, "f"),
            "best_trade_pct": None if best is None else best.return_pct,
            "worst_trade": None if worst is None else format(worst.pnl, "f"),
            "worst_trade_pct": None if worst is None else worst.return_pct,
            "profit_factor": self.profit_factor,
            "fees": format(self.fees, "f"),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for a table, formatted for people."""
        q = self.quote
        best, worst = self._best_worst()

        def pct(x: float | None, digits: int = 2) -> str:
            return "n/a" if x is None or not math.isfinite(x) else f"{x * 100:.{digits}f} %"

        def num(x: float | None) -> str:
            return "n/a" if x is None or not math.isfinite(x) else f"{x:.2f}"

        def money(x: Decimal) -> str:
            return f"{x:,.2f} {q}"

        def trade(t: RoundTrip | None) -> str:
            return "n/a" if t is None else f"{money(t.pnl)} ({t.return_pct:+.2f} %)"

        short = "  (under 30 days: annualised figures extrapolate)" if self.short_sample else ""
        return [
            ("start", "n/a" if self.start is None else f"{self.start:%Y-%m-%d %H:%M} UTC"),
            ("end", "n/a" if self.end is None else f"{self.end:%Y-%m-%d %H:%M} UTC"),
            ("duration", f"{self.duration}{short}"),
            ("samples (one per bar)", f"{self.samples:,} ({self.periods_per_year:,.0f} a year)"),
            ("exposure (time in market)", pct(self.exposure, 1)),
            ("initial equity", money(self.initial)),
            ("final equity", money(self.final_equity)),
            ("total return", pct(self.total_return)),
            ("CAGR", pct(self.cagr)),
            ("volatility (annualised)", pct(self.volatility)),
            ("Sharpe ratio (annualised, rf 0)", num(self.sharpe)),
            ("Sortino ratio (annualised)", num(self.sortino)),
            ("max drawdown", pct(self.max_drawdown)),
            ("longest drawdown", str(self.max_drawdown_duration)),
            ("round trips (trades), closed", f"{len(self.closed_trades)}"),
            ("round trips still open", f"{self.open_trades}"),
            ("fills (executions)", f"{self.fills} from {self.orders_filled} orders"),
            ("win rate", pct(self.win_rate, 1)),
            ("best trade", trade(best)),
            ("worst trade", trade(worst)),
            ("profit factor", num(self.profit_factor)),
            ("fees", money(self.fees)),
        ]

    def table(self, title: str | None = None) -> str:
        """The report as a plain two-column text table."""
        rows = self.rows()
        width = max(len(label) for label, _ in rows)
        lines = [title, "-" * len(title)] if title else []
        lines += [f"{label:<{width}}  {value}" for label, value in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # Jupyter shows the table
        body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in self.rows())
        return f"<table>{body}</table>"

    def __str__(self) -> str:
        return self.table()


def build_report(
    run: Portfolio | _HasPortfolio,
    *,
    interval: str | None = None,
    periods_per_year: float | None = None,
) -> Report:
    """Measure a run: a :class:`Portfolio`, or anything with a ``portfolio`` (a backtest's
    result).

    ``interval`` (``"1m"``, ``"1d"``...) samples the equity once per interval, at the last
    mark in it (intervals without a mark are skipped, so weekends do not count): give it when
    the portfolio was marked on every order-book snapshot or trade, not once per bar.
    ``periods_per_year`` overrides the number the samples imply."""
    portfolio = run if isinstance(run, Portfolio) else run.portfolio
    curve = portfolio.equity_curve()
    curve = curve[~curve.index.duplicated(keep="last")]  # one sample per bar
    if interval is not None and len(curve):
        step = pd.Timedelta(milliseconds=INTERVAL_MS[interval])
        curve = curve.resample(step, label="right", closed="right").last().dropna()
    values = curve.to_numpy(float)
    times = curve.index
    n = len(values)
    start: pd.Timestamp | None = times[0] if n else None
    end: pd.Timestamp | None = times[-1] if n else None
    duration = end - start if start is not None and end is not None else pd.Timedelta(0)
    years = duration.total_seconds() / _YEAR_S
    if periods_per_year is None:
        periods_per_year = (n - 1) / years if years > 0 else 0.0
    equity = portfolio.equity()
    initial = portfolio.initial
    total = float(equity / initial - 1) if initial else 0.0
    cagr = None
    if years > 0 and initial > 0 and equity > 0:
        cagr = float(equity / initial) ** (1 / years) - 1
    returns = np.diff(values) / values[:-1] if n > 1 else np.empty(0)
    root = math.sqrt(periods_per_year) if periods_per_year > 0 else 0.0
    std = float(returns.std(ddof=1)) if len(returns) > 1 else 0.0
    mean = float(returns.mean()) if len(returns) else 0.0
    sharpe = mean / std * root if std > 0 else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if len(returns) else 0.0
    sortino = mean / downside * root if downside > 0 else (math.inf if mean > 0 else 0.0)
    fills = portfolio.fills
    return Report(
        quote=portfolio.quote,
        start=start,
        end=end,
        duration=duration,
        samples=n,
        periods_per_year=periods_per_year,
        exposure=_exposure(fills, times),
        initial=initial,
        final_equity=equity,
        total_return=total,
        cagr=cagr,
        volatility=std * root,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=_max_drawdown(values),
        max_drawdown_duration=_longest_drawdown(values, times),
        fills=len(fills),
        orders_filled=len({f.order_id for f in fills}),
        # the portfolio's last prices (package-internal) value a trip still open at the end
        trades=round_trips(fills, dict(portfolio._price)),
        fees=sum((f.fee for f in fills), ZERO),
    )


def _exposure(fills: list[Fill], times: pd.DatetimeIndex) -> float:
    """Share of samples taken while some position was open."""
    if not len(times):
        return 0.0
    held: dict[str, Decimal] = {}
    change_ts: list[int] = []
    open_after: list[bool] = []
    for fill in fills:
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        held[fill.symbol] = held.get(fill.symbol, ZERO) + signed
        change_ts.append(fill.ts)
        open_after.append(any(held.values()))
    if not change_ts:
        return 0.0
    sample_ms = np.asarray(times.as_unit("ms").asi8, dtype=np.int64)
    # The last fill before each sample says whether a position was open then. A fill at the
    # very time of a sample came after it: it filled at the open of the bar that follows.
    last = np.searchsorted(np.asarray(change_ts, dtype=np.int64), sample_ms, side="left") - 1
    state = np.asarray(open_after, dtype=bool)
    return float(np.mean(np.where(last >= 0, state[np.maximum(last, 0)], False)))


def _max_drawdown(values: np.ndarray) -> float:
    if not len(values):
        return 0.0
    peak = np.maximum.accumulate(values)
    return float(np.max((peak - values) / peak))


def _longest_drawdown(values: np.ndarray, times: pd.DatetimeIndex) -> pd.Timedelta:
    """Longest time spent below an earlier peak: from that peak to the next new high, or to
    the end of the run."""
    longest = pd.Timedelta(0)
    peak = -math.inf
    peak_time: pd.Timestamp | None = None
    under_since: pd.Timestamp | None = None
    for value, when in zip(values.tolist(), times, strict=True):
        if value >= peak:
            if under_since is not None:
                longest = max(longest, when - under_since)
            peak, peak_time, under_since = value, when, None
        elif under_since is None:
            under_since = peak_time
    if under_since is not None:
        longest = max(longest, times[-1] - under_since)
    return longest
