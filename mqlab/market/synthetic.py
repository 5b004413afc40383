"""Synthetic market data (行情), labelled synthetic everywhere: there is no network here.

* :func:`synthetic_frame` (a DataFrame in Binance's 12 columns) and :func:`synthetic_klines`:
  bars that look like Bitcoin's 1-minute bars: GARCH(1,1) volatility clustering, fat-tailed
  shocks, rare jumps, a daily volume cycle, consistent OHLC (``open`` = previous ``close``,
  ``low <= open, close <= high``), all on a 0.01 tick.
* :func:`synthetic_book_events`: order-book snapshots interleaved with public trades; the book
  imbalance carries a little information about the next move, as in real books.
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pandas as pd

from mqlab.events import INTERVAL_MS, Kline, OrderBook, Side, Trade
from mqlab.market.frames import frame_to_klines

__all__ = [
    "START_MS",
    "synthetic_book_events",
    "synthetic_frame",
    "synthetic_klines",
]

START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
_MINUTES_PER_DAY = 1440


# --- the synthetic generator -------------------------------------------------------------------


def _garch_returns(
    rng: np.random.Generator, n: int, sigma: float, alpha: float = 0.06, beta: float = 0.92
) -> tuple[np.ndarray, np.ndarray]:
    """Log returns with GARCH(1,1) variance and Student-t(5) shocks, and their volatility."""
    shocks = rng.standard_t(5, n) / math.sqrt(5 / 3)  # unit variance
    omega = sigma * sigma * (1 - alpha - beta)
    var = np.empty(n)
    ret = np.empty(n)
    v, r = sigma * sigma, 0.0
    for i, z in enumerate(shocks.tolist()):  # a recursion: numpy cannot vectorise it
        v = omega + alpha * r * r + beta * v
        r = math.sqrt(v) * z
        var[i], ret[i] = v, r
    return ret, np.sqrt(var)


def synthetic_frame(
    n: int = 4320,
    *,
    seed: int = 7,
    price: float = 42_000.0,
    start_ms: int = START_MS,
    interval: str = "1m",
    sigma: float = 0.0009,
    jump_rate: float = 1 / 1500,
) -> pd.DataFrame:
    """``n`` synthetic bars in Binance's 12 kline columns (times in ms, prices on a 0.01 tick).

    ``sigma`` is the long-run volatility per bar (0.09 %: roughly Bitcoin's, per minute);
    jumps of about 8 sigma arrive at ``jump_rate`` per bar. Same seed, same bars.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    step = INTERVAL_MS[interval]
    rng = np.random.default_rng(seed)
    ret, vol = _garch_returns(rng, n, sigma)
    jumps = rng.random(n) < jump_rate
    ret = ret + jumps * rng.normal(0.0, 8 * sigma, n)
    close = np.rint(price * np.exp(np.cumsum(ret)) * 100).astype(np.int64)  # ticks
    close = np.maximum(close, 1)
    open_ = np.concatenate(([round(price * 100)], close[:-1]))
    wick = np.abs(rng.normal(0.0, 0.6, (2, n))) * vol
    high = np.maximum(np.ceil(np.maximum(open_, close) * np.exp(wick[0])), np.maximum(open_, close))
    low = np.minimum(
        np.floor(np.minimum(open_, close) * np.exp(-wick[1])), np.minimum(open_, close)
    )
    low = np.maximum(low, 1)
    open_time = start_ms + step * np.arange(n, dtype=np.int64)
    minute = (open_time // 60_000) % _MINUTES_PER_DAY
    daily = 1.0 + 0.5 * np.sin(2 * np.pi * (minute - 480) / _MINUTES_PER_DAY)  # peaks ~14:00 UTC
    surprise = np.abs(ret) / vol
    volume = np.round(8.0 * daily * rng.lognormal(0.0, 0.5, n) * (0.5 + surprise), 5)
    typical = (open_ + high + low + close) / 400
    taker = np.clip(0.5 + 0.3 * np.tanh(ret / vol) + rng.normal(0, 0.05, n), 0.0, 1.0)
    taker_volume = np.round(volume * taker, 5)
    return pd.DataFrame(
        {
            "open_time": open_time,
            "open": open_ / 100,
            "high": high / 100,
            "low": low / 100,
            "close": close / 100,
            "volume": volume,
            "close_time": open_time + step - 1,
            "quote_volume": np.round(volume * typical, 8),
            "count": rng.poisson(volume * 40) + 1,
            "taker_buy_volume": taker_volume,
            "taker_buy_quote_volume": np.round(taker_volume * typical, 8),
            "ignore": 0,
        }
    )


def synthetic_klines(n: int = 4320, *, seed: int = 7, symbol: str = "BTCUSDT", **kw) -> list[Kline]:
    """``frame_to_klines(synthetic_frame(n, seed=seed))``: n synthetic 1-minute Kline events."""
    latency = kw.pop("feed_latency_ms", 0)
    interval = kw.get("interval", "1m")
    frame = synthetic_frame(n, seed=seed, **kw)
    return frame_to_klines(frame, symbol=symbol, interval=interval, feed_latency_ms=latency)


# --- synthetic order books and trades ----------------------------------------------------------


def synthetic_book_events(
    n: int = 2000,
    *,
    seed: int = 11,
    symbol: str = "BTCUSDT",
    platform: str = "binance",
    price: float = 42_000.0,
    levels: int = 10,
    every_ms: int = 1000,
    start_ms: int = START_MS,
    feed_latency_ms: int = 0,
    trades: bool = True,
) -> list[OrderBook | Trade]:
    """``n`` synthetic depth snapshots (``levels`` a side) with public trades in between.

    The imbalance of resting size (more bids than asks) follows a persistent AR(1) process and
    tilts the next move of the mid price, as real order-book imbalance does, weakly.
    Events are in time order; ``recv_ts = ts + feed_latency_ms``.
    """
    rng = np.random.default_rng(seed)
    tick = 1  # prices in ticks of 0.01
    ret, vol = _garch_returns(rng, n, 0.00012)
    imbalance = np.empty(n)
    x = 0.0
    for i, e in enumerate(rng.normal(0.0, 0.25, n).tolist()):
        x = 0.9 * x + e
        imbalance[i] = math.tanh(x)
    drift = np.concatenate(([0.0], 0.5 * imbalance[:-1] * vol[1:]))
    mid = price * 100 * np.exp(np.cumsum(ret + drift))
    spread = rng.choice([1, 1, 1, 2, 3], n)
    size = rng.lognormal(-1.0, 0.8, (n, 2, levels))
    gaps = rng.choice([1, 1, 2, 3], (n, 2, levels))
    out: list[OrderBook | Trade] = []
    trade_id = 1
    cent, lot = Decimal("0.01"), Decimal("0.00001")
    for i in range(n):
        ts = start_ms + i * every_ms
        bid0 = int(mid[i] - spread[i] / 2)
        ask0 = bid0 + int(spread[i]) * tick
        bid_px = bid0 - np.concatenate(([0], np.cumsum(gaps[i, 0, 1:])))
        ask_px = ask0 + np.concatenate(([0], np.cumsum(gaps[i, 1, 1:])))
        tilt = imbalance[i]
        bid_q = np.maximum(np.rint(size[i, 0] * (1 + tilt) * 1e5), 1).astype(np.int64)
        ask_q = np.maximum(np.rint(size[i, 1] * (1 - tilt) * 1e5), 1).astype(np.int64)
        bids = tuple(
            (Decimal(p) * cent, Decimal(q) * lot)
            for p, q in zip(bid_px.tolist(), bid_q.tolist(), strict=True)
        )
        asks = tuple(
            (Decimal(p) * cent, Decimal(q) * lot)
            for p, q in zip(ask_px.tolist(), ask_q.tolist(), strict=True)
        )
        out.append(OrderBook(platform, symbol, bids, asks, i + 1, ts, ts + feed_latency_ms))
        if not trades:
            continue
        for _ in range(int(rng.poisson(2.0))):
            buy = rng.random() < (1 + tilt) / 2
            t = ts + 1 + int(rng.integers(0, every_ms - 1)) if every_ms > 2 else ts
            px = asks[0][0] if buy else bids[0][0]
            qty = Decimal(max(1, round(float(rng.lognormal(-3.0, 1.0)) * 1e5))) * lot
            side = Side.BUY if buy else Side.SELL
            out.append(Trade(platform, symbol, trade_id, px, qty, side, t, t + feed_latency_ms))
            trade_id += 1
    out.sort(key=lambda e: (e.recv_ts, isinstance(e, Trade)))
    return out
