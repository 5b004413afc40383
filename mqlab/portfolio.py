"""The portfolio: cash, positions and PnL from fills, marked to market, and the stats.

Fills change holdings; market events change prices. :meth:`Portfolio.on_fill` books a fill
exactly (Decimal, FIFO lots, so realised PnL involves no division) and ignores a fill whose
id it has already applied, counting it in ``duplicates``: a fill redelivered by the bus is
never applied twice. :meth:`Portfolio.on_market` marks positions to the event's price (a
kline's close, a book's mid, a trade's price) and adds a point to the equity curve.

The equity curve is exact at every point, but it is not computed point by point. Between two
fills cash and positions stay put, so each point is ``base + held * price``, where only the
price moves. ``on_market`` therefore records just the time and the price (two appends), and
``on_fill`` records the books as they stand after the fill; :meth:`Portfolio.equity_curve` and
:meth:`Portfolio.stats` then compute every point from those, exactly, in Decimal, and only
when they are asked for. In a backtest that is once, at the end, instead of once a bar.

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
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from mqlab.events import BUY as _BUY
from mqlab.events import ZERO, Fill, Kline, MarketEvent, OrderBook

__all__ = ["Portfolio", "PortfolioView", "Stats", "mark_price", "max_drawdown", "sharpe_ratio"]


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


def mark_price(event: MarketEvent) -> Decimal:
    """The price a position is marked to: a kline's close, a book's mid, a trade's price."""
    if type(event) is Kline:
        return event.close
    if type(event) is OrderBook:
        return event.mid
    return event.price  # type: ignore[union-attr]


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
        # The last price of each symbol, except the one marked last (``_marking``): its price
        # is the last mark, put in here only when asked for (``_price``) or when another
        # symbol is marked, so that marking a bar is two appends.
        self._prices: dict[str, Decimal] = {}
        self._marking: str | None = None
        # The equity curve, recorded cheaply (see the module docstring): for each point its
        # time and the price it was marked to; where the marked symbol changes, its index and
        # name; after each fill, the index of the first point it affects and the books then.
        self._times: list[int] = []
        self._marks: list[Decimal] = []
        self._symbols: list[tuple[int, str]] = []
        self._books: list[tuple[int, Decimal, dict[str, Decimal], dict[str, Decimal]]] = []
        self._curve: tuple[int, int, list[Decimal]] = (0, 0, [])  # (points, fills, values)

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
        prices = self._price
        prices.setdefault(symbol, price)
        self._pos[symbol] = self._pos.get(symbol, ZERO) + signed
        # The books from the next point of the curve on (a later fill before it replaces this).
        at = len(self._times)
        if self._books and self._books[-1][0] == at:
            self._books.pop()
        self._books.append((at, self.cash, dict(self._pos), dict(prices)))
        return True

    def _book_lots(self, symbol: str, signed: Decimal, price: Decimal) -> None:
        lots = self._lots.get(symbol)
        if lots is None:
            lots = self._lots[symbol] = deque()
        # A fill against the oldest lots of the other side closes them first (FIFO). Each
        # side has its own branch, with no ``* direction``: the same exact figures as
        # ``realised += (price - cost) * take * direction`` with ``direction = +1/-1``,
        # without multiplying a Decimal by an int (a conversion each time).
        while signed and lots:
            lot = lots[0]
            held, cost = lot
            if held > 0:  # a long lot, closed by a sell (signed < 0)
                if signed > 0:
                    break
                take = held if held < -signed else -signed
                self.realised += (price - cost) * take  # closing a long gains when price rose
                lot[0] = held - take
                signed += take
            else:  # a short lot, closed by a buy (signed > 0)
                if signed < 0:
                    break
                take = -held if -held < signed else signed
                self.realised -= (price - cost) * take
                lot[0] = held + take
                signed -= take
            if not lot[0]:
                lots.popleft()
        if signed:
            lots.append([signed, price])

    def on_market(self, event: MarketEvent) -> None:
        """Mark to the event's price and add a point to the equity curve."""
        # (Backtest.run inlines this for a Kline of the symbol marked last: keep them alike.)
        if type(event) is Kline:
            price = event.close
        elif type(event) is OrderBook:
            price = event.mid
        else:
            price = event.price  # type: ignore[union-attr]
        if event.symbol is not self._marking:  # the same str object, bar after bar
            self._mark_symbol(event.symbol)
        self._times.append(event.ts)
        self._marks.append(price)

    def _mark_symbol(self, symbol: str) -> None:
        """The points that follow mark ``symbol``: settle the price of the one marked before."""
        if symbol == self._marking:  # equal, but another str object
            self._marking = symbol
            return
        if self._marking is not None:
            self._prices[self._marking] = self._marks[-1]
        self._marking = symbol
        self._symbols.append((len(self._times), symbol))

    @property
    def _price(self) -> dict[str, Decimal]:
        """The last price of every symbol seen (marked, or only filled so far)."""
        if self._marking is not None:
            self._prices[self._marking] = self._marks[-1]
        return self._prices

    def _values(self) -> list[Decimal]:
        """The equity at every point of the curve, exactly as if each had been computed when
        it was marked: cash plus each position at its latest price. Between two boundaries
        (a fill, or a mark of another symbol) only one price moves, so a run of points costs
        one Decimal multiply and add each, in C. Cached until the next point or fill."""
        key = (len(self._times), len(self.fills))
        if self._curve[:2] == key:
            return self._curve[2]
        marks, n = self._marks, len(self._times)
        books = {i: (cash, pos, prices) for i, cash, pos, prices in self._books}
        symbols = dict(self._symbols)
        cash, pos, last = self.initial, dict[str, Decimal](), dict[str, Decimal]()
        symbol = ""
        values: list[Decimal] = []
        cuts = [*sorted(books.keys() | symbols.keys()), n]
        for start, stop in pairwise(cuts):
            if start in books:
                cash, pos, prices = books[start]
                last.update(prices)  # the same prices, plus a fill's for a symbol not yet marked
            symbol = symbols.get(start, symbol)
            if start == stop:
                continue
            held = pos.get(symbol)
            others = ((q, s) for s, q in pos.items() if q and s != symbol)
            base = cash + sum((q * last[s] for q, s in others), ZERO)
            if held:
                values += map(base.__add__, map(held.__mul__, marks[start:stop]))
            else:
                values += [base] * (stop - start)
            last[symbol] = marks[stop - 1]
        self._curve = (*key, values)
        return values

    def mark(self, symbol: str, ts: int, price: Decimal) -> None:
        """Mark ``symbol`` to ``price`` at ``ts`` (ms), as :meth:`on_market` does with an
        event's price: for a price a venue reports (the bus pipeline's progress markers)."""
        if symbol is not self._marking:
            self._mark_symbol(symbol)
        self._times.append(ts)
        self._marks.append(price)

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
        prices = self._price
        for symbol, lots in self._lots.items():
            mark = prices[symbol]
            total += sum(((mark - price) * qty for qty, price in lots), ZERO)
        return total

    def equity(self) -> Decimal:
        return self.cash + self._holdings()

    def view(self) -> PortfolioView:
        """A read-only view of this portfolio, for a strategy to size its orders by."""
        return PortfolioView(self)

    def equity_curve(self) -> pd.Series:
        """Equity after each market event, as floats indexed by UTC time (for plots/stats)."""
        index = pd.to_datetime(np.asarray(self._times, dtype=np.int64), unit="ms", utc=True)
        values = np.fromiter(self._values(), float, len(self._times))
        return pd.Series(values, index=index, name="equity")

    def stats(self) -> Stats:
        values = np.fromiter(self._values(), float, len(self._times))
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


