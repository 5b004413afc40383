"""Paper trading (模拟盘) on a live stream: the backtest's engine, fed as events arrive.

:class:`PaperSession` is one more driver of :class:`mqlab.engine.Engine`, with the very loop
:meth:`mqlab.backtest.Backtest.run` runs, only free-running: each market event is handled the
moment the live source yields it, not when a file says so. For each event,

1. the engine delivers the venue's answers that are due and the fills the event causes (the
   simulated venue matches the orders that have *arrived* against the live prices it has
   seen), each to the portfolio and the strategy, whose reactions go straight back in;
2. the portfolio marks to the event; the strategy handles it; its orders are submitted.

Nothing waits for a wall clock: the session's clock is the events' ``recv_ts`` (the arrival
time, see :mod:`mqlab.live.binance`), the strategy is bound without a clock, and an order
reaches the venue at ``order.ts`` plus the venue's latency model. So the whole session is a
function of the events and their arrival times, which the session file
(:mod:`mqlab.live.record`) keeps; :mod:`mqlab.live.replay` feeds them to the ordinary backtest
and gets the same fills and PnL, exactly.

This is the in-process session; ``--url`` / ``--processes`` run it as services over the bus
instead (:mod:`mqlab.live.bus`). CLI: ``python -m mqlab paper --symbol BTCUSDT --interval 1m
--strategy sma_cross`` (``--endpoint ws://127.0.0.1:9443`` for the local server of
:mod:`mqlab.live.fakeserver`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from mqlab.backtest import BacktestResult
from mqlab.engine import Engine
from mqlab.events import Cancel, Event, Fill, Kline, MarketEvent, Order
from mqlab.live.binance import (
    BINANCE_STREAM_URL,
    BOOK_STREAMS,
    Gap,
    LiveInputError,
    Malformed,
    Notice,
    Subscription,
    check_interval,
)
from mqlab.live.ccxt_source import CcxtKlineSource
from mqlab.live.common import (
    Until,
    make_portfolio,
    make_venue,
    p50,
    print_report,
    run_until,
    session_summary,
    status_head,
    status_writer,
    stop_on_signals,
)
from mqlab.live.record import SessionRecorder
from mqlab.live.source import Backoff, BinanceSource, LiveSourceError, Reconnect, wall_ms
from mqlab.strategies import make_strategy
from mqlab.strategy import Strategy

__all__ = ["PaperSession", "add_arguments", "run"]


class PaperSession:
    """Run ``strategy`` on a live ``source`` against a simulated venue; record it if asked."""

    def __init__(
        self,
        strategy: Strategy,
        source: BinanceSource | CcxtKlineSource,
        meta: dict[str, Any],
        *,
        record: str | Path | None = None,
        status: Callable[[str], None] | None = None,
        status_every: float = 0.5,
    ) -> None:
        self.strategy = strategy
        self.source = source
        self.meta = meta
        self.venue = make_venue(meta)
        self.portfolio = make_portfolio(meta)
        self.engine = Engine(self.venue)
        self.result = BacktestResult(
            strategy.name, 0, portfolio=self.portfolio, exchange=self.venue
        )
        self.recorder = SessionRecorder(record, meta) if record is not None else None
        self.status = status
        self.status_every = status_every
        self.bars = 0
        self.last_price: Decimal | None = None
        #: Wall-clock seconds from a frame's arrival to the strategy's order being submitted.
        self.latencies: list[float] = []
        self._outbox: list[Order | Cancel] = []
        self._last_status = 0.0
        self._task: asyncio.Task[None] | None = None
        strategy.bind(self._outbox.append)
        source.on_notice = self._on_notice

    # --- the engine loop (the same calls, in the same order, as Backtest.run) -----------------

    def _submit(self) -> None:
        outbox = self._outbox
        self.result.orders.extend(outbox)
        if self.recorder is not None:
            delay = self.venue.latency.delay
            for request in outbox:
                self.recorder.order(request, request.ts + delay(request.id))
        self.engine.submit(outbox)
        outbox.clear()

    def _deliver(self, x: Event) -> None:
        if type(x) is Fill:
            self.portfolio.on_fill(x)
            self.result.fills.append(x)
        else:
            self.result.updates.append(x)  # type: ignore[arg-type]
        self.strategy.handle(x)
        if self._outbox:
            self._submit()

    def step(self, event: MarketEvent, arrival: int) -> None:
        """Handle one live market event that arrived at wall-clock ``arrival`` ms."""
        if self.recorder is not None:
            self.recorder.market(event, arrival)
        self.result.events += 1
        x: Any = self.engine.feed(event)
        while x is not event:
            self._deliver(x)
            x = self.engine.next()
        self.portfolio.on_market(event)
        self.strategy.handle(event)
        if self._outbox:
            self._submit()
            self.latencies.append(time.perf_counter() - self.source.last_frame_at)
        if isinstance(event, Kline):
            self.bars += 1
            self.last_price = event.close

    def _finish(self) -> None:
        """The data is over: deliver the answers still queued, as the backtest does."""
        self.engine.end()
        while (x := self.engine.next()) is not None:
            self._deliver(x)

    # --- running --------------------------------------------------------------------------------

    def _on_notice(self, notice: Notice | Reconnect) -> None:
        if self.recorder is not None:
            self.recorder.notice(str(notice), wall_ms())
        if self.status is not None and isinstance(notice, Gap | Malformed | Reconnect):
            self.status(f"\n{notice}\n")

    def status_line(self) -> str:
        """Last price, position, equity, orders, fills and event→order latency, on one line."""
        head = status_head(self.source.symbol, self.last_price, self.portfolio,
                           len(self.result.orders), len(self.result.fills), self.bars)  # fmt: skip
        median = p50(self.latencies)
        shown = "-" if median is None else f"{median * 1e6:.0f} µs"
        return (
            f"{head}  event→order p50 {shown}  reconnects {self.source.reconnects}  "
            f"gaps {len(self.source.gaps)}"
        )

    def stop(self) -> None:
        """Stop soon (Ctrl-C calls this): the run then finishes and reports normally."""
        self.source.close()
        if self._task is not None:
            self._task.cancel()

    async def _consume(self, until: Until) -> None:
        async for event in self.source:
            self.step(event, self.source.last_arrival)
            now = time.monotonic()
            if self.status is not None and now - self._last_status >= self.status_every:
                self._last_status = now
                self.status("\r" + self.status_line())
            if until.reached(self.bars):
                return

    async def run(
        self,
        *,
        stop_when: Callable[[], bool] | None = None,
        max_bars: int | None = None,
        seconds: float | None = None,
        poll: float = 0.05,
    ) -> BacktestResult:
        """Trade until ``stop_when()`` is true, ``max_bars`` bars closed, ``seconds`` passed,
        or :meth:`stop`; then deliver what is queued, close the record and return the result
        (a :class:`~mqlab.backtest.BacktestResult`, as the backtest returns)."""
        started = time.perf_counter()
        until = Until.after(max_bars, seconds, stop_when)
        self._task = asyncio.ensure_future(self._consume(until))
        try:
            await run_until(self._task, until, self.stop, poll)
        finally:
            self.source.close()
            self._finish()
            self.result.elapsed = time.perf_counter() - started
            if self.recorder is not None:
                self.recorder.close(session_summary(self.result), wall_ms())
        return self.result


# --- CLI ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.config import amount_arg
    from mqlab.strategies import STRATEGIES

    parser.add_argument("--symbol", default="BTCUSDT", help="Binance symbol (BTCUSDT)")
    parser.add_argument("--interval", default="1m", help="kline interval (1m)")
    parser.add_argument("--strategy", default="sma_cross", choices=sorted(STRATEGIES))
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE",
        help="strategy parameter, e.g. --param fast=5 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--cash", type=amount_arg, default="10000", help="starting USDT (10000)")
    parser.add_argument("--fee", type=amount_arg, default="0.001", help="taker fee rate (0.001)")
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated order latency (0)")
    parser.add_argument(
        "--endpoint", default=BINANCE_STREAM_URL,
        help=f"websocket endpoint (default {BINANCE_STREAM_URL}; the local server: "
        "ws://127.0.0.1:9443)",
    )  # fmt: skip
    parser.add_argument(
        "--book", default="depth5", choices=[*BOOK_STREAMS, "none"],
        help="order-book stream the venue fills against (depth5: top 5 levels each second)",
    )  # fmt: skip
    parser.add_argument("--trades", action="store_true", help="subscribe to public trades too")
    parser.add_argument(
        "--in-progress", action="store_true", help="deliver in-progress candles too"
    )
    parser.add_argument(
        "--record", type=Path, default=None,
        help="session file to write (default sessions/paper-SYMBOL-TIME.jsonl)",
    )  # fmt: skip
    parser.add_argument("--bars", type=int, default=None, help="stop after N closed bars")
    parser.add_argument("--minutes", type=float, default=None, help="stop after N minutes")
    parser.add_argument("--retries", type=int, default=8, help="connection attempts (8)")
    parser.add_argument(
        "--first-data-timeout", type=float, default=30.0, metavar="SECONDS",
        help="give up if no market data arrives this long after connecting (30): the usual "
        "sign of a symbol the venue does not list",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--url", default=None,
        help="run the market, strategy and venue as services on the broker at URL (amqp://...), "
        "free-running; without it, everything runs in this process on the engine directly",
    )  # fmt: skip
    parser.add_argument(
        "--processes", action="store_true",
        help="over the bus, one OS process per service (the embedded broker if no --url)",
    )  # fmt: skip
    parser.add_argument(
        "--ccxt", default=None, metavar="EXCHANGE",
        help="stream klines through ccxt from EXCHANGE (okx, bybit, ...; needs the optional "
        "'live' extra); --symbol then reads BASE/QUOTE, e.g. BTC/USDT",
    )  # fmt: skip


def _ccxt_source(args: argparse.Namespace) -> CcxtKlineSource:
    """``--ccxt EXCHANGE``: closed klines through ccxt (its own URL unless --endpoint is given,
    and then its markets are set from --symbol, so it needs no network)."""
    from mqlab.live.ccxt_source import ccxt_market, make_exchange

    if "/" not in args.symbol:
        raise LiveInputError(
            f"unknown symbol {args.symbol!r}: with --ccxt write it as ccxt does, e.g. BTC/USDT"
        )
    if args.book != "depth5" or args.trades or args.in_progress:
        raise LiveInputError("with --ccxt only klines are streamed: leave out --book, --trades "
                             "and --in-progress")  # fmt: skip
    local = args.endpoint != BINANCE_STREAM_URL
    exchange = make_exchange(
        args.ccxt,
        ws_url=args.endpoint.rstrip("/") + "/ws" if local else None,
        markets=[ccxt_market(args.symbol)] if local else None,
    )
    return CcxtKlineSource(exchange, args.symbol, args.interval)


def run(args: argparse.Namespace) -> int:
    from mqlab.strategies import split_params, strategy_class, typed_params

    source: BinanceSource | CcxtKlineSource
    try:
        params = typed_params(strategy_class(args.strategy), split_params(args.param))
        strategy = make_strategy(args.strategy, **params)
        if args.ccxt is None:
            book = None if args.book == "none" else args.book
            subscription = Subscription(
                (args.symbol,), args.interval, trades=args.trades, book=book
            )
            source = BinanceSource(
                subscription,
                endpoint=args.endpoint,
                in_progress=args.in_progress,
                backoff=Backoff(attempts=args.retries),
                first_data_timeout=args.first_data_timeout,
            )
            streams = subscription.streams()
        else:
            check_interval(args.interval)
            streams = [f"ccxt {args.ccxt} watch_ohlcv {args.symbol} {args.interval}"]
    except (LiveInputError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    symbol = args.symbol.replace("/", "").upper()
    record = args.record or Path("sessions") / time.strftime(f"paper-{symbol}-%Y%m%dT%H%M%S.jsonl")
    meta = {
        "symbol": symbol,
        "interval": args.interval,
        "platform": args.ccxt or "binance",
        "streams": streams,
        "endpoint": args.endpoint,
        "strategy": args.strategy,
        "params": split_params(args.param),  # as typed on the command line (JSON-safe)
        "cash": format(args.cash, "f"),
        "fee": format(args.fee, "f"),
        "latency_ms": args.latency_ms,
        "started": wall_ms(),
    }
    if args.url is not None or args.processes:
        if args.ccxt is not None:
            print("error: --ccxt runs in process only; leave out --url and --processes",
                  file=sys.stderr)  # fmt: skip
            return 2
        from mqlab.live.bus_cli import run_over_bus

        assert isinstance(source, BinanceSource)
        return run_over_bus(args, strategy, source, meta, record)
    status = None if args.json else status_writer()
    sessions: list[PaperSession] = []

    async def main() -> BacktestResult:
        nonlocal source
        if args.ccxt is not None:
            source = _ccxt_source(args)
        session = PaperSession(strategy, source, meta, record=record, status=status)
        sessions.append(session)
        print(
            f"paper trading {args.strategy} on {symbol} {args.interval} from "
            f"{args.ccxt + ' via ccxt, ' if args.ccxt else ''}{args.endpoint}; recording to "
            f"{record}; Ctrl-C stops",
            file=sys.stderr,
        )
        stop_on_signals(session.stop)
        seconds = None if args.minutes is None else args.minutes * 60
        try:
            return await session.run(max_bars=args.bars, seconds=seconds)
        finally:
            if isinstance(source, CcxtKlineSource):
                await source.aclose()

    try:
        result = asyncio.run(main())
    except (LiveSourceError, LiveInputError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, LiveSourceError) else 2
    session = sessions[0]
    summary = {
        "symbol": symbol,
        "endpoint": args.endpoint,
        **result.summary(),
        "bars": session.bars,
        "reconnects": source.reconnects,
        "gaps": len(source.gaps),
        "malformed": len(source.parser.malformed) if isinstance(source, BinanceSource) else 0,
        "session": str(record),
        "replay": f"python -m mqlab backtest --replay {record}",
    }
    print_report(summary, args.json, after_status=True)
    return 0
