"""Binance's public market streams, parsed sans-IO: text frames in, market events out.

:class:`StreamParser` is a plain object in the style of h11 and wsproto: no socket, no
asyncio, no clock. :meth:`StreamParser.feed` takes one websocket text frame and the time it
arrived (ms) and returns what it meant, in order: :class:`~mqlab.events.Kline`,
:class:`~mqlab.events.Trade` and :class:`~mqlab.events.OrderBook` events (the very types the
CSV source yields), and :class:`Notice` s: a :class:`Gap` in a stream, a :class:`Malformed`
frame with its reason (never an exception: one bad frame must not stop a live feed), or a
:class:`ServerShutdown`. The async driver (:mod:`mqlab.live.source`) is a few dozen lines
around it, and the tests feed it strings.

The wire format (Binance spot "WebSocket Streams", checked against Binance's published docs):

* a *combined* stream, ``/stream?streams=btcusdt@kline_1m/btcusdt@depth5``, wraps every
  payload as ``{"stream": "<name>", "data": <payload>}``; stream names are lower case;
* ``<symbol>@kline_<interval>``: ``{"e": "kline", "E": event ms, "s": "BTCUSDT", "k": {"t":
  open ms, "T": close ms (open + interval - 1), "i": "1m", "o"/"h"/"l"/"c"/"v"/"q": decimal
  strings, "n": trades, "x": is this kline closed?, ...}}``, pushed every 2 s (every 1 s for
  ``1s``) while the candle is open, and once more with ``x`` true when it closes;
* ``<symbol>@trade``: ``{"e": "trade", "E", "s", "t": trade id, "p", "q", "T": trade ms, "m":
  is the buyer the maker?}``; trade ids of one symbol count up by one;
* ``<symbol>@depth5`` / ``10`` / ``20`` (optionally ``@100ms``): ``{"lastUpdateId", "bids",
  "asks"}``, the top levels once a second; no symbol and no time in it, so the stream name
  gives the symbol and the arrival time stands in for ``ts``;
* ``<symbol>@bookTicker``: ``{"u": book update id, "s", "b", "B", "a", "A"}``, the best bid and
  ask on every change; no time either.

Rules this parser applies (each is tested):

* a kline reaches the caller **once, when its candle closes** (``x`` true); in-progress
  updates are dropped unless ``in_progress=True``, and then they are Klines whose ``ts`` is
  the update's event time (before the bar's end: a consumer can tell them apart);
* **gaps** are reported, not hidden: a closed kline whose open time is not the previous one's
  plus the interval, a trade id that skips, a book update id that goes backwards. The event
  is still delivered; an exact repeat (a kline already delivered, an old trade id) is dropped
  and counted in ``duplicates``;
* ``recv_ts`` is the arrival time, but never earlier than the event's own time (a local clock
  behind Binance's would otherwise make an event arrive before it happened; the largest such
  skew is kept in ``max_clock_skew_ms``) nor than the previous event's ``recv_ts``. So the
  parser's clock never runs backwards and never lags the data: against the real endpoint it
  is the wall clock, and against a time-lapse replay (:mod:`mqlab.live.fakeserver`, where
  minutes of data pass in a second) it is the data's own time, exactly as in a backtest;
* every frame that cannot be understood becomes a :class:`Malformed` with a one-line reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from mqlab.events import (
    INTERVAL_MS,
    EventDecodeError,
    Kline,
    MarketEvent,
    OrderBook,
    Side,
    Trade,
    validate,
)
from mqlab.venue import QUOTE_ASSETS

__all__ = [
    "BINANCE_INTERVALS",
    "BINANCE_STREAM_URL",
    "BOOK_STREAMS",
    "Gap",
    "LiveInputError",
    "Malformed",
    "Notice",
    "ServerShutdown",
    "StreamParser",
    "Subscription",
    "check_interval",
    "check_symbol",
    "events_only",
]

#: Binance's public market-data endpoint (spot); ``--endpoint`` replaces it.
BINANCE_STREAM_URL = "wss://stream.binance.com:9443"

#: Every interval Binance's kline stream offers. mqlab's Kline needs a fixed length, so the
#: calendar ones (3d, 1w, 1M) are refused with a reason rather than as unknown.
BINANCE_INTERVALS = (*INTERVAL_MS, "3d", "1w", "1M")

#: Order-book streams a subscription can ask for.
BOOK_STREAMS = ("depth5", "depth10", "depth20", "bookTicker")

_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")


class LiveInputError(ValueError):
    """A symbol, interval or endpoint that cannot work; the message says which and why."""


def check_symbol(symbol: str) -> str:
    """The symbol in Binance's upper-case spelling, or :class:`LiveInputError` saying why not.

    Only the shape is checked here (letters and digits, ending in a quote asset); whether the
    venue lists it shows when its stream stays silent (see :mod:`mqlab.live.source`).
    """
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol.upper()):
        raise LiveInputError(
            f"unknown symbol {symbol!r}: write it as Binance does, letters and digits only, "
            "e.g. BTCUSDT"
        )
    upper = symbol.upper()
    if not any(upper.endswith(q) and len(upper) > len(q) for q in QUOTE_ASSETS):
        raise LiveInputError(
            f"unknown symbol {symbol!r}: it must end in a quote asset ({', '.join(QUOTE_ASSETS)})"
            ", e.g. BTCUSDT"
        )
    return upper


def check_interval(interval: str) -> str:
    """The interval if mqlab can trade it, else :class:`LiveInputError` listing the choices."""
    if interval in INTERVAL_MS:
        return interval
    if interval in BINANCE_INTERVALS:
        raise LiveInputError(
            f"interval {interval!r} has no fixed length (calendar weeks and months), so mqlab's "
            f"Kline cannot hold it; use one of {', '.join(INTERVAL_MS)}"
        )
    raise LiveInputError(
        f"unknown interval {interval!r}; Binance's kline intervals are {', '.join(INTERVAL_MS)}"
    )


@dataclass(frozen=True)
class Subscription:
    """What to listen to: klines of one interval, plus optionally trades and a book stream."""

    symbols: tuple[str, ...]
    interval: str = "1m"
    trades: bool = False
    book: str | None = None  # one of BOOK_STREAMS, or None

    def __post_init__(self) -> None:
        if isinstance(self.symbols, str):
            object.__setattr__(self, "symbols", (self.symbols,))
        if not self.symbols:
            raise LiveInputError("subscribe to at least one symbol, e.g. BTCUSDT")
        object.__setattr__(self, "symbols", tuple(check_symbol(s) for s in self.symbols))
        check_interval(self.interval)
        if self.book is not None and self.book not in BOOK_STREAMS:
            raise LiveInputError(
                f"unknown book stream {self.book!r}; choose one of {', '.join(BOOK_STREAMS)}"
            )

    def streams(self) -> list[str]:
        """Binance stream names, lower case: ``btcusdt@kline_1m``, ``btcusdt@trade``, ..."""
        names = []
        for symbol in self.symbols:
            s = symbol.lower()
            names.append(f"{s}@kline_{self.interval}")
            if self.trades:
                names.append(f"{s}@trade")
            if self.book is not None:
                names.append(f"{s}@{self.book}")
        return names

    def url(self, endpoint: str = BINANCE_STREAM_URL) -> str:
        """The combined-stream URL on ``endpoint`` (``ws://`` or ``wss://``, host[:port])."""
        parts = urlsplit(endpoint)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise LiveInputError(
                f"bad endpoint {endpoint!r}: give a websocket URL such as {BINANCE_STREAM_URL} "
                "or ws://127.0.0.1:9443"
            )
        return f"{endpoint.rstrip('/')}/stream?streams={'/'.join(self.streams())}"


# --- what a frame can mean besides market events ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Gap:
    """Data went missing in ``stream``: ``missing`` items between ``after`` and ``got``."""

    stream: str
    what: str  # "kline open time", "trade id" or "book update id"
    after: int  # the last value seen
    got: int  # the value that arrived
    missing: int  # how many are missing (-1 when the id went backwards)
    recv_ts: int

    def __str__(self) -> str:
        if self.missing < 0:
            return f"gap in {self.stream}: {self.what} went back from {self.after} to {self.got}"
        if self.what == "kline open time":
            start = datetime.fromtimestamp(self.after / 1000, UTC).strftime("%H:%M:%S")
            return (
                f"gap in {self.stream}: {self.missing} closed bar(s) missing after the one "
                f"opened at {start} UTC (open time {self.after} -> {self.got})"
            )
        return (
            f"gap in {self.stream}: {self.missing} {self.what}(s) missing "
            f"({self.after} -> {self.got})"
        )


@dataclass(frozen=True, slots=True)
class Malformed:
    """A frame that was not understood; ``reason`` is one line, ``frame`` its first 200 chars."""

    reason: str
    frame: str
    recv_ts: int

    def __str__(self) -> str:
        return f"malformed frame ignored: {self.reason}: {self.frame[:80]!r}"


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """The server said it is about to shut down: reconnect now."""

    recv_ts: int

    def __str__(self) -> str:
        return "server announced a shutdown: reconnecting"


Notice = Gap | Malformed | ServerShutdown


class _Bad(Exception):
    """A reason a payload is malformed (internal: becomes a Malformed)."""


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"field {key!r}: expected an integer, got {value!r}")
    return value


