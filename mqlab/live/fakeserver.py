"""A local websocket server that speaks Binance's public stream format, for tests and chapters.

It binds 127.0.0.1 only and serves combined streams at ``/stream?streams=a/b/c``, wrapping
every payload as ``{"stream": ..., "data": ...}`` like Binance, and raw streams at ``/ws``
(payloads unwrapped), where a client subscribes with ``{"method": "SUBSCRIBE", "params":
[...], "id": n}`` and gets ``{"result": null, "id": n}``, as ccxt does.

It plays a *script*: a list of :class:`Frame` s (a payload on a named stream), raw strings
(sent as they are: that is how a malformed frame is injected), and actions:

* :class:`Disconnect`: close the connection (code 1001 "going away", as at Binance's 24-hour
  mark), or drop it without a close frame (``abrupt=True``, a network failure);
* :class:`Pause`: stay silent for a while; :class:`Burst`: frames sent back to back, ignoring
  the pace; :class:`Skip`: lose the next ``n`` frames (a gap the client must notice).

The script's position is shared by all connections, so a client that reconnects after a
disconnect carries on where the stream is *now* (what it missed meanwhile is gone, as on the
real endpoint). Frames on streams the client did not ask for are not sent to it; a stream for
a symbol the server does not know carries nothing (the client must notice the silence).
``exhausted`` is set when the script has been played to the end.

Builders turn mqlab events into Binance payloads: :func:`kline_frame`, :func:`trade_frame`,
:func:`depth_frame`, :func:`book_ticker_frame`; :func:`time_lapse_klines` makes synthetic
bars that start *now* (so the data's clock runs ahead of the wall clock and a paper session
fills like a backtest does), and :func:`session_script` makes a whole script with in-progress
updates, an optional disconnect, malformed frame, gap and burst.

Run one by hand: ``python -m mqlab fake-binance --port 9443 --bars 600 --pace 0.5``, then
``python -m mqlab paper --endpoint ws://127.0.0.1:9443 ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from mqlab.events import INTERVAL_MS, Kline, OrderBook, Trade

__all__ = [
    "Burst",
    "Disconnect",
    "FakeBinanceServer",
    "Frame",
    "Pause",
    "Skip",
    "Step",
    "book_ticker_frame",
    "depth_frame",
    "kline_frame",
    "session_script",
    "time_lapse_klines",
    "trade_frame",
]


@dataclass(frozen=True, slots=True)
class Frame:
    """One payload on one stream, e.g. ``Frame("btcusdt@trade", {...})``."""

    stream: str
    data: dict[str, Any]

    def text(self) -> str:
        return json.dumps({"stream": self.stream, "data": self.data}, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection (``abrupt``: drop the TCP connection with no close frame)."""

    code: int = 1001
    reason: str = "going away"
    abrupt: bool = False


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class Burst:
    """Frames sent back to back, as fast as the socket takes them."""

    frames: tuple[Frame | str, ...]


@dataclass(frozen=True, slots=True)
class Skip:
    """Lose the next ``n`` frames of the script: a gap."""

    n: int


Step = Frame | str | Disconnect | Pause | Burst | Skip


# --- payload builders --------------------------------------------------------------------------


def _s(value: Decimal) -> str:
    return format(value, "f")


def kline_frame(bar: Kline, *, closed: bool = True, event_time: int | None = None) -> Frame:
    """The ``<symbol>@kline_<interval>`` payload for ``bar`` (``x`` = ``closed``)."""
    step = INTERVAL_MS[bar.interval]
    data = {
        "e": "kline",
        "E": event_time if event_time is not None else bar.open_time + step,
        "s": bar.symbol,
        "k": {
            "t": bar.open_time,
            "T": bar.open_time + step - 1,
            "s": bar.symbol,
            "i": bar.interval,
            "f": 100,
            "L": 100 + bar.trades,
            "o": _s(bar.open),
            "c": _s(bar.close),
            "h": _s(bar.high),
            "l": _s(bar.low),
            "v": _s(bar.volume),
            "n": bar.trades,
            "x": closed,
            "q": _s(bar.quote_volume),
            "V": "0",
            "Q": "0",
            "B": "0",
        },
    }
    return Frame(f"{bar.symbol.lower()}@kline_{bar.interval}", data)


