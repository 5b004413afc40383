"""Paper trading over the bus, free-running: ``python -m mqlab paper --url URL [--processes]``.

The backtest pipeline (:mod:`mqlab.services`) runs in lockstep: the market service waits for
every step so the bus reproduces the backtest exactly. A live system cannot wait: the market
does not. Here three services share nothing but the broker, and nobody waits for anybody:

* the **live market service** publishes each event on ``market`` the moment the websocket
  source yields it (with the time it arrived, in the ``x-mqlab-arrival-ns`` header);
* the **strategy host** reacts to each market event, fill and order update it is pushed, and
  publishes its orders on ``orders``;
* the **venue service** owns the simulated venue (one :class:`mqlab.engine.Engine`) and the
  portfolio: it feeds each market event to the engine when it arrives, and each order when
  *it* arrives, so an order fills against the live prices that come after it reached the
  venue, never earlier ones (no look-ahead); it publishes fills and updates on
  ``execution``, shows the status line, and writes the session file.

Record and replay: the venue writes every market event and every order in the order it
handled them, each with its arrival time (an order's arrival is its venue time, the
``arrival`` the simulated venue uses). :func:`replay_bus_session` drives a fresh engine with
the same calls in the same order, so ``python -m mqlab backtest --replay FILE`` gives exactly
the same fills and PnL. It cannot re-run the strategy the way the in-process replay does: on
the bus, when a fill reaches the strategy relative to the next market event is a race, which
the file does not (and need not) fix.

The end of a session travels through the bus too: the market service publishes ``control.end``
after its last event; the strategy host, having handled everything before it, forwards it on
``orders`` after its last order; the venue stops once it has both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from mqlab.bus import Bus, Delivery
from mqlab.engine import Engine
from mqlab.events import (
    Cancel,
    Event,
    Fill,
    Kline,
    MarketEvent,
    Order,
    OrderBook,
    Trade,
    decode,
    encode,
    routing_key,
)
from mqlab.live.binance import Notice
from mqlab.live.common import make_venue, session_summary
from mqlab.live.record import Session, SessionRecorder, read_session
from mqlab.live.source import BinanceSource, Reconnect, wall_ms
from mqlab.portfolio import Portfolio
from mqlab.strategy import Strategy
from mqlab.venue import Latency

__all__ = [
    "END_KEY",
    "HEADER_ARRIVAL",
    "ArrivalLatency",
    "BusPaperResult",
    "LiveMarketService",
    "LiveStrategyHost",
    "LiveVenueService",
    "overtaken",
    "replay_bus_session",
    "run_bus_session",
]

#: Routing key of the end-of-session message (on ``market``, then on ``orders``).
END_KEY = "control.end"
NOTICE_KEY = "notice.live"
#: When the market event that caused a message reached the market service (``time.time_ns``).
HEADER_ARRIVAL = "x-mqlab-arrival-ns"
QUEUES = ("venue.market", "venue.orders", "strategy.market", "strategy.execution")


class ArrivalLatency(Latency):
    """The venue's latency, made of recorded arrivals: ``delay(id)`` is the time from an
    order's ``ts`` to when it reached the venue, as :meth:`arrive` noted (live) or the session
    file says (replay). An order not noted gets the base model's delay."""

    def __init__(self, base: Latency) -> None:
        super().__init__(base.order_ms, base.jitter_ms)
        object.__setattr__(self, "_delays", {})

    def arrive(self, request: Order | Cancel, arrival: int) -> None:
        self._delays[request.id] = arrival - request.ts  # type: ignore[attr-defined]

    def delay(self, order_id: str) -> int:
        delays: dict[str, int] = self._delays  # type: ignore[attr-defined]
        got = delays.get(order_id)
        return super().delay(order_id) if got is None else got


def _arrival_ns(delivery: Delivery) -> int | None:
    value = delivery.headers.get(HEADER_ARRIVAL)
    return int(value) if value is not None else None


