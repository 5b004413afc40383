"""Look-ahead bias (未来函数) is impossible by construction in the event-driven engine.

A strategy only ever holds the present: it is handed one event, has no reference to the
data source or the engine, cannot stash anything on the (frozen, slotted) events, and its
orders fill on later events only. Each test has a control showing the peek *would* work
where the future is within reach, so none of them can pass vacuously.
"""

from __future__ import annotations

import dataclasses
import gc

import pytest

from mqlab.backtest import Backtest, run_backtest
from mqlab.events import Kline
from mqlab.lookahead import later_klines, reachable
from mqlab.market import SAMPLE_DATA, iter_binance_csv, synthetic_klines
from mqlab.strategy import Strategy

KLINES = synthetic_klines(400, seed=13)


class Prophet(Strategy):
    """Scans the whole heap of live objects for bars from its future."""

    name = "prophet"

    def __init__(self, every: int = 40) -> None:
        super().__init__()
        self.every, self.bars, self.glimpses = every, 0, 0

    def on_kline(self, kline: Kline) -> None:
        self.bars += 1
        if self.bars % self.every:
            return
        self.glimpses += len(later_klines(gc.get_objects(), kline))


@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
def test_with_a_lazy_source_the_future_does_not_exist_yet() -> None:
    prophet = Prophet()
    run_backtest(prophet, iter_binance_csv(SAMPLE_DATA, platform="lazy"))
    assert prophet.bars == 4320 and prophet.glimpses == 0


@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
def test_control_a_preloaded_history_is_all_there() -> None:
    prophet = Prophet()
    run_backtest(prophet, list(iter_binance_csv(SAMPLE_DATA, platform="eager")))
    assert prophet.glimpses > 0  # vectorised-style: the whole future sits in memory...


class Explorer(Strategy):
    """Follows every reference it holds, looking for the engine or a later bar."""

    name = "explorer"

    def __init__(self) -> None:
        super().__init__()
        self.found: list[object] = []
        self.bars = 0

    def on_kline(self, kline: Kline) -> None:
        self.bars += 1
        if self.bars % 50 == 0:
            held = list(reachable(self))
            self.found += [o for o in held if isinstance(o, Backtest)]
            self.found += later_klines(held, kline)


def test_even_with_a_preloaded_list_nothing_reachable_leads_to_the_future() -> None:
    explorer = Explorer()
    run_backtest(explorer, KLINES)  # ...but the strategy holds no path to it
    assert explorer.bars == len(KLINES) and explorer.found == []


def test_control_the_explorer_finds_what_it_is_given() -> None:
    explorer = Explorer()
    explorer.leak = KLINES  # type: ignore[attr-defined]  # hand it the data, and it finds it
    run_backtest(explorer, KLINES)
    assert explorer.found


class Peeker(Strategy):
    """Tries the obvious ways to see the next bar; records which of them raised."""

    name = "peeker"

    def __init__(self) -> None:
        super().__init__()
        self.failures: set[str] = set()

    def on_kline(self, kline: Kline) -> None:
        attempts = {
            "self.data": lambda: self.data,  # type: ignore[attr-defined]
            "self.engine": lambda: self.engine,  # type: ignore[attr-defined]
            "kline.next": lambda: kline.next,  # type: ignore[attr-defined]
            "stash on event": lambda: setattr(kline, "note", 1),
            "edit event": lambda: setattr(kline, "close", kline.high),
        }
        for name, attempt in attempts.items():
            try:
                attempt()
            except (AttributeError, TypeError, dataclasses.FrozenInstanceError):
                self.failures.add(name)


def test_the_obvious_peeks_all_fail() -> None:
    peeker = Peeker()
    run_backtest(peeker, KLINES[:5])
    assert peeker.failures == {"self.data", "self.engine", "kline.next", "stash on event",
                               "edit event"}  # fmt: skip


class BuyTheLow(Strategy):
    """Sees a bar, then bids at that bar's low: free money if it filled on the same bar."""

    name = "buy_the_low"

    def on_kline(self, kline: Kline) -> None:
        for order_id in list(self.open_orders):
            self.cancel(order_id)
        if self.position() == 0:
            self.buy("0.1", price=kline.low)
        else:
            self.sell("0.1")


def test_no_order_fills_on_the_bar_that_produced_it() -> None:
    result = run_backtest(BuyTheLow(), KLINES)
    decided = {o.id: o.ts for o in result.orders}
    sent = {o.id: o for o in result.orders}
    by_open = {k.open_time: k for k in KLINES}
    assert result.fills
    for fill in result.fills:
        assert fill.recv_ts > decided[fill.order_id]
        bar = by_open[fill.ts // 60_000 * 60_000]
        assert bar.open_time >= decided[fill.order_id]  # a bar that began after the decision
        order = sent[fill.order_id]
        if order.price is not None:  # a bid at its bar's low: filled only if a later bar
            assert bar.open <= order.price or bar.low < order.price  # traded through it
    # On the same bar every bid at the low would have been hit; here many never are.
    bids = {o.id for o in sent.values() if getattr(o, "price", None) is not None}
    assert 0 < len(bids & {f.order_id for f in result.fills}) < len(bids)


def test_the_strategy_clock_is_the_present_event() -> None:
    class Clock(Strategy):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[tuple[int, int]] = []

        def on_kline(self, kline: Kline) -> None:
            self.times.append((self.now, kline.recv_ts))

    clock = Clock()
    run_backtest(clock, KLINES[:50])
    assert all(now == recv for now, recv in clock.times)


@pytest.mark.parametrize("bad", [[KLINES[5], KLINES[4]]])
def test_a_source_cannot_rewind_time(bad: list[Kline]) -> None:
    with pytest.raises(ValueError, match="not in time order"):
        run_backtest(Prophet(), bad)


def test_later_klines_compares_stream_and_time() -> None:
    now = KLINES[10]
    other = dataclasses.replace(KLINES[20], symbol="ETHUSDT")
    assert later_klines([KLINES[9], now, KLINES[11], other, "x"], now) == [KLINES[11]]
    assert KLINES[11] in list(reachable({"a": [KLINES[11]]}))
