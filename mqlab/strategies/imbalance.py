"""Order-book imbalance: buy when resting bids outweigh asks, get out when they no longer do.

Imbalance is the bid share of the size resting in the top ``depth`` levels,
``bids / (bids + asks)``. Above ``enter`` the strategy buys ``qty`` with a market order,
which walks the book and may fill in several pieces (partial fills); below ``exit`` it sells
the same quantity. A small but real signal in the synthetic books, and a lesson in how quickly
taker fees eat a small edge.

Like :class:`~mqlab.strategies.SmaCross`, it decides from market data alone (``long`` is the
position it asked for), so it sends the same orders however late fills come back.
"""

from __future__ import annotations

from decimal import Decimal

from mqlab.events import ZERO, OrderBook
from mqlab.strategy import Strategy, as_decimal

__all__ = ["BookImbalance"]


class BookImbalance(Strategy):
    """Long ``qty`` while the top-of-book imbalance says buyers dominate."""

    name = "imbalance"

    def __init__(
        self,
        depth: int = 5,
        enter: Decimal | str = Decimal("0.75"),
        exit: Decimal | str = Decimal("0.5"),
        qty: Decimal | str = Decimal("0.1"),
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.depth, self.qty = depth, as_decimal(qty, "qty")
        self.enter, self.exit = as_decimal(enter, "enter"), as_decimal(exit, "exit")
        if not 0 < self.exit <= self.enter < 1:
            raise ValueError("need 0 < exit <= enter < 1")
        self.long = False

    @staticmethod
    def imbalance(book: OrderBook, depth: int) -> Decimal:
        """Bid share of the resting size in the top ``depth`` levels (0.5 = balanced)."""
        bids = sum((q for _, q in book.bids[:depth]), ZERO)
        asks = sum((q for _, q in book.asks[:depth]), ZERO)
        return bids / (bids + asks)

    def on_orderbook(self, book: OrderBook) -> None:
        share = self.imbalance(book, self.depth)
        if not self.long and share > self.enter:
            self.long = True
            self.buy(self.qty)
        elif self.long and share < self.exit:
            self.long = False
            self.sell(self.qty)
