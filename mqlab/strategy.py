"""The ``Strategy`` base class: reacts to events, sends orders, knows nothing of where either go.

A strategy is handed one event at a time through :meth:`Strategy.handle` and answers by
calling :meth:`~Strategy.buy`, :meth:`~Strategy.sell` or :meth:`~Strategy.cancel`. Those
build an :class:`~mqlab.events.Order` (or :class:`~mqlab.events.Cancel`) and pass it to the
``send`` callable injected by :meth:`Strategy.bind`. That is the whole contract, so the *same
object* runs in the in-process backtest (:mod:`mqlab.backtest` binds ``send`` to its
simulated exchange) and on the message bus (the strategy host binds ``send`` to a publish).
It never holds the data source, so it can only see the present: look-ahead bias (未来函数)
has nowhere to come from.

Determinism: order ids are ``<name>-<n>`` (n counts this strategy's requests from 1) and the
strategy's clock, :attr:`Strategy.now`, is the ``recv_ts`` of the event being handled, not
the wall clock. Fed the same events, a strategy sends the same orders with the same ids and
times, wherever it runs, so a replay after a crash produces duplicates a consumer can drop.

Public API:

* hooks to override: ``on_kline``, ``on_orderbook``, ``on_trade``, ``on_order_update``,
  ``on_fill`` (all no-ops here);
* actions: ``buy(qty, price=None, symbol=None)``, ``sell(...)``, ``cancel(order_id)``; a
  market order can be sized by an amount of quote instead, ``buy(quote_qty=...)`` (Binance's
  ``quoteOrderQty``): the venue turns it into a quantity at the price it fills at;
* sizing: ``portfolio`` (a read-only view of cash, equity and positions, given by the
  backtest through :meth:`Strategy.attach`), ``equity_fraction(f)`` (that much quote);
* wiring: ``bind(send, clock=None)``, ``attach(portfolio)``, ``handle(event)``;
* state kept for you from fills and updates: ``position(symbol)``, ``open_orders``, ``now``.

A strategy pickles without its ``send``/``clock`` (bind it again after unpickling), so a
host can snapshot it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Self

from mqlab.events import BUY as _BUY
from mqlab.events import CANCELED as _CANCELED
from mqlab.events import FILLED as _FILLED
from mqlab.events import LIMIT_ORDER as _LIMIT
from mqlab.events import MARKET_ORDER as _MARKET
from mqlab.events import REJECTED as _REJECTED
from mqlab.events import SELL as _SELL
from mqlab.events import (
    ZERO,
    Cancel,
    Event,
    Fill,
    Kline,
    Order,
    OrderBook,
    OrderUpdate,
    Side,
    Trade,
)
from mqlab.portfolio import Portfolio, PortfolioView

__all__ = ["NotBoundError", "Send", "Strategy", "as_decimal"]


#: Where a strategy's orders and cancels go: the backtest's exchange, or a bus publisher.
Send = Callable[[Order | Cancel], None]

_NAME = re.compile(r"[A-Za-z0-9_\-]+")
_CLOSED = {_FILLED, _CANCELED, _REJECTED}


class NotBoundError(RuntimeError):
    """The strategy tried to trade before :meth:`Strategy.bind` gave it somewhere to send."""


def as_decimal(value: Decimal | str | int, what: str = "value") -> Decimal:
    """Exact Decimal from Decimal, str or int; floats are refused (0.1 is not exactly 0.1)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        try:
            return Decimal(value)
        except ArithmeticError:  # decimal.InvalidOperation
            raise ValueError(f"{what} must be a number such as '0.1', not {value!r}") from None
    raise TypeError(
        f"{what} must be a Decimal, str or int, not {type(value).__name__} {value!r}: "
        f"write Decimal({str(value)!r}) so money stays exact"
    )