def _dec(obj: dict[str, Any] | list[Any], key: Any, name: str | None = None) -> Decimal:
    try:
        value = obj[key]
    except (KeyError, IndexError):
        raise _Bad(f"field {name or key!r} is missing") from None
    if not isinstance(value, str):
        raise _Bad(f"field {name or key!r}: expected a decimal string, got {value!r}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise _Bad(f"field {name or key!r}: not a number: {value!r}") from None
    if not result.is_finite():
        raise _Bad(f"field {name or key!r}: not finite: {value!r}")
    return result


def _levels(payload: dict[str, Any], key: str) -> tuple[tuple[Decimal, Decimal], ...]:
    rows = payload.get(key)
    if not isinstance(rows, list):
        raise _Bad(f"field {key!r}: expected a list of [price, qty], got {rows!r}")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) < 2:
            raise _Bad(f"field {key}[{i}]: expected [price, qty], got {row!r}")
        out.append((_dec(row, 0, f"{key}[{i}]"), _dec(row, 1, f"{key}[{i}]")))
    return tuple(out)


class StreamParser:
    """Turn Binance combined-stream frames into mqlab market events, gaps and reasons."""

    def __init__(
        self,
        subscription: Subscription,
        *,
        in_progress: bool = False,
        platform: str = "binance",
    ) -> None:
        self.subscription = subscription
        self.in_progress = in_progress
        self.platform = platform
        self._step = INTERVAL_MS[subscription.interval]
        # stream name -> (kind, symbol); only these are accepted
        self._streams: dict[str, tuple[str, str]] = {}
        for name in subscription.streams():
            lower, kind = name.split("@", 1)
            symbol = next(s for s in subscription.symbols if s.lower() == lower)
            self._streams[name] = (kind.split("_", 1)[0], symbol)
        self._last: dict[str, int] = {}  # stream -> last kline open time / trade id / book id
        #: Counters, for the status line and the tests.
        self.frames = 0
        self.events = 0
        self.duplicates = 0
        self.in_progress_dropped = 0
        self.gaps: list[Gap] = []
        self.malformed: list[Malformed] = []
        self.max_clock_skew_ms = 0
        #: The parser's clock (ms): the latest ``recv_ts`` handed out.
        self.clock = 0

    def feed(self, frame: str | bytes, recv_ts: int) -> list[MarketEvent | Notice]:
        """Everything one frame means, in order (usually one event, or nothing)."""
        self.frames += 1
        if recv_ts < self.clock:
            recv_ts = self.clock
        text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
        try:
            out = self._parse(text, recv_ts)
        except _Bad as exc:
            bad = Malformed(str(exc), text[:200], recv_ts)
            self.malformed.append(bad)
            return [bad]
        for item in out:
            if isinstance(item, Gap):
                self.gaps.append(item)
            elif not isinstance(item, ServerShutdown):
                self.events += 1
                if item.recv_ts > self.clock:
                    self.clock = item.recv_ts
        return out

    # --- parsing ------------------------------------------------------------------------------

    def _parse(self, text: str, recv_ts: int) -> list[MarketEvent | Notice]:
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Bad(f"not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(message, dict):
            raise _Bad(f"expected a JSON object, got {type(message).__name__}")
        if _shutdown(message):
            return [ServerShutdown(recv_ts)]
        if "error" in message or ("code" in message and "msg" in message):
            error = message.get("error", message)
            raise _Bad(f"the server answered with an error: {error}")
        if "stream" not in message or "data" not in message:
            raise _Bad("not a combined-stream message (no 'stream' and 'data')")
        stream, data = message["stream"], message["data"]
        where = self._streams.get(stream) if isinstance(stream, str) else None
        if where is None:
            raise _Bad(f"unexpected stream {stream!r}; subscribed: {', '.join(self._streams)}")
        if not isinstance(data, dict):
            raise _Bad(f"{stream}: 'data' must be a JSON object")
        kind, symbol = where
        if kind == "kline":
            return self._kline(stream, symbol, data, recv_ts)
        if kind == "trade":
            return self._trade(stream, symbol, data, recv_ts)
        return self._book(stream, kind, symbol, data, recv_ts)

    def _recv(self, ts: int, recv_ts: int) -> int:
        if recv_ts < ts:
            self.max_clock_skew_ms = max(self.max_clock_skew_ms, ts - recv_ts)
            return ts
        return recv_ts

    def _checked(self, stream: str, event: MarketEvent) -> MarketEvent:
        try:
            validate(event)
            return event
        except EventDecodeError as exc:
            raise _Bad(f"{stream}: {exc}") from None

    def _kline(
        self, stream: str, symbol: str, data: dict[str, Any], recv_ts: int
    ) -> list[MarketEvent | Notice]:
        k = data.get("k")
        if data.get("e") != "kline" or not isinstance(k, dict):
            raise _Bad(f"{stream}: expected a kline event with a 'k' object")
        if k.get("s", symbol) != symbol or data.get("s", symbol) != symbol:
            raise _Bad(f"{stream}: symbol {data.get('s')!r} is not {symbol}")
        if k.get("i") != self.subscription.interval:
            raise _Bad(f"{stream}: interval {k.get('i')!r} is not {self.subscription.interval}")
        closed = k.get("x")
        if not isinstance(closed, bool):
            raise _Bad(f"{stream}: field 'x' (is this kline closed?) must be true or false")
        open_time = _int(k, "t")
        close_time = _int(k, "T")
        if close_time - open_time + 1 != self._step:
            raise _Bad(f"{stream}: T - t + 1 = {close_time - open_time + 1} ms, not one interval")
        o, h, low, c, v = (_dec(k, f) for f in ("o", "h", "l", "c", "v"))
        quote = _dec(k, "q") if "q" in k else Decimal(0)
        trades = _int(k, "n") if "n" in k else 0
        last = self._last.get(stream)
        if not closed:
            if not self.in_progress:
                self.in_progress_dropped += 1
                return []
            if last is not None and open_time <= last:
                self.duplicates += 1
                return []
            ts = max(_int(data, "E"), open_time + 1)
            ts = min(ts, open_time + self._step - 1)  # an update is never the close
            bar = Kline(
                self.platform, symbol, self.subscription.interval, open_time, o, h, low, c, v,
                ts, self._recv(ts, recv_ts), quote, trades,
            )  # fmt: skip
            return [self._checked(stream, bar)]
        if last is not None and open_time <= last:
            self.duplicates += 1  # delivered already (a resend after a reconnect)
            return []
        out: list[MarketEvent | Notice] = []
        if last is not None and open_time != last + self._step:
            missing = (open_time - last) // self._step - 1
            out.append(Gap(stream, "kline open time", last, open_time, missing, recv_ts))
        ts = open_time + self._step
        bar = Kline(
            self.platform, symbol, self.subscription.interval, open_time, o, h, low, c, v,
            ts, self._recv(ts, recv_ts), quote, trades,
        )  # fmt: skip
        out.append(self._checked(stream, bar))
        self._last[stream] = open_time
        return out

    def _trade(
        self, stream: str, symbol: str, data: dict[str, Any], recv_ts: int
    ) -> list[MarketEvent | Notice]:
        if data.get("e") != "trade":
            raise _Bad(f"{stream}: expected a trade event, got e={data.get('e')!r}")
        if data.get("s", symbol) != symbol:
            raise _Bad(f"{stream}: symbol {data.get('s')!r} is not {symbol}")
        trade_id, ts = _int(data, "t"), _int(data, "T")
        maker = data.get("m")
        if not isinstance(maker, bool):
            raise _Bad(f"{stream}: field 'm' (is the buyer the maker?) must be true or false")
        price, qty = _dec(data, "p"), _dec(data, "q")
        last = self._last.get(stream)
        if last is not None and trade_id <= last:
            self.duplicates += 1
            return []
        out: list[MarketEvent | Notice] = []
        if last is not None and trade_id != last + 1:
            out.append(Gap(stream, "trade id", last, trade_id, trade_id - last - 1, recv_ts))
        # The buyer was the maker, so the seller took liquidity: the aggressor sold.
        side = Side.SELL if maker else Side.BUY
        trade = Trade(
            self.platform, symbol, trade_id, price, qty, side, ts, self._recv(ts, recv_ts)
        )
        out.append(self._checked(stream, trade))
        self._last[stream] = trade_id
        return out

    def _book(
        self, stream: str, kind: str, symbol: str, data: dict[str, Any], recv_ts: int
    ) -> list[MarketEvent | Notice]:
        if kind == "bookTicker":
            if data.get("s", symbol) != symbol:
                raise _Bad(f"{stream}: symbol {data.get('s')!r} is not {symbol}")
            seq = _int(data, "u")
            bids: tuple[tuple[Decimal, Decimal], ...]
            asks: tuple[tuple[Decimal, Decimal], ...]
            bids = ((_dec(data, "b"), _dec(data, "B")),)
            asks = ((_dec(data, "a"), _dec(data, "A")),)
        else:
            seq = _int(data, "lastUpdateId")
            bids, asks = _levels(data, "bids"), _levels(data, "asks")
        last = self._last.get(stream)
        out: list[MarketEvent | Notice] = []
        if last is not None and seq <= last:
            if seq == last:
                self.duplicates += 1
                return []
            # Book update ids only grow; they skip by design (only changes at the top levels
            # are pushed), so going backwards is the one gap a book stream can show.
            out.append(Gap(stream, "book update id", last, seq, -1, recv_ts))
            return out
        # These payloads carry no time: the arrival time is the only clock there is.
        book = OrderBook(self.platform, symbol, bids, asks, seq, recv_ts, recv_ts)
        out.append(self._checked(stream, book))
        self._last[stream] = seq
        return out


def _shutdown(message: dict[str, Any]) -> bool:
    for candidate in (message, message.get("data"), message.get("event")):
        if isinstance(candidate, dict) and candidate.get("e") == "serverShutdown":
            return True
    return False


def events_only(items: Iterable[MarketEvent | Notice]) -> list[MarketEvent]:
    """The market events among what :meth:`StreamParser.feed` returned."""
    return [i for i in items if isinstance(i, Kline | Trade | OrderBook)]
