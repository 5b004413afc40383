"""The live market source: Binance's public streams over websockets, as mqlab market events.

:class:`BinanceSource` is the asyncio driver around the sans-IO
:class:`~mqlab.live.binance.StreamParser`. ``async for event in source`` yields
:class:`~mqlab.events.Kline` / :class:`~mqlab.events.Trade` / :class:`~mqlab.events.OrderBook`
events, the same types the CSV source yields, so a strategy cannot tell live from recorded.

What it does about the stream's realities:

* **No API key, nothing sent.** The subscription is in the URL of a combined stream
  (``/stream?streams=...``), so the client sends no message at all; the only frames it writes
  are the protocol's pongs and its close.
* **Ping/pong.** Binance sends a ping frame every 20 s and drops a connection that has not
  answered with a pong within a minute (its docs before 2025 said every 3 minutes / within
  10). ``websockets`` answers every ping with a pong by itself; the client sends no pings of
  its own (``ping_interval=None``) and instead treats ``idle_timeout`` seconds without a frame
  as a dead connection (a kline stream updates every 2 s, so 60 s of silence is not a market).
* **Reconnect with exponential backoff** (:class:`Backoff`) after a close, a network error, a
  ``serverShutdown`` notice or an idle connection. Binance ends every connection at the
  24-hour mark; that close is handled like any other, as a reconnect.
* **Gaps are reported.** Bars that closed while the connection was down do not come back: the
  parser reports them as a :class:`~mqlab.live.binance.Gap` (and skipped trade ids too);
  ``on_notice`` hears of every gap, malformed frame and reconnect, and ``notices`` keeps them.
* **Clear errors.** An endpoint that cannot be reached is retried ``backoff.attempts`` times,
  then :class:`LiveSourceError` says where, how often and why. A handshake the server refuses
  (HTTP 4xx) is not retried. A first connection that carries nothing for
  ``first_data_timeout`` seconds ends with an error that names the streams (a stream for a
  symbol the venue does not list carries nothing). Malformed frames are logged (logger
  ``mqlab.live``) with their one-line reason, counted, and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from mqlab.events import MarketEvent
from mqlab.live.binance import (
    BINANCE_STREAM_URL,
    Gap,
    LiveInputError,
    Malformed,
    Notice,
    ServerShutdown,
    StreamParser,
    Subscription,
)

__all__ = ["Backoff", "BinanceSource", "LiveSourceError", "Reconnect", "wall_ms"]

log = logging.getLogger("mqlab.live")


def wall_ms() -> int:
    """Wall-clock time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


class LiveSourceError(RuntimeError):
    """The live source cannot go on; the message says what was tried and what to check."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Wait ``initial`` s, then ``factor`` times longer each failure, at most ``maximum`` s;
    give up after ``attempts`` failures in a row (a connection that delivered data resets it)."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0
    attempts: int = 8

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1, 2, ...)."""
        return float(min(self.maximum, self.initial * self.factor ** (failures - 1)))


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The connection ended (``reason``); the next attempt starts after ``delay`` s."""

    reason: str
    attempt: int
    delay: float
    recv_ts: int

    def __str__(self) -> str:
        return f"reconnecting in {self.delay:.2f} s (attempt {self.attempt}): {self.reason}"


class BinanceSource:
    """Async iterator of live market events from a Binance-format combined stream."""

    def __init__(
        self,
        subscription: Subscription,
        *,
        endpoint: str = BINANCE_STREAM_URL,
        in_progress: bool = False,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
        idle_timeout: float = 60.0,
        first_data_timeout: float = 30.0,
        on_notice: Callable[[Notice | Reconnect], None] | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.subscription = subscription
        self.url = subscription.url(endpoint)
        self.parser = StreamParser(subscription, in_progress=in_progress)
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.idle_timeout = idle_timeout
        self.first_data_timeout = first_data_timeout
        self.on_notice = on_notice
        self.clock = clock
        #: Connections opened, reconnects made, and every notice, in order.
        self.connections = 0
        self.reconnects = 0
        self.notices: list[Notice | Reconnect] = []
        #: When the latest frame arrived: wall-clock ms, and ``time.perf_counter()`` seconds.
        self.last_arrival = 0
        self.last_frame_at = 0.0
        self._closed = False

    def close(self) -> None:
        """Stop after the frame being handled; the iterator then ends."""
        self._closed = True

    @property
    def symbol(self) -> str:
        """The (first) symbol streamed, in mqlab's spelling."""
        return self.subscription.symbols[0]

    @property
    def gaps(self) -> list[Gap]:
        """Every gap the parser reported."""
        return self.parser.gaps

    def _notice(self, notice: Notice | Reconnect) -> None:
        self.notices.append(notice)
        if isinstance(notice, Malformed):
            log.warning("%s", notice)
        else:
            log.info("%s", notice)
        if self.on_notice is not None:
            self.on_notice(notice)

    def __aiter__(self) -> AsyncIterator[MarketEvent]:
        return self._run()

    async def _run(self) -> AsyncIterator[MarketEvent]:
        failures = 0
        started = time.monotonic()
        ever_data = False
        while not self._closed:
            reason = ""
            got_data = False
            try:
                async with connect(
                    self.url,
                    open_timeout=self.open_timeout,
                    ping_interval=None,  # Binance pings us; websockets answers each with a pong
                    compression=None,
                    max_size=2**22,
                ) as ws:
                    self.connections += 1
                    while not self._closed:
                        wait = self.idle_timeout if ever_data else self.first_data_timeout
                        try:
                            async with asyncio.timeout(wait):
                                frame = await ws.recv()
                        except TimeoutError:
                            if not ever_data:
                                raise LiveSourceError(
                                    f"no market data within {wait:g} s from {self.url}: check "
                                    f"the symbol(s) {', '.join(self.subscription.symbols)} are "
                                    "listed there (a stream for an unknown symbol carries "
                                    "nothing)"
                                ) from None
                            reason = f"no frame for {wait:g} s (connection presumed dead)"
                            break
                        shutdown = False
                        self.last_frame_at = time.perf_counter()
                        self.last_arrival = self.clock()
                        for item in self.parser.feed(frame, self.last_arrival):
                            if isinstance(item, Gap | Malformed):
                                self._notice(item)
                            elif isinstance(item, ServerShutdown):
                                self._notice(item)
                                shutdown = True
                            else:
                                got_data = ever_data = True
                                yield item
                        if got_data:
                            failures = 0
                        if shutdown:
                            reason = "server announced a shutdown"
                            break
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                reason = f"connection closed by the server (code {code})"
                if exc.rcvd is None:
                    reason = "connection lost without a close frame"
            except InvalidURI as exc:
                raise LiveInputError(f"bad endpoint {self.url!r}: {exc}") from None
            except InvalidStatus as exc:
                status = exc.response.status_code
                if 400 <= status < 500 and status != 429:
                    body = exc.response.body.decode("utf-8", "replace").strip()[:200]
                    raise LiveSourceError(
                        f"{self.url} refused the websocket handshake with HTTP {status}"
                        + (f": {body}" if body else "")
                    ) from None
                reason = f"handshake refused with HTTP {status}"
            except (OSError, TimeoutError, WebSocketException) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if self._closed:
                break
            failures += 1
            if failures > self.backoff.attempts:
                raise LiveSourceError(
                    f"could not reach {self.url} after {self.backoff.attempts} attempts over "
                    f"{time.monotonic() - started:.1f} s; last error: {reason}"
                )
            delay = self.backoff.delay(failures)
            self.reconnects += 1
            self._notice(Reconnect(reason, failures, delay, self.clock()))
            await asyncio.sleep(delay)
