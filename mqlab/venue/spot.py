"""The spot venue: :class:`SimulatedExchange`, its :class:`Latency` model and symbol splitting.

It is a pure state machine with two inputs and no clock, thread or I/O of its own, so the
backtest calls it directly and a bus service can wrap it unchanged:

* :meth:`SimulatedExchange.on_order` takes an :class:`~mqlab.events.Order` or
  :class:`~mqlab.events.Cancel` and returns the :class:`~mqlab.events.OrderUpdate` s it causes
  (accepted as NEW, or REJECTED with a reason: insufficient balance, bad price, bad quantity,
  unknown order...). A repeated order or cancel id is ignored and counted in ``duplicates``.
* :meth:`SimulatedExchange.on_market` takes a Kline, OrderBook or Trade and returns the
  :class:`~mqlab.events.Fill` s and updates of the orders it executes. A market event seen
  again (same stream, not newer) is ignored too, so redelivery never fills twice.

Matching rules (the conventions of backtrader and vnpy, plus an order book):

* An order reaches the exchange at ``order.ts + latency.delay(order.id)``; the
  :class:`Latency` model is deterministic (jitter derived from the order id).
* **Never on the event that produced it.** Against bars, an order can fill only on a bar that
  *opened at or after the order was sent* and closes after it arrived: normally the next bar.
  Market orders fill at that bar's open. A limit buy fills at the open if the open is at or
  below its price (taker), else at its price if the bar's low trades through it (maker);
  sells mirror this. Bars cannot resolve latency shorter than a bar.
* Against order-book snapshots with ``ts`` at or after the arrival, an order walks the
  opposite side level by level, taking at most each level's size: partial fills, one Fill per
  level. What is left keeps working on later snapshots. A limit order that has rested fills
  at its own price (maker) when the book crosses it, or when a public trade prints through it
  (queue position is ignored, which flatters resting orders).
* Fees: ``maker_fee``/``taker_fee`` times the traded value, charged in the quote asset.
* Spot balances: a buy locks quote (at the limit price, or the last price for a market order,
  plus the taker fee), a sell locks base; a fill that the balance cannot pay for cancels the
  rest of the order with a reason.
* Sizing. ``lot_size`` is the venue's quantity step: ``0.00001`` trades fractions of a coin,
  ``1`` whole shares only. A market order may name an amount of quote (``Order.quote_qty``,
  Binance's ``quoteOrderQty``) instead of a quantity: the venue buys (or sells) as many lots
  as that amount pays for *at the price it fills at*, rounded down to the lot. An amount too
  small for one lot is canceled with a reason.
* Symbols: ``BTCUSDT`` splits into base ``BTC`` and quote ``USDT`` by the known quote assets
  (:data:`QUOTE_ASSETS`). A venue created with ``quote="USD"`` takes any other symbol
  (``AAPL``) as a base asset priced in that quote.

:class:`~mqlab.venue.margin.MarginExchange` is the same venue with a margin
(perpetual-style) account instead of spot balances: it can go short, is limited by a leverage
cap, and liquidates; see its docstring for the rules.

Time-order contract for callers: give the exchange each order before any market event that
happened after the order was sent (``event.ts > order.ts``). The backtest does this by
construction; a bus service must hold market events back until the strategy has answered
the earlier ones. The exchange pickles, so a service can snapshot and restore it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from mqlab.events import BUY as _BUY
from mqlab.events import CANCEL_REJECTED as _CANCEL_REJECTED
from mqlab.events import CANCELED as _CANCELED
from mqlab.events import FILLED as _FILLED
from mqlab.events import MAKER as _MAKER
from mqlab.events import MARKET_ORDER as _MARKET
from mqlab.events import NEW as _NEW
from mqlab.events import PARTIALLY_FILLED as _PARTIALLY_FILLED
from mqlab.events import REJECTED as _REJECTED
from mqlab.events import SELL as _SELL
from mqlab.events import TAKER as _TAKER
from mqlab.events import (
    ZERO,
    Cancel,
    Fill,
    Kline,
    Liquidity,
    MarketEvent,
    Order,
    OrderBook,
    OrderStatus,
    OrderUpdate,
    Trade,
)

__all__ = ["QUOTE_ASSETS", "Latency", "SimulatedExchange", "split_symbol"]


_NOTHING: tuple[()] = ()  # what on_market answers when no order is working

#: Quote assets recognised at the end of a symbol, longest first (BTCUSDT -> BTC / USDT).
QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "EUR", "BTC", "ETH", "BNB", "USD")


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTCUSDT"`` → ``("BTC", "USDT")``; ValueError if no known quote asset ends it."""
    try:
        return _SPLIT[symbol]
    except KeyError:
        pass
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            _SPLIT[symbol] = pair = symbol[: -len(quote)], quote
            return pair
    raise ValueError(f"unknown symbol {symbol!r}: it must end in one of {', '.join(QUOTE_ASSETS)}")