class LiveMarketService:
    """Publish a live source's events on ``market`` as they arrive; ``control.end`` last."""

    def __init__(self, url: str, prefix: str, source: BinanceSource) -> None:
        self.url, self.prefix, self.source = url, prefix, source
        self.published = self.bars = 0
        self._notices: list[str] = []
        self._task: asyncio.Task[None] | None = None
        source.on_notice = self._on_notice

    def _on_notice(self, notice: Notice | Reconnect) -> None:
        self._notices.append(str(notice))  # published with the next event (this is sync)

    def stop(self) -> None:
        """Stop after the event in hand (Ctrl-C); the end message still goes out."""
        self.source.close()
        if self._task is not None:
            self._task.cancel()

    async def _watch(self, stop_when: Callable[[], bool]) -> None:
        while not stop_when():
            await asyncio.sleep(0.05)
        self.stop()

    async def _flush_notices(self, bus: Bus) -> None:
        while self._notices:
            text = self._notices.pop(0)
            await bus.publish("market", NOTICE_KEY, text.encode(), message_id=uuid.uuid4().hex)

    async def _publish_all(self, bus: Bus, max_bars: int | None, deadline: float | None) -> None:
        async for event in self.source:
            arrival = time.time_ns()
            await self._flush_notices(bus)
            await bus.publish("market", routing_key(event), encode(event), message_id=event.id,
                              headers={HEADER_ARRIVAL: arrival})  # fmt: skip
            self.published += 1
            if isinstance(event, Kline):
                self.bars += 1
            if (max_bars is not None and self.bars >= max_bars) or (
                deadline is not None and time.monotonic() >= deadline
            ):
                return

    async def run(
        self,
        *,
        max_bars: int | None = None,
        seconds: float | None = None,
        stop_when: Callable[[], bool] | None = None,
        wait: float = 60.0,
    ) -> None:
        """Publish until ``max_bars`` bars, ``seconds``, ``stop_when()`` (polled, for a stream
        that went quiet) or :meth:`stop`; then publish the end message."""
        deadline = None if seconds is None else time.monotonic() + seconds
        async with Bus(self.url, prefix=self.prefix) as bus:
            await bus.wait_for_consumers(QUEUES, timeout=wait)
            self._task = asyncio.ensure_future(self._publish_all(bus, max_bars, deadline))
            watcher = None if stop_when is None else asyncio.ensure_future(self._watch(stop_when))
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            finally:
                if watcher is not None:
                    watcher.cancel()
                self.source.close()
                await self._flush_notices(bus)
                await bus.publish("market", END_KEY, b"{}", message_id=f"end-{self.prefix}")


class LiveStrategyHost:
    """Run one strategy on what the bus pushes it; publish its orders as it makes them."""

    def __init__(self, url: str, prefix: str, strategy: Strategy) -> None:
        self.url, self.prefix, self.strategy = url, prefix, strategy
        self.orders = 0
        self.done = asyncio.Event()
        self._outbox: list[Order | Cancel] = []
        strategy.bind(self._outbox.append)

    async def _send(self, bus: Bus, arrival: int | None) -> None:
        outbox = list(self._outbox)  # the strategy appends to self._outbox: keep that list
        self._outbox.clear()
        for request in outbox:
            headers = {} if arrival is None else {HEADER_ARRIVAL: arrival}
            await bus.publish("orders", routing_key(request), encode(request),
                              message_id=request.id, headers=headers)  # fmt: skip
            self.orders += 1

    async def run(self) -> None:
        async with Bus(self.url, prefix=self.prefix) as bus:

            async def on_market(delivery: Delivery) -> None:
                if delivery.routing_key == NOTICE_KEY:
                    return
                if delivery.routing_key == END_KEY:
                    await bus.publish("orders", END_KEY, b"{}", message_id=f"end-{self.prefix}")
                    self.done.set()
                    return
                self.strategy.handle(decode(delivery.body))
                if self._outbox:
                    await self._send(bus, _arrival_ns(delivery))

            async def on_execution(delivery: Delivery) -> None:
                self.strategy.handle(decode(delivery.body))
                if self._outbox:
                    await self._send(bus, _arrival_ns(delivery))

            await bus.subscribe("strategy.market", [("market", "#")], on_market)
            await bus.subscribe("strategy.execution", [("execution", "#")], on_execution)
            await self.done.wait()


@dataclass
class BusPaperResult:
    """What a bus paper session did, as the venue counted it."""

    summary: dict[str, Any]
    equity_curve: Any  # pandas Series of equity (USDT) after each market event
    fills: list[Fill]
    latencies_ms: list[float]  # event arrival at the market service → order at the venue
    notices: list[str]
    record: Path