def trade_frame(trade: Trade) -> Frame:
    """The ``<symbol>@trade`` payload (``m``, buyer is maker, is true when a seller hit)."""
    data = {
        "e": "trade",
        "E": trade.ts,
        "s": trade.symbol,
        "t": trade.trade_id,
        "p": _s(trade.price),
        "q": _s(trade.qty),
        "T": trade.ts,
        "m": trade.side == "SELL",
        "M": True,
    }
    return Frame(f"{trade.symbol.lower()}@trade", data)


def depth_frame(book: OrderBook, levels: int = 5) -> Frame:
    """The ``<symbol>@depth<levels>`` payload: no symbol and no time, as on Binance."""
    data = {
        "lastUpdateId": book.seq,
        "bids": [[_s(p), _s(q)] for p, q in book.bids[:levels]],
        "asks": [[_s(p), _s(q)] for p, q in book.asks[:levels]],
    }
    return Frame(f"{book.symbol.lower()}@depth{levels}", data)


def book_ticker_frame(book: OrderBook) -> Frame:
    """The ``<symbol>@bookTicker`` payload: best bid and ask with their sizes."""
    (bp, bq), (ap, aq) = book.bids[0], book.asks[0]
    data = {"u": book.seq, "s": book.symbol, "b": _s(bp), "B": _s(bq), "a": _s(ap), "A": _s(aq)}
    return Frame(f"{book.symbol.lower()}@bookTicker", data)


def time_lapse_klines(
    n: int,
    *,
    interval: str = "1m",
    symbol: str = "BTCUSDT",
    seed: int = 7,
    start_ms: int | None = None,
) -> list[Kline]:
    """``n`` synthetic bars (mqlab.market's generator) moved to start at ``start_ms``.

    The default start is the current wall-clock interval, so played faster than real time
    the bars' own clock runs ahead of the wall clock. SYNTHETIC data, not market prices.
    """
    from mqlab.market import synthetic_klines

    step = INTERVAL_MS[interval]
    if start_ms is None:
        start_ms = time.time_ns() // 1_000_000 // step * step
    bars = synthetic_klines(n, seed=seed, symbol=symbol)
    out = []
    for i, b in enumerate(bars):
        open_time = start_ms + i * step
        out.append(
            Kline(
                b.platform, symbol, interval, open_time, b.open, b.high, b.low, b.close,
                b.volume, open_time + step, open_time + step, b.quote_volume, b.trades,
            )
        )  # fmt: skip
    return out


def _book_for(bar: Kline, seq: int) -> OrderBook:
    """A 5-level synthetic book around a bar's close, one tick (0.01) spread per level."""
    tick = Decimal("0.01")
    close = bar.close.quantize(tick)
    bids = tuple((close - tick * (i + 1), Decimal("0.5") + Decimal(i)) for i in range(5))
    asks = tuple((close + tick * (i + 1), Decimal("0.5") + Decimal(i)) for i in range(5))
    return OrderBook(bar.platform, bar.symbol, bids, asks, seq, bar.ts, bar.ts)


def session_script(
    bars: Sequence[Kline],
    *,
    updates: int = 1,
    book: str | None = None,
    disconnect_at: int | None = None,
    abrupt: bool = False,
    lost_bars: int = 0,
    malformed_at: int | None = None,
    gap_at: int | None = None,
    gap_bars: int = 2,
    burst_at: int | None = None,
    burst_bars: int = 5,
) -> list[Step]:
    """A script for ``bars``: per bar ``updates`` in-progress kline updates, then the closed
    kline (and a ``book`` frame, ``"depth5"`` or ``"bookTicker"``, after it).

    Faults are placed *before* bar number ``*_at``: a :class:`Disconnect` (after which
    ``lost_bars`` bars pass while the client is away: the stream does not wait), a malformed frame,
    a :class:`Skip` of ``gap_bars`` bars' frames, a :class:`Burst` of ``burst_bars`` bars.
    """
    per_bar: list[list[Frame]] = []
    for i, bar in enumerate(bars):
        frames = [
            kline_frame(
                Kline(
                    bar.platform, bar.symbol, bar.interval, bar.open_time, bar.open,
                    max(bar.open, bar.close), min(bar.open, bar.close), bar.close,
                    bar.volume / 2, bar.ts, bar.ts, bar.quote_volume / 2, bar.trades // 2,
                ),
                closed=False,
                event_time=bar.open_time + (u + 1) * (bar.ts - bar.open_time) // (updates + 1),
            )
            for u in range(updates)
        ]  # fmt: skip
        frames.append(kline_frame(bar))
        if book == "depth5":
            frames.append(depth_frame(_book_for(bar, 1000 + 7 * i)))
        elif book == "bookTicker":
            frames.append(book_ticker_frame(_book_for(bar, 1000 + 7 * i)))
        elif book is not None:
            raise ValueError(f"book must be 'depth5', 'bookTicker' or None, not {book!r}")
        per_bar.append(frames)
    script: list[Step] = []
    i = 0
    while i < len(per_bar):
        if i == disconnect_at:
            script.append(Disconnect(abrupt=abrupt))
            if lost_bars:
                script.append(Skip(sum(len(f) for f in per_bar[i : i + lost_bars])))
        if i == malformed_at:
            script.append('{"stream": "btcusdt@kline_1m", "data": {"e": "kline", "k": ')
        if i == gap_at:
            script.append(Skip(sum(len(f) for f in per_bar[i : i + gap_bars])))
        if i == burst_at:
            burst = [f for frames in per_bar[i : i + burst_bars] for f in frames]
            script.append(Burst(tuple(burst)))
            i += burst_bars
            continue
        script.extend(per_bar[i])
        i += 1
    return script