class Strategy:
    """Base class for strategies: override the ``on_*`` hooks, trade with buy/sell/cancel."""

    #: Default name; it prefixes order ids and goes into routing keys (letters, digits, _ -).
    name: str = "strategy"

    def __init__(self, *, name: str | None = None) -> None:
        name = name if name is not None else type(self).name
        if not _NAME.fullmatch(name):
            raise ValueError(f"strategy name {name!r}: use letters, digits, '_' or '-'")
        self.name = name
        #: Time (ms) of the event being handled: the strategy's only clock.
        self.now = 0
        #: Orders sent and not yet closed (filled, canceled or rejected), by id.
        self.open_orders: dict[str, Order] = {}
        self._positions: dict[str, Decimal] = {}
        self._seq = 0
        self._last: Kline | OrderBook | Trade | None = None
        self._send: Send | None = None
        self._clock: Callable[[], int] | None = None
        self._portfolio: PortfolioView | None = None

    # --- wiring -------------------------------------------------------------------------------

    def bind(self, send: Send, clock: Callable[[], int] | None = None) -> Self:
        """Give the strategy somewhere to send orders (and, live, a wall clock in ms)."""
        self._send = send
        self._clock = clock
        return self

    def attach(self, portfolio: Portfolio | PortfolioView) -> Self:
        """Let the strategy read ``portfolio`` (cash, equity, positions), read-only."""
        self._portfolio = portfolio if isinstance(portfolio, PortfolioView) else portfolio.view()
        return self

    @property
    def portfolio(self) -> PortfolioView:
        """Cash, equity and positions as the portfolio books them, read-only."""
        if self._portfolio is None:
            raise NotBoundError(
                f"strategy {self.name!r} has no portfolio to read: run it in a Backtest, or "
                "call strategy.attach(portfolio)"
            )
        return self._portfolio

    def equity_fraction(self, fraction: Decimal | str | int) -> Decimal:
        """``fraction`` of the portfolio's equity, in quote: ``buy(quote_qty=...)`` sizes."""
        share = as_decimal(fraction, "fraction")
        if not share > 0:
            raise ValueError(f"fraction must be > 0, got {fraction!r}")
        return self.portfolio.equity * share

    def handle(self, event: Event) -> None:
        """Deliver one event: update positions and open orders, then call the matching hook."""
        # (Backtest.run inlines the Kline, Fill and OrderUpdate cases below, without a clock:
        # keep them alike.)
        self.now = event.recv_ts if self._clock is None else self._clock()
        if type(event) is Kline:  # the hot path of a bar backtest: tested first
            self._last = event
            self.on_kline(event)
        elif type(event) is OrderUpdate:
            self._on_update(event)
        elif type(event) is Fill:
            self._on_fill(event)
        elif type(event) is OrderBook:
            self._last = event
            self.on_orderbook(event)
        elif type(event) is Trade:
            self._last = event
            self.on_trade(event)
        else:
            raise TypeError(f"a strategy does not handle {type(event).__name__} events")

    def _on_update(self, update: OrderUpdate) -> None:
        if update.status in _CLOSED:
            self.open_orders.pop(update.order_id, None)
        self.on_order_update(update)

    def _on_fill(self, fill: Fill) -> None:
        signed = fill.qty if fill.side is _BUY else -fill.qty
        self._positions[fill.symbol] = self._positions.get(fill.symbol, ZERO) + signed
        self.on_fill(fill)

    # --- hooks --------------------------------------------------------------------------------

    def on_kline(self, kline: Kline) -> None:
        """A bar closed."""

    def on_orderbook(self, book: OrderBook) -> None:
        """A new depth snapshot."""

    def on_trade(self, trade: Trade) -> None:
        """A public trade printed."""

    def on_order_update(self, update: OrderUpdate) -> None:
        """One of our orders changed state (accepted, filled, canceled, rejected)."""

    def on_fill(self, fill: Fill) -> None:
        """One of our orders (partly) executed; :meth:`position` already includes it."""

    # --- actions ------------------------------------------------------------------------------

    def position(self, symbol: str | None = None) -> Decimal:
        """Net quantity held, from our fills (``symbol`` defaults to the current event's)."""
        return self._positions.get(symbol or self._symbol(), ZERO)

    def buy(
        self,
        qty: Decimal | str | int | None = None,
        price: Decimal | str | int | None = None,
        *,
        quote_qty: Decimal | str | int | None = None,
        **where: str,
    ) -> Order:
        """Send a buy: a limit order at ``price``, or a market order when price is None.

        Give ``quote_qty`` instead of ``qty`` to spend that much quote on a market order."""
        return self._order(_BUY, qty, price, quote_qty, **where)

    def sell(
        self,
        qty: Decimal | str | int | None = None,
        price: Decimal | str | int | None = None,
        *,
        quote_qty: Decimal | str | int | None = None,
        **where: str,
    ) -> Order:
        """Send a sell: a limit order at ``price``, or a market order when price is None.

        Give ``quote_qty`` instead of ``qty`` to sell that much quote's worth (market only)."""
        return self._order(_SELL, qty, price, quote_qty, **where)

    def cancel(self, order_id: str) -> Cancel:
        """Ask the exchange to cancel ``order_id`` (it answers with an OrderUpdate)."""
        order = self.open_orders.get(order_id)
        platform, symbol = (order.platform, order.symbol) if order else self._where({})
        request = Cancel(self._next_id(), self.name, platform, symbol, order_id, self.now, self.now)
        self._emit(request)
        return request

    def _order(
        self,
        side: Side,
        qty: Decimal | str | int | None,
        price: Decimal | str | int | None,
        quote_qty: Decimal | str | int | None = None,
        **where: str,
    ) -> Order:
        platform, symbol = self._where(where)
        limit = None if price is None else as_decimal(price, "price")
        amount = None
        if quote_qty is not None:
            if qty is not None or limit is not None:
                raise ValueError("quote_qty sizes a market order: give no qty and no price")
            amount = as_decimal(quote_qty, "quote_qty")
            if not amount > 0:
                raise ValueError(f"quote_qty must be > 0, got {quote_qty!r}")
            qty = ZERO
        elif qty is None:
            raise TypeError("give qty (a quantity) or quote_qty (an amount of quote)")
        order = Order(
            self._next_id(),
            self.name,
            platform,
            symbol,
            side,
            _MARKET if limit is None else _LIMIT,
            as_decimal(qty, "qty"),
            limit,
            self.now,
            self.now,
            amount,
        )
        self.open_orders[order.id] = order
        self._emit(order)
        return order

    def _symbol(self) -> str:
        if self._last is None:
            raise RuntimeError("no market event seen yet: pass symbol=... explicitly")
        return self._last.symbol

    def _where(self, where: dict[str, str]) -> tuple[str, str]:
        last = self._last
        if not where:  # the usual case: trade the instrument of the event being handled
            if last is None:
                raise RuntimeError("no market event seen yet: pass symbol=... explicitly")
            return last.platform, last.symbol
        unknown = set(where) - {"symbol", "platform"}
        if unknown:
            raise TypeError(f"unexpected argument(s) {sorted(unknown)}; use symbol=, platform=")
        platform = where.get("platform") or (last.platform if last else "binance")
        return platform, where.get("symbol") or self._symbol()

    def _next_id(self) -> str:
        self._seq += 1
        return f"{self.name}-{self._seq}"

    def _emit(self, request: Order | Cancel) -> None:
        if self._send is None:
            raise NotBoundError(
                f"strategy {self.name!r} is not bound: run it in a Backtest, or call "
                "strategy.bind(send) with a function that takes the Order"
            )
        self._send(request)

    # --- pickling: state only, no wiring ------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_send", "_clock", "_portfolio"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._send = None
        self._clock = None
        self._portfolio = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} seq={self._seq} now={self.now}>"
