"""A learner's own strategy, in its own file: a long/short SMA crossover that reverses on
each cross and sizes every new position as a fraction of equity.

This file is an example of what you would write yourself; nothing in mqlab imports it. Run it
on the bundled synthetic daily stock bars (Yahoo Finance's CSV format) on the margin venue,
which lets it go short:

    python -m mqlab backtest --data mqlab/data/synthetic_ACME_1d.csv --venue margin \\
        --strategy mqlab/data/sma_long_short.py:SmaLongShort --param fast=10 --param slow=20

It trades only on a *cross*, as backtrader's ``CrossOver`` indicator does: when the fast
average goes from below the slow one (the last time they differed) to above it, it buys
back any short and goes long; the mirror image sends it short. A new position is sized by an
amount of quote, ``fraction`` of equity at the signal, which the venue converts into a
quantity at the price it fills at (the next bar's open), as Binance's ``quoteOrderQty`` does.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from mqlab.events import Kline
from mqlab.strategy import Strategy


class SmaLongShort(Strategy):
    """Long after SMA(fast) crosses above SMA(slow), short after it crosses below."""

    name = "sma_long_short"

    def __init__(
        self,
        fast: int = 10,
        slow: int = 20,
        fraction: Decimal = Decimal("0.95"),
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if not 0 < fast < slow:
            raise ValueError(f"need 0 < fast < slow, got fast={fast}, slow={slow}")
        if not 0 < fraction <= 1:
            raise ValueError(f"need 0 < fraction <= 1, got {fraction}")
        self.fast, self.slow, self.fraction = fast, slow, Decimal(fraction)
        self.closes: deque[Decimal] = deque(maxlen=slow)
        self.last_sign = 0  # sign of fast - slow the last time they differed (0: not yet)

    def on_kline(self, bar: Kline) -> None:
        self.closes.append(bar.close)
        if len(self.closes) < self.slow:
            return
        closes = list(self.closes)
        # fast mean > slow mean, compared exactly: sum_fast * slow > sum_slow * fast
        diff = sum(closes[-self.fast :]) * self.slow - sum(closes) * self.fast
        sign = (diff > 0) - (diff < 0)
        crossed = sign and self.last_sign and sign != self.last_sign
        if sign:
            self.last_sign = sign
        if crossed:
            self.reverse(sign)

    def reverse(self, sign: int) -> None:
        """Close what is held, then go long (``sign`` 1) or short (-1) with ``fraction`` of
        equity, as an amount of quote the venue converts at the fill price."""
        held = self.position()
        trade = self.buy if sign > 0 else self.sell
        if held and (held > 0) != (sign > 0):
            trade(abs(held))
        trade(quote_qty=self.equity_fraction(self.fraction))