# --- the server --------------------------------------------------------------------------------


@dataclass
class FakeBinanceServer:
    """Binance's combined streams on 127.0.0.1, playing ``script`` (see the module docstring).

    ``pace``: seconds between frames; ``symbols``: the symbols it knows (default: those the
    script's frames name); ``ping_interval``: seconds between its keepalive pings, and
    ``ping_timeout``: how long it waits for the pong before dropping the client (Binance: 20 s
    and a minute); ``end``: at the end of the script stay ``"silent"`` or ``"close"``.
    Use ``async with FakeBinanceServer(script) as server:`` and connect to ``server.url``.
    """

    script: Sequence[Step]
    pace: float = 0.0
    symbols: Iterable[str] | None = None
    port: int = 0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 60.0
    end: str = "silent"
    connections: int = 0
    sent: int = 0
    streams_asked: list[list[str]] = field(default_factory=list)
    _cursor: int = 0
    _server: Server | None = None
    _exhausted: asyncio.Event | None = None

    def __post_init__(self) -> None:
        if self.end not in ("silent", "close"):
            raise ValueError(f"end must be 'silent' or 'close', not {self.end!r}")
        if self.symbols is None:
            self.symbols = {
                s.stream.split("@", 1)[0].upper()
                for s in _flatten(self.script)
                if isinstance(s, Frame)
            }
        self.symbols = {s.upper() for s in self.symbols}

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT``: give it to the client as its endpoint."""
        if self._server is None:
            raise RuntimeError("the server is not started: use 'async with' or await start()")
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    @property
    def exhausted(self) -> asyncio.Event:
        """Set once every step of the script has been played."""
        if self._exhausted is None:
            self._exhausted = asyncio.Event()
        return self._exhausted

    async def start(self) -> FakeBinanceServer:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            self.port,
            process_request=self._check_path,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            compression=None,
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeBinanceServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _check_path(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        combined = parts.path.rstrip("/") == "/stream" and parse_qs(parts.query).get("streams")
        if not combined and not (parts.path == "/ws" or parts.path.startswith("/ws/")):
            body = b"use /stream?streams=<name>/<name> (combined) or /ws (raw, then SUBSCRIBE)\n"
            headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return Response(400, "Bad Request", headers, body)
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        parts = urlsplit(ws.request.path if ws.request else "")
        known = set(self.symbols or ())
        wanted: set[str] = set()
        raw = not parts.path.startswith("/stream")
        reader = None
        if raw:
            # Raw streams: /ws/<stream> names one; more come with {"method": "SUBSCRIBE"}, which
            # is how ccxt subscribes. Payloads then travel unwrapped, as on Binance.
            tail = parts.path[len("/ws/") :]
            asked = [tail] if "@" in tail else []
            subscribed = asyncio.Event()
            reader = asyncio.create_task(self._subscriptions(ws, wanted, known, subscribed))
            if asked:
                subscribed.set()
            else:
                await subscribed.wait()
        else:
            asked = parse_qs(parts.query)["streams"][0].split("/")
        if asked or not raw:
            self.streams_asked.append(asked)
        wanted.update(s for s in asked if s.split("@", 1)[0].upper() in known)
        try:
            await self._play(ws, wanted, raw)
        finally:
            if reader is not None:
                reader.cancel()

    async def _subscriptions(
        self, ws: ServerConnection, wanted: set[str], known: set[str], subscribed: asyncio.Event
    ) -> None:
        """Answer SUBSCRIBE requests on a raw connection as Binance does."""
        async for message in ws:
            try:
                request = json.loads(message)
                method, request_id = request["method"], request.get("id")
            except (ValueError, TypeError, KeyError):
                await ws.send(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
                continue
            if method != "SUBSCRIBE" or not isinstance(request.get("params"), list):
                error = {"code": 2, "msg": f"Invalid request: unsupported method {method!r}"}
                await ws.send(json.dumps({"error": error, "id": request_id}))
                continue
            names = [str(p) for p in request["params"]]
            self.streams_asked.append(names)
            wanted.update(s for s in names if s.split("@", 1)[0].upper() in known)
            await ws.send(json.dumps({"result": None, "id": request_id}))
            subscribed.set()

    async def _play(self, ws: ServerConnection, wanted: set[str], raw: bool) -> None:
        while self._cursor < len(self.script):
            step = self.script[self._cursor]
            self._cursor += 1
            if isinstance(step, Disconnect):
                if step.abrupt:
                    ws.transport.abort()
                else:
                    await ws.close(step.code, step.reason)
                return
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Skip):
                self._cursor += _skip(self.script, self._cursor, step.n)
            elif isinstance(step, Burst):
                for item in step.frames:
                    await self._send(ws, item, wanted, raw, paced=False)
            elif not await self._send(ws, step, wanted, raw, paced=True):
                return
        self.exhausted.set()
        if self.end == "close":
            await ws.close(1000, "end of script")
        else:
            await ws.wait_closed()

    async def _send(
        self, ws: ServerConnection, item: Frame | str, wanted: set[str], raw: bool, *, paced: bool
    ) -> bool:
        if isinstance(item, Frame) and item.stream not in wanted:
            return True
        if isinstance(item, Frame):
            text = json.dumps(item.data, separators=(",", ":")) if raw else item.text()
        else:
            text = item
        try:
            await ws.send(text)
        except Exception:  # the client went away: the next connection carries on
            self._cursor -= 1 if paced else 0
            return False
        self.sent += 1
        if paced and self.pace:
            await asyncio.sleep(self.pace)
        else:
            await asyncio.sleep(0)  # let the client run, as a network would
        return True


def _flatten(script: Iterable[Step]) -> Iterable[Step]:
    for step in script:
        if isinstance(step, Burst):
            yield from step.frames
        else:
            yield step


def _skip(script: Sequence[Step], start: int, n: int) -> int:
    """How many steps from ``start`` to pass so that ``n`` frames are lost."""
    lost = i = 0
    while lost < n and start + i < len(script):
        if isinstance(script[start + i], Frame | str):
            lost += 1
        i += 1
    return i


# --- CLI ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=9443, help="port on 127.0.0.1 (9443)")
    parser.add_argument("--symbol", default="BTCUSDT", help="symbol to serve (BTCUSDT)")
    parser.add_argument("--interval", default="1m", help="kline interval (1m)")
    parser.add_argument("--bars", type=int, default=600, help="synthetic bars to play (600)")
    parser.add_argument("--pace", type=float, default=0.5, help="seconds between frames (0.5)")
    parser.add_argument("--book", choices=["depth5", "bookTicker"], default="depth5")
    parser.add_argument("--disconnect-at", type=int, default=None, help="drop the connection "
                        "before this bar (the client must reconnect)")  # fmt: skip
    parser.add_argument("--malformed-at", type=int, default=None,
                        help="send a malformed frame before this bar")  # fmt: skip
    parser.add_argument("--gap-at", type=int, default=None,
                        help="skip 2 bars before this bar (the client reports a gap)")  # fmt: skip
    parser.add_argument("--burst-at", type=int, default=None,
                        help="send 5 bars at once, unpaced, before this bar")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from mqlab.live.binance import LiveInputError, check_interval, check_symbol

    try:
        symbol, interval = check_symbol(args.symbol), check_interval(args.interval)
    except LiveInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bars = time_lapse_klines(args.bars, interval=interval, symbol=symbol)
    script = session_script(
        bars,
        book=args.book,
        disconnect_at=args.disconnect_at,
        malformed_at=args.malformed_at,
        gap_at=args.gap_at,
        burst_at=args.burst_at,
    )

    async def main() -> None:
        async with FakeBinanceServer(script, pace=args.pace, port=args.port) as server:
            print(f"serving {len(bars)} SYNTHETIC {symbol} {interval} bars at {server.url} "
                  "(Ctrl-C stops)", flush=True)  # fmt: skip
            await server.exhausted.wait()
            print("script played to the end; still serving silence (Ctrl-C stops)", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
