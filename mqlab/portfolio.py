"""The portfolio: cash, positions and PnL from fills, marked to market, and the stats.

Fills change holdings; market events change prices. :meth:`Portfolio.on_fill` books a fill
exactly (Decimal, FIFO lots, so realised PnL involves no division) and ignores a fill whose
id it has already applied, counting it in ``duplicates``: a fill redelivered by the bus is
never applied twice. :meth:`Portfolio.on_market` marks positions to the event's price (a
kline's close, a book's mid, a trade's price) and appends a point to the equity curve.

The books always balance: ``equity - initial == realised + unrealised - fees``.

Public API: ``Portfolio(cash, quote="USDT")``, ``on_fill``, ``on_market``, ``cash``,
``position(symbol)``, ``realised``, ``unrealised()``, ``equity()``, ``fees``, ``turnover``,
``fills``, ``duplicates``, ``equity_curve()`` (a float pandas Series indexed by UTC time)
and ``stats()`` → :class:`Stats` (``to_dict()`` is JSON-ready: money as exact strings).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from mqlab.events import ZERO, Fill, Kline, MarketEvent, OrderBook, Side

__all__ = ["Portfolio", "Stats", "max_drawdown", "sharpe_ratio"]

# Enum members looked up on their class cost ~50 ns each (the enum metaclass hooks
# attribute access); the per-event paths use these module-level aliases instead.
_BUY = Side.BUY


_YEAR_MS = 365 * 24 * 3600 * 1000  # crypto trades every day of the year


@dataclass(frozen=True)
class Stats:
    """Performance summary; money is exact Decimal, ratios are floats."""

    initial: Decimal
    equity: Decimal
    total_return: float
    sharpe: float
    max_drawdown: float
    trades: int  # fills
    orders_filled: int  # distinct orders that filled at least once
    turnover: Decimal  # traded value, sum of qty * price
    fees: Decimal
    realised: Decimal
    unrealised: Decimal
    duplicates: int  # fills ignored because they had been applied already

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (format(v, "f") if isinstance(v, Decimal) else v) for k, v in asdict(self).items()
        }


def sharpe_ratio(equity: np.ndarray, times_ms: np.ndarray) -> float:
    """Annualised Sharpe ratio of per-sample simple returns (0 when they do not vary)."""
    if len(equity) < 3:
        return 0.0
    returns = np.diff(equity) / equity[:-1]
    std = returns.std(ddof=1)
    if not std > 0:
        return 0.0
    step = float(np.median(np.diff(times_ms))) or 1.0
    return float(returns.mean() / std * math.sqrt(_YEAR_MS / step))


def max_drawdown(equity: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction of that peak."""
    if len(equity) == 0:
        return 0.0
    peak = np.maximum.accumulate(equity)
    return float(np.max((peak - equity) / peak))


