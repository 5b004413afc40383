"""Reference solutions for chapter 07 (checked by :mod:`mqlab.exercises.ch07`)."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import pandas as pd

from mqlab.events import Kline
from mqlab.strategy import Strategy

__all__ = ["Breakout", "vectorised_trades"]


def vectorised_trades(frame: pd.DataFrame, fast: int, slow: int) -> pd.DataFrame:
    """SMA crossover trades, vectorised, with the one shift that keeps the future out."""
    close = frame["close"]
    signal = (close.rolling(fast).mean() > close.rolling(slow).mean()).astype(int)
    position = signal.shift(1, fill_value=0)  # decided at t-1's close, held during bar t
    change = position.diff().fillna(position)
    at = change != 0
    return pd.DataFrame(
        {
            "ts": frame["open_time"][at],
            "side": change[at].map({1: "BUY", -1: "SELL"}),
            "price": frame["open"][at],
        }
    )


class Breakout(Strategy):
    """Long ``qty`` after a close above the previous ``n`` highs, flat after one below the lows."""

    name = "breakout"

    def __init__(self, n: int = 20, qty: Decimal = Decimal("0.1")) -> None:
        super().__init__()
        self.qty = qty
        self.highs: deque[Decimal] = deque(maxlen=n)
        self.lows: deque[Decimal] = deque(maxlen=n)
        self.long = False

    def on_kline(self, kline: Kline) -> None:
        if len(self.highs) == self.highs.maxlen:  # decide on the previous n bars only...
            if not self.long and kline.close > max(self.highs):
                self.long = True
                self.buy(self.qty)
            elif self.long and kline.close < min(self.lows):
                self.long = False
                self.sell(self.qty)
        self.highs.append(kline.high)  # ...then let this bar join the window
        self.lows.append(kline.low)