class LiveVenueService:
    """The simulated venue and the portfolio, fed as market events and orders arrive."""

    def __init__(
        self,
        url: str,
        prefix: str,
        meta: dict[str, Any],
        record: str | Path,
        *,
        status: Callable[[str], None] | None = None,
        status_every: float = 0.5,
    ) -> None:
        self.url, self.prefix, self.meta = url, prefix, meta
        self.venue = make_venue(meta)
        self.latency = ArrivalLatency(self.venue.latency)
        self.venue.latency = self.latency
        self.engine = Engine(self.venue)
        self.portfolio = Portfolio(meta["cash"], quote=meta.get("quote", "USDT"))
        self.recorder = SessionRecorder(record, {**meta, "mode": "bus"})
        self.record = Path(record)
        self.status, self.status_every = status, status_every
        self.fills: list[Fill] = []
        self.orders: list[Order | Cancel] = []
        self.notices: list[str] = []
        self.latencies_ms: list[float] = []
        self.events = self.bars = 0
        self.last_price: Decimal | None = None
        self.done = asyncio.Event()
        self._ends = 0
        self._last_status = 0.0
        self._updates = 0

    # --- the engine calls, synchronous: the handlers never interleave inside one ------------

    def _market(self, event: MarketEvent, arrival: int) -> list[Event]:
        self.recorder.market(event, arrival)
        self.events += 1
        out: list[Event] = []
        x: Any = self.engine.feed(event)
        while x is not event:
            out.append(x)
            x = self.engine.next()
        self.engine.next()  # closes the step (returns None)
        self._apply(out)
        self.portfolio.on_market(event)
        if isinstance(event, Kline):
            self.bars += 1
            self.last_price = event.close
        return out

    def _order(self, request: Order | Cancel, arrival: int) -> None:
        self.latency.arrive(request, arrival)
        self.recorder.order(request, arrival)
        self.orders.append(request)
        self.engine.submit([request])  # its answers are due at its arrival: the next event

    def _finish(self) -> list[Event]:
        self.engine.end()
        out: list[Event] = []
        while (x := self.engine.next()) is not None:
            out.append(x)
        self._apply(out)
        return out

    def _apply(self, answers: list[Event]) -> None:
        for x in answers:
            if type(x) is Fill:
                self.portfolio.on_fill(x)
                self.fills.append(x)
            else:
                self._updates += 1

    def summary(self) -> dict[str, Any]:
        """What a replay must reproduce (as :func:`mqlab.live.paper.session_summary`)."""
        return bus_summary(self.events, self.orders, self.fills, self.portfolio, self.venue)

    def status_line(self) -> str:
        symbol = self.meta["symbol"]
        lat = sorted(self.latencies_ms)
        p50 = f"{lat[len(lat) // 2]:.1f} ms" if lat else "-"
        price = "-" if self.last_price is None else format(self.last_price, "f")
        return (
            f"{symbol} last {price}  pos {self.portfolio.position(symbol).normalize():f}  "
            f"equity {self.portfolio.equity():.2f}  orders {len(self.orders)}  "
            f"fills {len(self.fills)}  bars {self.bars}  event→order p50 {p50} (over the bus)"
        )

    # --- the service ------------------------------------------------------------------------

    async def _publish(self, bus: Bus, answers: list[Event]) -> None:
        for x in answers:
            await bus.publish("execution", routing_key(x), encode(x), message_id=x.id)

    async def run(self) -> BusPaperResult:
        async with Bus(self.url, prefix=self.prefix) as bus:

            async def on_market(delivery: Delivery) -> None:
                key = delivery.routing_key
                if key == NOTICE_KEY:
                    text = delivery.body.decode()
                    self.notices.append(text)
                    self.recorder.notice(text, wall_ms())
                    # The source logged a malformed frame already, in the market's process.
                    if self.status is not None and not text.startswith("malformed frame"):
                        self.status(f"\n{text}\n")
                    return
                if key == END_KEY:
                    await self._end(bus)
                    return
                event = decode(delivery.body)
                assert isinstance(event, Kline | OrderBook | Trade)
                await self._publish(bus, self._market(event, wall_ms()))
                now = time.monotonic()
                if self.status is not None and now - self._last_status >= self.status_every:
                    self._last_status = now
                    self.status("\r" + self.status_line())

            async def on_order(delivery: Delivery) -> None:
                if delivery.routing_key == END_KEY:
                    await self._end(bus)
                    return
                request = decode(delivery.body)
                assert isinstance(request, Order | Cancel)
                sent = _arrival_ns(delivery)
                if sent is not None:
                    self.latencies_ms.append((time.time_ns() - sent) / 1e6)
                # Its venue time: now, but never before the time it was sent at plus the
                # configured latency (clocks of two machines may disagree a little).
                base = request.ts + Latency.delay(self.latency, request.id)
                self._order(request, max(base, wall_ms()))

            await bus.subscribe("venue.market", [("market", "#")], on_market)
            await bus.subscribe("venue.orders", [("orders", "#")], on_order)
            await self.done.wait()
        return BusPaperResult(
            self.summary(),
            self.portfolio.equity_curve(),
            self.fills,
            self.latencies_ms,
            self.notices,
            self.record,
        )

    async def _end(self, bus: Bus) -> None:
        self._ends += 1
        if self._ends < 2:  # the market's end, then the strategy host's after its last order
            return
        await self._publish(bus, self._finish())
        self.recorder.close(self.summary(), wall_ms())
        self.done.set()


