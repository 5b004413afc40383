"""The learner's long/short SMA cross, sized the way backtrader's ``PercentSizerInt`` sizes.

backtrader's percent sizer, when flat, asks for ``int(cash / close * percents / 100)``
shares at the signal bar's close; when a position is open it returns that position's size,
so ``close()`` then ``buy()`` flips the same size. This subclass sizes the same way through
the public API (``self.portfolio.cash``, ``self.position()``), for the parity test against
backtrader; the learner's own class sizes by an amount of quote at the fill price instead.
(Not a test module: the backtest CLI loads it as ``--strategy FILE:SizedAsBacktrader``.)
"""

from __future__ import annotations

from pathlib import Path

from mqlab.strategies import strategy_class

LEARNER = Path(__file__).parents[2] / "mqlab" / "data" / "sma_long_short.py"
SmaLongShort = strategy_class(f"{LEARNER}:SmaLongShort")


class SizedAsBacktrader(SmaLongShort):  # type: ignore[valid-type,misc]
    name = "sized_as_backtrader"

    def reverse(self, sign: int) -> None:
        held = self.position()
        size = abs(held) if held else int(self.portfolio.cash * self.fraction / self.closes[-1])
        trade = self.buy if sign > 0 else self.sell
        if held:
            trade(abs(held))  # backtrader's close()
        trade(size)  # backtrader's buy() / sell() with the sizer's size