class PortfolioView:
    """What a strategy may read of a :class:`Portfolio`: no setters, no ``on_fill``.

    Figures are live (each read asks the portfolio), in the portfolio's quote asset; a short
    position is negative and counts against equity at the last price.
    """

    __slots__ = ("_portfolio",)
    _portfolio: Portfolio

    def __init__(self, portfolio: Portfolio) -> None:
        object.__setattr__(self, "_portfolio", portfolio)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"the portfolio is read-only for a strategy: cannot set {name!r}")

    @property
    def quote(self) -> str:
        return self._portfolio.quote

    @property
    def initial(self) -> Decimal:
        return self._portfolio.initial

    @property
    def cash(self) -> Decimal:
        """Quote held: falls with each buy and fee, rises with each sale (short sales too)."""
        return self._portfolio.cash

    @property
    def equity(self) -> Decimal:
        """Cash plus every position at its last price."""
        return self._portfolio.equity()

    @property
    def realised(self) -> Decimal:
        return self._portfolio.realised

    @property
    def fees(self) -> Decimal:
        return self._portfolio.fees

    def position(self, symbol: str) -> Decimal:
        """Signed quantity held (negative: short)."""
        return self._portfolio.position(symbol)

    @property
    def positions(self) -> dict[str, Decimal]:
        return self._portfolio.positions

    def __repr__(self) -> str:
        return f"<PortfolioView cash={self.cash} equity={self.equity} {self.quote}>"