def overtaken(session: Session) -> list[int]:
    """For each order of a bus session file, how many market events it could not trade on
    although the venue handled them after it: they were stamped (``ts``) before the order
    reached the venue, so they quote prices from before its arrival (no look-ahead either
    way). In process, with no latency, this is always 0; over the bus, the hops add it."""
    out: list[int] = []
    arrivals: list[int] = []  # of the orders so far, to count for
    for kind, i in session.sequence:
        if kind == "order":
            arrivals.append(session.orders[i][0])
            out.append(0)
            continue
        ts = session.events[i].ts
        for j, arrival in enumerate(arrivals):
            if ts < arrival:
                out[j] += 1
    return out


def bus_summary(
    events: int,
    orders: list[Order | Cancel],
    fills: list[Fill],
    portfolio: Portfolio,
    venue: Any,
) -> dict[str, Any]:
    """Counts, money (exact strings) and the fills' digest, keyed as the in-process summary."""
    from mqlab.backtest import BacktestResult

    result = BacktestResult("bus", events, portfolio=portfolio, exchange=venue)
    result.events = events
    result.orders = list(orders)
    result.fills = list(fills)
    return session_summary(result)


@dataclass
class BusReplay:
    """A bus session replayed through the engine, and how it compares with the live run."""

    session: Session
    summary: dict[str, Any]
    fills: list[Fill]
    portfolio: Portfolio
    differences: list[str]

    @property
    def identical(self) -> bool:
        return not self.differences


def replay_bus_session(session: str | Path | Session) -> BusReplay:
    """Drive a fresh engine with the file's market events and orders, in the file's order and
    at their recorded arrival times, as the venue service did; compare with its summary."""
    if not isinstance(session, Session):
        session = read_session(session)
    venue = make_venue(session.meta)
    latency = ArrivalLatency(venue.latency)
    venue.latency = latency
    engine = Engine(venue)
    portfolio = Portfolio(session.meta["cash"], quote=session.meta.get("quote", "USDT"))
    fills: list[Fill] = []
    orders: list[Order | Cancel] = []

    def apply(x: Any) -> None:
        if type(x) is Fill:
            portfolio.on_fill(x)
            fills.append(x)

    for kind, i in session.sequence:
        if kind == "order":
            arrival, request = session.orders[i]
            latency.arrive(request, arrival)
            orders.append(request)
            engine.submit([request])
            continue
        event = session.events[i]
        x: Any = engine.feed(event)
        while x is not event:
            apply(x)
            x = engine.next()
        engine.next()
        portfolio.on_market(event)
    if session.summary is not None:  # the live run reached its end: so does the replay
        engine.end()
        while (x := engine.next()) is not None:
            apply(x)
    summary = bus_summary(len(session.events), orders, fills, portfolio, venue)
    differences: list[str] = []
    if session.summary is None:
        differences.append("the session has no end line (killed mid-run?): nothing to check")
    else:
        for key, want in session.summary.items():
            if summary.get(key) != want:
                differences.append(f"{key}: live {want}, replay {summary.get(key)}")
    return BusReplay(session, summary, fills, portfolio, differences)


# --- running the three: in one process, or one OS process each -------------------------------


async def run_bus_session(
    url: str,
    strategy: Strategy,
    source: BinanceSource,
    meta: dict[str, Any],
    record: str | Path,
    *,
    prefix: str | None = None,
    max_bars: int | None = None,
    seconds: float | None = None,
    status: Callable[[str], None] | None = None,
    on_market: Callable[[LiveMarketService], None] | None = None,
    stop_when: Callable[[], bool] | None = None,
) -> BusPaperResult:
    """The three services in this process, on the broker at ``url``; their queues and
    exchanges (``prefix``, unique by default) are deleted at the end."""
    prefix = prefix or f"mqlab-paper-{uuid.uuid4().hex[:8]}"
    venue = LiveVenueService(url, prefix, meta, record, status=status)
    host = LiveStrategyHost(url, prefix, strategy)
    market = LiveMarketService(url, prefix, source)
    if on_market is not None:
        on_market(market)  # e.g. to install a Ctrl-C handler that calls market.stop()
    venue_task = asyncio.ensure_future(venue.run())
    host_task = asyncio.ensure_future(host.run())
    try:
        await market.run(max_bars=max_bars, seconds=seconds, stop_when=stop_when)
        result = await venue_task
        await host_task
    finally:
        venue_task.cancel()
        host_task.cancel()
        async with Bus(url, prefix=prefix) as bus:
            await _delete(bus)
    return result