_SPLIT: dict[str, tuple[str, str]] = {}  # every fill needs it: remember the answers


@dataclass(frozen=True, slots=True)
class Latency:
    """Order latency (strategy → exchange) in ms: ``order_ms`` plus 0..``jitter_ms``.

    The jitter is a hash of the order id, not a random draw, so the same order is delayed
    by the same amount in a backtest and over the bus.
    """

    order_ms: int = 0
    jitter_ms: int = 0

    def delay(self, order_id: str) -> int:
        if not self.jitter_ms:
            return self.order_ms
        return self.order_ms + zlib.crc32(order_id.encode()) % (self.jitter_ms + 1)


class _Working:
    """Mutable book-keeping for one live order."""

    __slots__ = (
        "arrival",
        "cancel_at",
        "cost",
        "filled",
        "fills",
        "locked",
        "order",
        "rested",
        "signed",
    )

    def __init__(self, order: Order, arrival: int, locked: Decimal) -> None:
        self.order = order
        self.arrival = arrival
        self.locked = locked  # quote (buys) or base (sells) still reserved for this order
        self.filled = ZERO
        self.cost = ZERO
        self.fills = 0
        self.rested = False
        self.cancel_at: int | None = None
        self.signed = ZERO  # expected signed quantity (margin accounts' exposure check)


