"""The margin venue: :class:`MarginExchange`, the spot venue with a margin (保证金账户) account.

It can go short (做空), is limited by a leverage (杠杆) cap, and liquidates (强平); the class
docstring gives the rules. Matching, latency, fees and sizing are the spot venue's
(:mod:`mqlab.venue.spot`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from mqlab.events import BUY as _BUY
from mqlab.events import CANCELED as _CANCELED
from mqlab.events import FILLED as _FILLED
from mqlab.events import SELL as _SELL
from mqlab.events import TAKER as _TAKER
from mqlab.events import ZERO, Fill, Kline, MarketEvent, Order, OrderBook, OrderUpdate
from mqlab.venue.spot import SimulatedExchange, _Working

__all__ = ["MarginExchange"]


class MarginExchange(SimulatedExchange):
    """The simulated venue with a margin (perpetual-style) account: shorts, a leverage cap and
    liquidation, all in the account's one settlement currency (``quote``, or the one balance).

    The rules, kept simple on purpose:

    * **Cash and positions.** The settlement balance is the account's cash. A fill moves it by
      ``-signed qty × price - fee``, exactly as :class:`~mqlab.portfolio.Portfolio` books it,
      so a short sale credits its proceeds. The base asset's balance is the signed position
      (negative: short). There are no funding payments and no borrowing fees.
    * **Equity** is cash + Σ position × mark, the mark being the last price seen for that
      symbol: a kline's close, a book's mid, a trade's price.
    * **Leverage cap.** Gross exposure, Σ |position| × mark, may not exceed ``leverage`` ×
      equity. An order is accepted when, once it and every working order have filled at the
      reference price (the limit, or the last price), the cap still holds, or when it does not
      raise gross exposure: closing is always allowed. Each fill that grows a position is
      checked again at its own price; one that breaks the cap cancels the rest of the order.
      Fees are left out of both checks.
    * **Liquidation.** After each market event for a held symbol, if equity is below
      ``maintenance`` × gross exposure, every working order is canceled and every position
      is closed at its mark with the taker fee. The fills carry order ids
      ``liquidation-<n>`` and the strategy that last traded the symbol. Only marks are
      checked (a bar's high cannot liquidate a short, only its close), and a gap can leave
      equity below zero: there is no insurance fund.
    """

    def __init__(
        self,
        balances: Mapping[str, Decimal | str | int] | None = None,
        *,
        leverage: Decimal | str | int = 1,
        maintenance: Decimal | str = "0.05",
        quote: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(balances, quote=quote, **options)
        if quote is None and len(self.balances) != 1:
            raise ValueError("a margin account settles in one currency: give quote='USDT'")
        self.currency = quote or next(iter(self.balances))
        self.leverage, self.maintenance = Decimal(leverage), Decimal(maintenance)
        if not self.leverage > 0:
            raise ValueError(f"leverage must be > 0, got {leverage}")
        if not 0 <= self.maintenance < 1:
            raise ValueError(f"maintenance must be in [0, 1), got {maintenance}")
        #: Times the account was liquidated.
        self.liquidations = 0
        self._positions: dict[str, Decimal] = {}
        self._owner: dict[str, str] = {}  # symbol -> the strategy that last traded it

    # --- queries ------------------------------------------------------------------------------

    def position(self, symbol: str) -> Decimal:
        """Signed position in ``symbol`` (negative: short)."""
        return self._positions.get(symbol, ZERO)

    def mark(self, symbol: str) -> Decimal:
        """The last price seen for ``symbol``: a kline's close, a book's mid, a trade's price."""
        last = self._last[symbol]
        if isinstance(last, Kline):
            return last.close
        if isinstance(last, OrderBook):
            return last.mid
        return last.price

    def equity(self) -> Decimal:
        """Cash plus every position at its mark."""
        cash = self.balances.get(self.currency, ZERO)
        return cash + sum((q * self.mark(s) for s, q in self._positions.items() if q), ZERO)

    def exposure(self) -> Decimal:
        """Gross exposure: Σ |position| × mark."""
        return sum((abs(q) * self.mark(s) for s, q in self._positions.items() if q), ZERO)

    # --- the account's rules ------------------------------------------------------------------

    def _reserve(self, order: Order, arrival: int) -> tuple[str, _Working]:
        work = _Working(order, arrival, ZERO)
        quote = self.pair(order.symbol)[1]
        if quote != self.currency:
            return f"this margin account settles in {self.currency}, not {quote}", work
        ref = self._reference(order)
        qty = order.qty if order.quote_qty is None else order.quote_qty / ref
        work.signed = qty if order.side is _BUY else -qty
        pending: dict[str, Decimal] = {}
        for other in self._working.values():
            symbol = other.order.symbol
            pending[symbol] = pending.get(symbol, ZERO) + other.signed
        prices = {order.symbol: ref}
        before = self._gross(pending, prices)
        pending[order.symbol] = pending.get(order.symbol, ZERO) + work.signed
        after = self._gross(pending, prices)
        equity = self.equity()
        if after > before and after > self.leverage * equity:
            return (
                f"insufficient margin: gross exposure would be {after:.2f} {quote}, above "
                f"{self.leverage.normalize():f} x equity {equity:.2f}"
            ), work
        self._owner[order.symbol] = order.strategy
        return "", work

    def _gross(self, pending: dict[str, Decimal], prices: dict[str, Decimal]) -> Decimal:
        """Gross exposure once the ``pending`` signed quantities have filled."""
        total = ZERO
        for symbol in self._positions.keys() | pending.keys():
            qty = self._positions.get(symbol, ZERO) + pending.get(symbol, ZERO)
            if qty:
                price = self.mark(symbol) if symbol in self._last else prices[symbol]
                total += abs(qty) * price
        return total

    def _settle(
        self, work: _Working, qty: Decimal, price: Decimal, value: Decimal, fee: Decimal
    ) -> str:
        order = work.order
        symbol = order.symbol
        signed = qty if order.side is _BUY else -qty
        held = self._positions.get(symbol, ZERO)
        new = held + signed
        cash = self.balances.get(self.currency, ZERO)
        if abs(new) > abs(held):  # the fill grows the position: check the cap at this price
            others = [(q, self.mark(s)) for s, q in self._positions.items() if q and s != symbol]
            equity = cash - signed * price + new * price + sum((q * p for q, p in others), ZERO)
            gross = abs(new) * price + sum((abs(q) * p for q, p in others), ZERO)
            if gross > self.leverage * equity:
                return (
                    f"insufficient margin at fill: gross exposure {gross:.2f} {self.currency}"
                    f" above {self.leverage.normalize():f} x equity {equity:.2f}"
                )
        base = self.pair(symbol)[0]
        self.balances[self.currency] = cash - signed * price - fee
        self.balances[base] = self.balances.get(base, ZERO) + signed
        self._positions[symbol] = new
        work.signed -= signed
        return ""

    def on_market(self, event: MarketEvent) -> Sequence[Fill | OrderUpdate]:
        """Match as the spot venue does, then liquidate if equity fell below maintenance."""
        out = super().on_market(event)
        if self._positions.get(event.symbol):
            equity, gross = self.equity(), self.exposure()
            if equity < self.maintenance * gross:
                out = list(out)  # the spot venue's answer may be its shared empty tuple
                self._liquidate(event, equity, gross, out)
        return out

    def _liquidate(
        self, event: MarketEvent, equity: Decimal, gross: Decimal, out: list[Fill | OrderUpdate]
    ) -> None:
        why = (
            f"liquidated: equity {equity:.2f} {self.currency} below {self.maintenance:f} x "
            f"gross exposure {gross:.2f}"
        )
        for work in list(self._working.values()):
            out.append(self._close(work, _CANCELED, event.ts, why, event.recv_ts))
        for symbol, held in list(self._positions.items()):
            if not held:
                continue
            self.liquidations += 1
            order_id = f"liquidation-{self.liquidations}"
            strategy = self._owner.get(symbol, "liquidation")
            price, qty = self.mark(symbol), abs(held)
            fee = qty * price * self.taker_fee
            base = self.pair(symbol)[0]
            self.balances[self.currency] += held * price - fee
            self.balances[base] = self.balances.get(base, ZERO) - held
            self._positions[symbol] = ZERO
            side = _SELL if held > 0 else _BUY
            self._closed[order_id] = _FILLED
            out.append(
                Fill(
                    order_id,
                    strategy,
                    self.platform,
                    symbol,
                    side,
                    qty,
                    price,
                    fee,
                    self.currency,
                    _TAKER,
                    1,
                    event.ts,
                    event.recv_ts,
                )
            )
            out.append(
                OrderUpdate(
                    order_id,
                    strategy,
                    self.platform,
                    symbol,
                    _FILLED,
                    qty,
                    price,
                    why,
                    1,
                    event.ts,
                    event.recv_ts,
                )
            )
