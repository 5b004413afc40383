"""Other venues through ccxt (optional: ``pip install -e '.[live]'``): closed klines as events.

ccxt's ``ccxt.pro`` speaks the websocket dialects of a hundred exchanges (OKX, Bybit, ...).
It is large (~110 MB, ~1.7 s to import), so mqlab never imports it unless this module is
used, and it is no default dependency.

Two things differ from :class:`mqlab.live.source.BinanceSource`:

* ccxt hands candles over as ``[open time, open, high, low, close, volume]`` and drops
  Binance's "is this kline closed?" flag ``x``. :class:`CcxtKlineSource` therefore counts a
  candle as closed when a *later* candle starts, and delivers it then, with its last values:
  up to one update period later than the ``x`` flag would (2 s on Binance);
* prices arrive as floats; they become Decimals through their shortest repr (``str``), which
  is exact for any price an exchange quotes (fewer than 16 significant digits).

ccxt reconnects by itself; a candle that never appeared (the connection was down while it
closed) is reported as a :class:`~mqlab.live.binance.Gap`, as the Binance source does.

Tests and offline use: :func:`make_exchange` points ccxt at another websocket URL (its
documented ``urls["api"]["ws"]`` override) and gives it its markets with ``set_markets``, so
it never fetches the exchange's market list over the network.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

from mqlab.events import INTERVAL_MS, Kline
from mqlab.live.binance import Gap, LiveInputError, check_interval
from mqlab.live.source import wall_ms

__all__ = ["CcxtKlineSource", "ccxt_market", "make_exchange"]


def ccxt_market(symbol: str, *, market_id: str | None = None) -> dict[str, Any]:
    """The few fields of a spot market ccxt needs to stream it: ``"BTC/USDT"`` → a dict for
    ``exchange.set_markets([...])`` (``market_id`` defaults to Binance's ``BTCUSDT``)."""
    base, sep, quote = symbol.partition("/")
    if not (sep and base and quote):
        raise LiveInputError(
            f"unknown symbol {symbol!r}: ccxt writes them BASE/QUOTE, e.g. BTC/USDT"
        )
    market_id = market_id or f"{base}{quote}"
    return {
        "id": market_id,
        "lowercaseId": market_id.lower(),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "type": "spot",
        "spot": True,
        "margin": False,
        "swap": False,
        "future": False,
        "option": False,
        "contract": False,
        "linear": None,
        "inverse": None,
        "active": True,
    }


def make_exchange(
    exchange_id: str,
    *,
    ws_url: str | None = None,
    markets: list[dict[str, Any]] | None = None,
) -> Any:
    """A ``ccxt.pro`` exchange by id (``"binance"``, ``"okx"``, ...); with ``ws_url`` its spot
    websocket URL replaced, with ``markets`` its market list set (no network needed)."""
    try:
        import ccxt.pro as ccxtpro
    except ImportError:
        raise LiveInputError(
            "ccxt is not installed; it is optional: pip install -e '.[live]'"
        ) from None
    cls = getattr(ccxtpro, exchange_id, None)
    if not isinstance(cls, type):
        raise LiveInputError(
            f"unknown ccxt exchange {exchange_id!r}; e.g. binance, okx, bybit "
            "(ccxt.pro.exchanges lists them all)"
        )
    exchange = cls()
    if ws_url is not None:
        ws = exchange.urls["api"]["ws"]
        if isinstance(ws, dict):
            for key in ("spot", "public") if "spot" in ws or "public" in ws else ws:
                if key in ws and isinstance(ws[key], str):
                    ws[key] = ws_url
        else:
            exchange.urls["api"]["ws"] = ws_url
    if markets is not None:
        exchange.set_markets(markets)
    return exchange


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


class CcxtKlineSource:
    """Async iterator of closed :class:`~mqlab.events.Kline` s from ``exchange.watch_ohlcv``."""

    def __init__(
        self,
        exchange: Any,
        symbol: str,
        interval: str = "1m",
        *,
        on_notice: Callable[[Any], None] | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.exchange = exchange
        self.ccxt_symbol = symbol
        self.interval = check_interval(interval)
        market = exchange.market(symbol)
        #: mqlab's spelling: BASEQUOTE, whatever the venue's market id looks like.
        self.symbol = f"{market['base']}{market['quote']}"
        self.platform = str(exchange.id)
        self.on_notice = on_notice
        self.clock = clock
        self.gaps: list[Gap] = []
        #: For the paper session's status line, as :class:`~mqlab.live.source.BinanceSource`
        #: keeps them (ccxt reconnects on its own and does not say).
        self.reconnects = 0
        self.last_arrival = 0
        self.last_frame_at = 0.0
        self._step = INTERVAL_MS[self.interval]
        self._pending: list[Any] | None = None
        self._last_open: int | None = None
        self._floor = 0
        self._closed = False

    def close(self) -> None:
        self._closed = True

    async def aclose(self) -> None:
        """Close ccxt's connections (call once done)."""
        self._closed = True
        await self.exchange.close()

    def __aiter__(self) -> AsyncIterator[Kline]:
        return self._run()

    async def _run(self) -> AsyncIterator[Kline]:
        while not self._closed:
            candles = await self.exchange.watch_ohlcv(self.ccxt_symbol, self.interval)
            self.last_frame_at = time.perf_counter()
            arrival = self.last_arrival = self.clock()
            for candle in candles:
                bar = self._update(candle, arrival)
                if bar is not None:
                    yield bar

    def _update(self, candle: list[Any], arrival: int) -> Kline | None:
        """Keep the newest candle; when a later one starts, the kept one has closed."""
        pending = self._pending
        if pending is None or candle[0] == pending[0]:
            self._pending = list(candle)
            return None
        if candle[0] < pending[0]:
            return None  # an older candle re-sent: it was delivered (or lost) already
        self._pending = list(candle)
        return self._closed_bar(pending, arrival)

    def _closed_bar(self, c: list[Any], arrival: int) -> Kline:
        open_time = int(c[0])
        if self._last_open is not None and open_time != self._last_open + self._step:
            missing = (open_time - self._last_open) // self._step - 1
            gap = Gap(f"ccxt {self.platform} {self.ccxt_symbol} {self.interval}",
                      "kline open time", self._last_open, open_time, missing, arrival)  # fmt: skip
            self.gaps.append(gap)
            if self.on_notice is not None:
                self.on_notice(gap)
        self._last_open = open_time
        ts = open_time + self._step
        recv_ts = max(arrival, ts, self._floor)
        self._floor = recv_ts
        return Kline(
            self.platform, self.symbol, self.interval, open_time,
            _dec(c[1]), _dec(c[2]), _dec(c[3]), _dec(c[4]), _dec(c[5]), ts, recv_ts,
        )  # fmt: skip