class Portfolio:
    """Cash and positions in one quote asset, booked from fills, marked from market data."""

    def __init__(self, cash: Decimal | str | int = 10_000, *, quote: str = "USDT") -> None:
        self.initial = self.cash = Decimal(cash)
        self.quote = quote
        self.realised = ZERO
        self.fees = ZERO
        self.turnover = ZERO
        self.fills: list[Fill] = []
        self.duplicates = 0
        self._applied: set[str] = set()
        self._lots: dict[str, deque[list[Decimal]]] = {}  # symbol -> [signed qty, price] FIFO
        self._pos: dict[str, Decimal] = {}
        self._price: dict[str, Decimal] = {}
        self._equity: Decimal | None = None  # cash + holdings, cached between fills
        self._base_symbol: str | None = None  # _base is the equity without this position
        self._base = ZERO
        self._times: list[int] = []
        self._values: list[Decimal] = []

    # --- inputs -------------------------------------------------------------------------------

    def on_fill(self, fill: Fill) -> bool:
        """Book a fill; False (and counted in ``duplicates``) if this fill id was applied."""
        key = fill.id
        if key in self._applied:
            self.duplicates += 1
            return False
        if fill.fee_asset != self.quote:
            raise ValueError(f"fee in {fill.fee_asset}, but this portfolio counts {self.quote}")
        self._applied.add(key)
        self.fills.append(fill)
        symbol, qty, price = fill.symbol, fill.qty, fill.price
        signed = qty if fill.side is _BUY else -qty
        self.cash -= signed * price + fill.fee
        self.fees += fill.fee
        self.turnover += qty * price
        self._book_lots(symbol, signed, price)
        self._price.setdefault(symbol, price)
        self._pos[symbol] = self._pos.get(symbol, ZERO) + signed
        self._equity = self._base_symbol = None  # cash and positions moved: recompute
        return True

    def _book_lots(self, symbol: str, signed: Decimal, price: Decimal) -> None:
        lots = self._lots.setdefault(symbol, deque())
        while signed and lots and (lots[0][0] > 0) != (signed > 0):
            lot = lots[0]
            take = min(abs(signed), abs(lot[0]))
            direction = 1 if lot[0] > 0 else -1  # closing a long gains when price rose
            self.realised += (price - lot[1]) * take * direction
            lot[0] -= take * direction
            signed += take * direction
            if not lot[0]:
                lots.popleft()
        if signed:
            lots.append([signed, price])

    def on_market(self, event: MarketEvent) -> None:
        """Mark to the event's price and record a point of the equity curve."""
        if type(event) is Kline:
            price = event.close
        elif type(event) is OrderBook:
            price = event.mid
        else:
            price = event.price  # type: ignore[union-attr]
        symbol = event.symbol
        self._price[symbol] = price
        held = self._pos.get(symbol)
        if held:
            # equity = (cash + the other positions' value) + held * price; the part in brackets
            # only changes with a fill or another held symbol's price, so it is reused.
            if self._base_symbol != symbol:
                self._base = self.cash + self._holdings(but=symbol)
                self._base_symbol = symbol
            self._equity = self._base + held * price
        elif self._equity is None:
            self._equity = self.cash + self._holdings()
        self._times.append(event.ts)
        self._values.append(self._equity)

    def _holdings(self, but: str | None = None) -> Decimal:
        """Sum of position * last price, leaving out symbol ``but``."""
        price = self._price
        return sum((q * price[s] for s, q in self._pos.items() if q and s != but), ZERO)

    # --- queries ------------------------------------------------------------------------------

    def position(self, symbol: str) -> Decimal:
        return self._pos.get(symbol, ZERO)

    @property
    def positions(self) -> dict[str, Decimal]:
        return {s: q for s, q in self._pos.items() if q}

    def unrealised(self) -> Decimal:
        """Mark-to-market gain of the open lots (before fees)."""
        total = ZERO
        for symbol, lots in self._lots.items():
            mark = self._price[symbol]
            total += sum(((mark - price) * qty for qty, price in lots), ZERO)
        return total

    def equity(self) -> Decimal:
        return self.cash + self._holdings()

    def equity_curve(self) -> pd.Series:
        """Equity after each market event, as floats indexed by UTC time (for plots/stats)."""
        index = pd.to_datetime(np.asarray(self._times, dtype=np.int64), unit="ms", utc=True)
        values = np.fromiter(self._values, float, len(self._values))
        return pd.Series(values, index=index, name="equity")

    def stats(self) -> Stats:
        values = np.fromiter(self._values, float, len(self._values))
        times = np.asarray(self._times, dtype=np.int64)
        equity = self.equity()
        return Stats(
            initial=self.initial,
            equity=equity,
            total_return=float(equity / self.initial - 1),
            sharpe=sharpe_ratio(values, times),
            max_drawdown=max_drawdown(values),
            trades=len(self.fills),
            orders_filled=len({f.order_id for f in self.fills}),
            turnover=self.turnover,
            fees=self.fees,
            realised=self.realised,
            unrealised=self.unrealised(),
            duplicates=self.duplicates,
        )
