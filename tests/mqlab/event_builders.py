"""Test-data builders for market and order events: short calls, explicit about what matters.

Every builder fills the fields a test does not care about with fixed values (platform
``binance``, symbol ``BTCUSDT``, times from ``T0``), so a test names only what it checks.
Money is given as strings, as the events hold it (``Decimal``, never ``float``).
"""

from __future__ import annotations

from decimal import Decimal as D

from mqlab.events import (
    Cancel,
    Fill,
    Kline,
    Liquidity,
    OrderBook,
    OrderStatus,
    OrderUpdate,
    Side,
)

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, in ms
MIN = 60_000
Levels = list[tuple[str, str]]


def kline(i: int, o: str, h: str | None = None, low: str | None = None, c: str | None = None, *,
          symbol: str = "BTCUSDT", volume: str = "5", recv_delay: int = 0) -> Kline:  # fmt: skip
    """Bar ``i`` of a one-minute series from ``T0``; high, low and close default to the open.

    It is received ``recv_delay`` ms after it closes (a feed's lag).
    """
    t = T0 + i * MIN
    h, low, c = h or o, low or o, c or o
    return Kline("binance", symbol, "1m", t, D(o), D(h), D(low), D(c), D(volume),
                 t + MIN, t + MIN + recv_delay)  # fmt: skip


def book(bids: Levels, asks: Levels, ts: int, seq: int = 1) -> OrderBook:
    """A snapshot of (price, size) levels, best first, sent and received at ``ts``."""
    return OrderBook("binance", "BTCUSDT", tuple((D(p), D(q)) for p, q in bids),
                     tuple((D(p), D(q)) for p, q in asks), seq, ts, ts)  # fmt: skip


def _strategy(request_id: str) -> str:
    return request_id.rsplit("-", 1)[0]  # ids are "<strategy>-<n>"


def cancel(request_id: str, order_id: str, ts: int) -> Cancel:
    """Strategy ``<request_id's prefix>`` asks to cancel ``order_id`` at ``ts``."""
    return Cancel(request_id, _strategy(request_id), "binance", "BTCUSDT", order_id, ts, ts)


def fill(order_id: str, side: Side, qty: str, price: str, *, seq: int = 1, fee: str = "0",
         liquidity: Liquidity = Liquidity.TAKER, ts: int = T0) -> Fill:  # fmt: skip
    """Fill number ``seq`` of ``order_id``, fee in USDT."""
    return Fill(order_id, _strategy(order_id), "binance", "BTCUSDT", side, D(qty), D(price),
                D(fee), "USDT", liquidity, seq, ts, ts)  # fmt: skip


def update(order_id: str, status: OrderStatus, filled: str, avg_price: str, *, seq: int,
           ts: int = T0) -> OrderUpdate:  # fmt: skip
    """Update number ``seq`` of ``order_id``: its status and what has filled so far."""
    return OrderUpdate(order_id, _strategy(order_id), "binance", "BTCUSDT", status, D(filled),
                       D(avg_price), "", seq, ts, ts)  # fmt: skip


def fills(events: list) -> list[tuple[str, D, D, Liquidity]]:
    """The fills among ``events``, as (order id, qty, price, maker or taker)."""
    return [(f.order_id, f.qty, f.price, f.liquidity) for f in events if isinstance(f, Fill)]


def statuses(events: list) -> list[OrderStatus]:
    """The statuses of the order updates among ``events``, in order."""
    return [u.status for u in events if isinstance(u, OrderUpdate)]
