"""SMA crossover: hold ``qty`` while the fast moving average is above the slow one.

The signal is decided on a bar's close; the resulting market order can only fill at a later
event (the next bar's open), which :mod:`mqlab.venue` enforces. The averages are compared
exactly, ``fast_sum * slow > slow_sum * fast`` in Decimal, with no division and no rounding,
so :mod:`mqlab.vectorised` (integer ticks) and this class agree on every bar, ties included.

Decisions depend only on closes, not on when fills arrive, so the strategy sends the same
orders whether it runs in the backtest or behind a message bus where fills come back late.
(The one exception: when its last order is rejected, say for want of cash, it forgets it.)
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal
from typing import Any

from mqlab.events import ZERO, Kline, OrderStatus, OrderUpdate
from mqlab.strategy import Strategy, as_decimal

__all__ = ["SmaCross"]


class SmaCross(Strategy):
    """Long ``qty`` when SMA(fast) > SMA(slow) on the last close, flat otherwise."""

    name = "sma_cross"

    def __init__(
        self,
        fast: int = 10,
        slow: int = 30,
        qty: Decimal | str = Decimal("0.1"),
        *,
        symbol: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if not 0 < fast < slow:
            raise ValueError(f"need 0 < fast < slow, got fast={fast}, slow={slow}")
        self.fast, self.slow, self.qty, self.symbol = fast, slow, as_decimal(qty, "qty"), symbol
        self.long = False  # the position we asked for (fills may still be on their way)
        self._asked = ""  # id of the last order sent
        self._closes: deque[Decimal] = deque()  # the last `slow` closes
        self._fast_sum = ZERO
        self._slow_sum = ZERO
        self._derive()

    def _derive(self) -> None:
        # SMA(fast) > SMA(slow)  <=>  fast_sum * slow > slow_sum * fast  <=>  the same with
        # both multipliers divided by gcd(fast, slow): for 10/30, fast_sum * 3 > slow_sum,
        # one exact multiply a bar instead of two. (Decimal * int converts each time.)
        g = math.gcd(self.fast, self.slow)
        self._fast_by, self._slow_by = Decimal(self.slow // g), Decimal(self.fast // g)
        self._slow_plain = self.fast // g == 1
        self._fast_back = -self.fast - 1  # closes[-fast - 1] leaves the fast window

    def on_kline(self, kline: Kline) -> None:
        if kline.symbol != self.symbol:
            if self.symbol is not None:
                return
            self.symbol = kline.symbol
        close = kline.close
        closes = self._closes
        closes.append(close)
        if len(closes) > self.slow:  # both windows full: every bar but the first `slow`
            fast_sum = self._fast_sum + close - closes[self._fast_back]
            slow_sum = self._slow_sum + close - closes.popleft()
        else:
            fast_sum = self._fast_sum + close
            if len(closes) > self.fast:
                fast_sum -= closes[self._fast_back]
            slow_sum = self._slow_sum + close
            if len(closes) < self.slow:
                self._fast_sum, self._slow_sum = fast_sum, slow_sum
                return
        self._fast_sum, self._slow_sum = fast_sum, slow_sum
        slow_side = slow_sum if self._slow_plain else slow_sum * self._slow_by
        above = fast_sum * self._fast_by > slow_side
        if above is not self.long:
            self.long = above
            self._asked = (self.buy if above else self.sell)(self.qty).id

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._derive()  # derived from fast and slow: older snapshots may lack them

    def on_order_update(self, update: OrderUpdate) -> None:
        if update.order_id == self._asked and update.status is OrderStatus.REJECTED:
            self.long = not self.long  # it never happened: e.g. no cash left for the buy
