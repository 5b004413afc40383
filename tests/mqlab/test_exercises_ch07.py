"""Chapter 07 checks: the reference solutions pass, and the usual mistakes fail with a hint."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import pandas as pd
import pytest

from mqlab.events import Kline
from mqlab.exercises import ExerciseError, ch07, submit
from mqlab.exercises.solutions import ch07 as reference
from mqlab.strategy import Strategy


def test_the_reference_solutions_pass() -> None:
    assert (ch07.check_vectorised_trades(reference.vectorised_trades)).passed
    assert (ch07.check_breakout(reference.Breakout)).passed


def no_shift(frame: pd.DataFrame, fast: int, slow: int) -> pd.DataFrame:
    close = frame["close"]
    position = (close.rolling(fast).mean() > close.rolling(slow).mean()).astype(int)
    change = position.diff().fillna(position)
    at = change != 0
    side = change[at].map({1: "BUY", -1: "SELL"})
    return pd.DataFrame({"ts": frame["open_time"][at], "side": side, "price": frame["open"][at]})


def at_the_close(frame: pd.DataFrame, fast: int, slow: int) -> pd.DataFrame:
    trades = reference.vectorised_trades(frame, fast, slow)
    trades["price"] = frame["close"].shift(1)[trades.index]
    trades["price"] = trades["price"] + 0.01  # a different price than the next open
    return trades


def no_columns(frame: pd.DataFrame, fast: int, slow: int) -> pd.DataFrame:
    return reference.vectorised_trades(frame, fast, slow).rename(columns={"ts": "time"})


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (no_shift, "未来函数"),
        (at_the_close, "trade 0: yours"),
        (no_columns, "lacks column"),
    ],
)
def test_vectorised_mistakes_fail(answer: object, words: str) -> None:
    with pytest.raises(ExerciseError, match=words):
        ch07.check_vectorised_trades(answer)  # type: ignore[arg-type]


class IncludesThisBar(reference.Breakout):
    def on_kline(self, kline: Kline) -> None:
        # The mistake: this bar joins the window before the reference decides on it, so the
        # close is compared with a maximum that includes its own bar's high.
        self.highs.append(kline.high)
        self.lows.append(kline.low)
        super().on_kline(kline)


class ForgetsItIsLong(reference.Breakout):
    def on_kline(self, kline: Kline) -> None:
        if len(self.highs) == self.highs.maxlen:
            if kline.close > max(self.highs):
                self.buy(self.qty)
            elif kline.close < min(self.lows):
                self.sell(self.qty)
        self.highs.append(kline.high)
        self.lows.append(kline.low)


class WindowTooLong(reference.Breakout):
    def __init__(self, n: int = 20, qty: Decimal = Decimal("0.1")) -> None:
        super().__init__(n + 1, qty)


class LimitAtTheClose(reference.Breakout):
    def buy(self, qty, price=None, **where):  # type: ignore[no-untyped-def]
        return super().buy(qty, price=self._last.close, **where)  # type: ignore[union-attr]


class NoArguments(Strategy):
    def __init__(self) -> None:
        super().__init__()
        self.closes: deque[Decimal] = deque()


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (IncludesThisBar, "no orders at all"),
        (ForgetsItIsLong, "already long"),
        (WindowTooLong, r"order \d+ \(n=20\): yours is"),
        (LimitAtTheClose, "market orders"),
        (NoArguments, r"Breakout\(n=20"),
        (reference.vectorised_trades, "Strategy subclass"),
    ],
)
def test_breakout_mistakes_fail(answer: object, words: str) -> None:
    with pytest.raises(ExerciseError, match=words):
        ch07.check_breakout(answer)  # type: ignore[arg-type]


def test_submit_gives_a_verdict_instead_of_raising() -> None:
    def stub(frame: pd.DataFrame, fast: int, slow: int) -> pd.DataFrame:
        raise NotImplementedError("write vectorised_trades()")

    verdict = submit(ch07.check_vectorised_trades, stub)
    assert str(verdict).startswith("✗ vectorised_trades: not answered yet: write vectorised_")
    verdict = submit(ch07.check_vectorised_trades, no_shift)
    assert not verdict and "未来函数" in verdict.says and "shift(1)" in verdict.hint
    assert submit(ch07.check_breakout, reference.Breakout)