async def _delete(bus: Bus) -> None:
    """Delete this session's queues and exchanges (declared here, so the bus knows them)."""
    for name in ("market", "orders", "execution"):
        await bus.declare_exchange(name)
    for suffix in QUEUES:
        await bus.declare_queue(suffix, [])
    await bus.delete()


def service_main(argv: list[str] | None = None) -> int:
    """``python -m mqlab.live.bus ROLE CONFIG.json``: one service of ``paper --processes``."""
    role, config_path = (argv if argv is not None else sys.argv[1:])[:2]
    config = json.loads(Path(config_path).read_text())
    url, prefix, meta = config["url"], config["prefix"], config["meta"]
    if role != "market":  # Ctrl-C in the terminal reaches every process: only the market acts
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def main() -> int:
        if role == "venue":
            show = _status_writer() if config.get("status") else None
            result = await LiveVenueService(url, prefix, meta, config["record"],
                                            status=show).run()  # fmt: skip
            Path(config["result"]).write_text(json.dumps({
                "summary": result.summary,
                "latencies_ms": result.latencies_ms,
                "notices": result.notices,
            }))  # fmt: skip
        elif role == "strategy":
            from mqlab.strategies import make_strategy, strategy_class, typed_params

            texts = {k: str(v) for k, v in meta.get("params", {}).items()}
            params = typed_params(strategy_class(meta["strategy"]), texts)
            await LiveStrategyHost(url, prefix, make_strategy(meta["strategy"], **params)).run()
        elif role == "market":
            from mqlab.live.source import LiveSourceError

            source = make_source(config)
            market = LiveMarketService(url, prefix, source)
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signal.SIGINT, market.stop)
                loop.add_signal_handler(signal.SIGTERM, market.stop)
            try:
                await market.run(max_bars=config.get("bars"), seconds=config.get("seconds"))
            except LiveSourceError as exc:
                print(f"\nerror: {exc}", file=sys.stderr)
                return 1
        else:
            print(f"error: unknown service {role!r}: market, strategy or venue", file=sys.stderr)
            return 2
        return 0

    return asyncio.run(main())


def make_source(config: dict[str, Any]) -> BinanceSource:
    """The websocket source a ``paper --processes`` config describes."""
    from mqlab.live.binance import Subscription
    from mqlab.live.source import Backoff

    s = config["source"]
    subscription = Subscription((s["symbol"],), s["interval"], trades=s["trades"], book=s["book"])
    return BinanceSource(subscription, endpoint=s["endpoint"], in_progress=s["in_progress"],
                         backoff=Backoff(attempts=s["retries"]),
                         first_data_timeout=s["first_data_timeout"])  # fmt: skip


def _status_writer() -> Callable[[str], None]:
    tty = sys.stderr.isatty()

    def show(text: str) -> None:
        if not tty:
            text = text.strip("\r\n") + "\n"
        sys.stderr.write(text)
        sys.stderr.flush()

    return show


def run_processes(config: dict[str, Any], workdir: Path) -> tuple[int, dict[str, Any] | None]:
    """Start venue, strategy host and market as OS processes; wait; the venue's result."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.json"
    config = {**config, "result": str(workdir / "result.json")}
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = {
        role: subprocess.Popen([sys.executable, "-m", "mqlab.live.bus", role, str(path)], env=env)
        for role in ("venue", "strategy", "market")
    }

    def forward(signum: int, frame: object) -> None:  # Ctrl-C here: the market stops first
        with contextlib.suppress(ProcessLookupError):
            procs["market"].send_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, forward)
    try:
        market_rc = procs["market"].wait()
        if market_rc != 0:  # no end message will come: stop the others
            for role in ("strategy", "venue"):
                procs[role].terminate()
        codes = {role: p.wait() for role, p in procs.items()}
    finally:
        signal.signal(signal.SIGINT, previous)
    if market_rc != 0:
        return market_rc, None
    if any(codes.values()):
        return 1, None
    return 0, json.loads(Path(config["result"]).read_text())


if __name__ == "__main__":
    sys.exit(service_main())