class SimulatedExchange:
    """Matching engine with balances, fees and latency; see the module docstring for rules."""

    def __init__(
        self,
        balances: Mapping[str, Decimal | str | int] | None = None,
        *,
        maker_fee: Decimal | str = "0.0002",
        taker_fee: Decimal | str = "0.001",
        latency: Latency | None = None,
        tick_size: Decimal | str = "0.01",
        lot_size: Decimal | str = "0.00001",
        platform: str = "binance",
        quote: str | None = None,
    ) -> None:
        self.balances: dict[str, Decimal] = {
            k: Decimal(v) for k, v in (balances or {quote or "USDT": 10_000}).items()
        }
        #: The quote asset of symbols that do not end in a known one (``AAPL`` -> AAPL/USD).
        self.quote = quote
        self._pairs: dict[str, tuple[str, str]] = {}
        self.maker_fee, self.taker_fee = Decimal(maker_fee), Decimal(taker_fee)
        self.latency = latency or Latency()
        self.tick_size, self.lot_size = Decimal(tick_size), Decimal(lot_size)
        self.platform = platform
        #: Exchange time: the ``ts`` of the newest market event seen.
        self.now = 0
        #: Repeated order/cancel ids and stale market events that were ignored.
        self.duplicates = 0
        self._working: dict[str, _Working] = {}
        self._closed: dict[str, OrderStatus] = {}
        self._seen: set[str] = set()
        self._locks: dict[str, Decimal] = {}
        self._last: dict[str, MarketEvent] = {}
        self._watermark: dict[tuple[type, str], tuple[int, MarketEvent]] = {}
        self._update_seq: dict[str, int] = {}

    # --- queries ------------------------------------------------------------------------------

    def balance(self, asset: str) -> Decimal:
        return self.balances.get(asset, ZERO)

    def free(self, asset: str) -> Decimal:
        """Balance not reserved by open orders."""
        return self.balance(asset) - self._locks.get(asset, ZERO)

    @property
    def open_orders(self) -> list[Order]:
        return [w.order for w in self._working.values()]

    # --- orders -------------------------------------------------------------------------------

    def on_order(self, request: Order | Cancel) -> list[OrderUpdate]:
        """Accept, reject or (for a Cancel) cancel; returns the resulting updates."""
        if request.id in self._seen:
            self.duplicates += 1
            return []
        self._seen.add(request.id)
        arrival = request.ts + self.latency.delay(request.id)
        if isinstance(request, Cancel):
            return self._cancel(request, arrival)
        order = request
        reason = self._check(order)
        if reason:
            self._closed[order.id] = _REJECTED
            return [self._update(order, _REJECTED, arrival, reason, ZERO, ZERO)]
        why, work = self._reserve(order, arrival)
        if why:
            self._closed[order.id] = _REJECTED
            return [self._update(order, _REJECTED, arrival, why, ZERO, ZERO)]
        self._working[order.id] = work
        return [self._update(order, _NEW, arrival, "", ZERO, ZERO)]

    def pair(self, symbol: str) -> tuple[str, str]:
        """(base, quote) of ``symbol`` on this venue; ValueError if it cannot tell."""
        try:
            return self._pairs[symbol]
        except KeyError:
            pass
        quote = self.quote
        if quote is None:
            found = split_symbol(symbol)
        elif symbol.endswith(quote) and len(symbol) > len(quote):
            found = symbol[: -len(quote)], quote
        else:
            found = symbol, quote
        self._pairs[symbol] = found
        return found

    def _reserve(self, order: Order, arrival: int) -> tuple[str, _Working]:
        """Spot: lock what the order may spend; a reason to reject it, or "" and its record."""
        base, quote = self.pair(order.symbol)
        if order.side is _BUY:
            if order.quote_qty is not None:
                need = order.quote_qty * (1 + self.taker_fee)
            else:
                need = order.qty * self._reference(order) * (1 + self.taker_fee)
            asset = quote
        elif order.quote_qty is not None:
            asset, need = base, self._lots(order.quote_qty, self._reference(order))
        else:
            asset, need = base, order.qty
        locks = self._locks
        locked = locks.get(asset, ZERO)
        free = self.balances.get(asset, ZERO) - locked
        work = _Working(order, arrival, need)
        if free < need:
            why = f"insufficient balance: needs {need.normalize():f} {asset}, "
            return why + f"{free.normalize():f} free", work
        locks[asset] = locked + need
        return "", work

    def _lots(self, amount: Decimal, price: Decimal) -> Decimal:
        """The most whole lots that ``amount`` of quote pays for at ``price``."""
        lot = self.lot_size
        return (amount / price // lot) * lot

    def _left(self, work: _Working, price: Decimal) -> Decimal:
        """Quantity still to trade, for a quote amount at ``price``."""
        order = work.order
        if order.quote_qty is None:
            return order.qty - work.filled
        return self._lots(order.quote_qty - work.cost, price)

    def _check(self, order: Order) -> str:
        if order.platform != self.platform:
            return f"unknown platform {order.platform!r}: this exchange is {self.platform!r}"
        try:
            self.pair(order.symbol)
        except ValueError as exc:
            return str(exc)
        if order.quote_qty is not None:
            if order.type is not _MARKET:
                return "bad quote_qty: only a market order can be sized by a quote amount"
            if not order.quote_qty > 0 or order.qty:
                return f"bad quote_qty {order.quote_qty}: must be > 0, with qty 0"
        elif order.qty <= 0 or order.qty % self.lot_size:
            return f"bad quantity {order.qty}: must be a positive multiple of {self.lot_size}"
        if order.type is _MARKET:
            if order.price is not None:
                return "bad price: a market order takes no price"
            if order.symbol not in self._last:
                return f"bad price: no market price for {order.symbol} yet to fill against"
        elif order.price is None or order.price <= 0 or order.price % self.tick_size:
            return f"bad price {order.price}: must be a positive multiple of {self.tick_size}"
        return ""

    def _reference(self, order: Order) -> Decimal:
        if order.price is not None:
            return order.price
        last = self._last[order.symbol]
        if isinstance(last, Kline):
            return last.close
        if isinstance(last, OrderBook):
            return last.asks[0][0]
        return last.price

    def _cancel(self, cancel: Cancel, arrival: int) -> list[OrderUpdate]:
        work = self._working.get(cancel.order_id)
        if work is None or work.order.strategy != cancel.strategy:
            status = self._closed.get(cancel.order_id)
            why = f"order {cancel.order_id} is already {status}" if status else "unknown order"
            seq = self._update_seq[cancel.order_id] = self._update_seq.get(cancel.order_id, 0) + 1
            return [
                OrderUpdate(
                    cancel.order_id,
                    cancel.strategy,
                    cancel.platform,
                    cancel.symbol,
                    _CANCEL_REJECTED,
                    ZERO,
                    ZERO,
                    why,
                    seq,
                    arrival,
                    arrival,
                )
            ]
        if arrival > self.now:  # market events before the cancel arrives can still fill it
            work.cancel_at = arrival if work.cancel_at is None else min(work.cancel_at, arrival)
            return []
        return [self._close(work, _CANCELED, arrival, "canceled")]

    # --- market data --------------------------------------------------------------------------

    def on_market(self, event: MarketEvent) -> Sequence[Fill | OrderUpdate]:
        """Match working orders against one market event; returns fills and updates (a
        shared empty tuple when no order is working: no list to allocate on most events)."""
        ts = event.ts
        self._last[event.symbol] = event
        if ts > self.now:
            self.now = ts
        if not self._working:
            return _NOTHING
        key = (type(event), event.symbol)
        mark = self._watermark.get(key)
        # Comparing whole events is slow; only one with the same time can be the same event.
        if mark is not None and (event.ts < mark[0] or (event.ts == mark[0] and event == mark[1])):
            self.duplicates += 1
            return []
        self._watermark[key] = (event.ts, event)
        out: list[Fill | OrderUpdate] = []
        for work in list(self._working.values()):
            if work.cancel_at is not None and work.cancel_at <= event.ts:
                out.append(self._close(work, _CANCELED, work.cancel_at, "canceled", event.recv_ts))
            elif work.order.symbol == event.symbol:
                if isinstance(event, Kline):
                    self._match_bar(work, event, out)
                elif isinstance(event, OrderBook):
                    self._match_book(work, event, out)
                else:
                    self._match_trade(work, event, out)
        return out

    def _match_bar(self, work: _Working, bar: Kline, out: list[Fill | OrderUpdate]) -> None:
        order = work.order
        if bar.open_time < order.ts or bar.ts <= work.arrival:
            return  # the bar started before the decision, or ended before the order arrived
        buy = order.side is _BUY
        limit = order.price
        when = bar.open_time if bar.open_time > work.arrival else work.arrival
        if limit is None or (not work.rested and (bar.open <= limit if buy else bar.open >= limit)):
            price, liquidity = bar.open, _TAKER
        elif (bar.low < limit) if buy else (bar.high > limit):
            price, liquidity = limit, _MAKER
        else:
            work.rested = True
            return
        self._execute(work, self._left(work, price), price, liquidity, when, bar.recv_ts, out)

    def _match_book(self, work: _Working, book: OrderBook, out: list[Fill | OrderUpdate]) -> None:
        if book.ts < work.arrival:
            return
        order = work.order
        buy = order.side is _BUY
        limit = order.price
        for price, size in book.asks if buy else book.bids:
            if limit is not None and (price > limit if buy else price < limit):
                break
            if work.rested and limit is not None:
                price, liquidity = limit, _MAKER
            else:
                liquidity = _TAKER
            left = self._left(work, price)
            if not self._execute(
                work, min(left, size), price, liquidity, book.ts, book.recv_ts, out
            ):
                return
        if order.id in self._working:
            work.rested = True

    def _match_trade(self, work: _Working, trade: Trade, out: list[Fill | OrderUpdate]) -> None:
        limit = work.order.price
        if limit is None or not work.rested or trade.ts < work.arrival:
            return
        buy = work.order.side is _BUY
        if (
            (trade.side is _SELL and trade.price <= limit)
            if buy
            else (trade.side is _BUY and trade.price >= limit)
        ):
            left = self._left(work, limit)
            self._execute(work, min(left, trade.qty), limit, _MAKER, trade.ts, trade.recv_ts, out)

    def _execute(
        self,
        work: _Working,
        qty: Decimal,
        price: Decimal,
        liquidity: Liquidity,
        ts: int,
        recv_ts: int,
        out: list[Fill | OrderUpdate],
    ) -> bool:
        """Book one fill; False when the order is done (filled, or out of money)."""
        order = work.order
        if qty <= 0:  # a quote amount that buys less than one lot at this price
            why = f"quote_qty {order.quote_qty} pays for less than one lot ({self.lot_size}) "
            out.append(self._close(work, _CANCELED, ts, why + f"at {price}"))
            return False
        value = qty * price
        fee = value * (self.maker_fee if liquidity is _MAKER else self.taker_fee)
        why = self._settle(work, qty, price, value, fee)
        if why:
            out.append(self._close(work, _CANCELED, ts, why))
            return False
        work.filled += qty
        work.cost += value
        work.fills += 1
        out.append(
            Fill(
                order.id,
                order.strategy,
                order.platform,
                order.symbol,
                order.side,
                qty,
                price,
                fee,
                self.pair(order.symbol)[1],
                liquidity,
                work.fills,
                ts,
                recv_ts,
            )
        )
        if (
            work.filled >= order.qty
            if order.quote_qty is None
            else not self._lots(order.quote_qty - work.cost, price)
        ):
            out.append(self._close(work, _FILLED, ts, "", recv_ts))
            return False
        out.append(
            self._update(
                order,
                _PARTIALLY_FILLED,
                ts,
                "",
                work.filled,
                work.cost / work.filled,
                recv_ts,
            )
        )
        return True

    def _settle(
        self, work: _Working, qty: Decimal, price: Decimal, value: Decimal, fee: Decimal
    ) -> str:
        """Spot: move the balances for one fill, or say why they cannot pay for it."""
        order = work.order
        base, quote = self.pair(order.symbol)
        balances, locks = self.balances, self._locks
        if order.side is _BUY:
            spend = value + fee
            others = locks.get(quote, ZERO) - work.locked
            if balances.get(quote, ZERO) - others < spend:
                return f"insufficient balance at fill: {spend.normalize():f} {quote} needed"
            balances[quote] = balances.get(quote, ZERO) - spend
            balances[base] = balances.get(base, ZERO) + qty
            release, lock_asset = min(work.locked, spend), quote
        else:
            if balances.get(base, ZERO) - (locks.get(base, ZERO) - work.locked) < qty:
                return f"insufficient balance at fill: {qty.normalize():f} {base} needed"
            balances[base] = balances.get(base, ZERO) - qty
            balances[quote] = balances.get(quote, ZERO) + value - fee
            release, lock_asset = min(work.locked, qty), base
        work.locked -= release
        locks[lock_asset] -= release
        return ""

    # --- helpers ------------------------------------------------------------------------------

    def _close(
        self, work: _Working, status: OrderStatus, ts: int, reason: str, recv_ts: int | None = None
    ) -> OrderUpdate:
        order = work.order
        del self._working[order.id]
        self._closed[order.id] = status
        if work.locked:
            asset = self.pair(order.symbol)[1 if order.side is _BUY else 0]
            self._locks[asset] -= work.locked
            work.locked = ZERO
        avg = work.cost / work.filled if work.filled else ZERO
        return self._update(order, status, ts, reason, work.filled, avg, recv_ts)

    def _update(
        self,
        order: Order,
        status: OrderStatus,
        ts: int,
        reason: str,
        filled: Decimal,
        avg: Decimal,
        recv_ts: int | None = None,
    ) -> OrderUpdate:
        seq = self._update_seq[order.id] = self._update_seq.get(order.id, 0) + 1
        return OrderUpdate(
            order.id,
            order.strategy,
            order.platform,
            order.symbol,
            status,
            filled,
            avg,
            reason,
            seq,
            ts,
            ts if recv_ts is None or recv_ts < ts else recv_ts,
        )
