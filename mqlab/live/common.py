"""What the in-process and the bus paper sessions share: the venue, portfolio and strategy a
session's settings describe, the summary a replay must reproduce, when a live run stops, and
how its status line and report are shown."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mqlab.backtest import BacktestResult
from mqlab.events import Fill, encode
from mqlab.portfolio import Portfolio
from mqlab.strategy import Strategy
from mqlab.venue import Latency, SimulatedExchange

__all__ = [
    "Until",
    "fills_digest",
    "make_portfolio",
    "make_strategy_from",
    "make_venue",
    "p50",
    "print_report",
    "run_until",
    "session_summary",
    "status_head",
    "status_writer",
    "stop_on_signals",
]


def make_venue(meta: dict[str, Any]) -> SimulatedExchange:
    """The simulated venue a session's settings describe (paper and replay build it alike)."""
    return SimulatedExchange(
        {meta.get("quote", "USDT"): Decimal(meta["cash"])},
        maker_fee=Decimal(meta.get("maker_fee", "0.0002")),
        taker_fee=Decimal(meta["fee"]),
        platform=meta.get("platform", "binance"),
        latency=Latency(int(meta.get("latency_ms", 0)), int(meta.get("jitter_ms", 0))),
    )


def make_portfolio(meta: dict[str, Any]) -> Portfolio:
    """The portfolio a session's settings describe: its cash, in its quote currency."""
    return Portfolio(meta["cash"], quote=meta.get("quote", "USDT"))


def make_strategy_from(meta: dict[str, Any]) -> Strategy:
    """The strategy a session's settings name, with its parameters (as text or JSON values)."""
    from mqlab.strategies import make_strategy, strategy_class, typed_params

    texts = {k: str(v) for k, v in meta.get("params", {}).items()}
    params = typed_params(strategy_class(meta["strategy"]), texts)
    return make_strategy(meta["strategy"], **params)


def fills_digest(fills: list[Fill]) -> str:
    """SHA-256 over the fills' exact JSON, in order: equal digests, equal fills."""
    h = hashlib.sha256()
    for fill in fills:
        h.update(encode(fill) + b"\n")
    return h.hexdigest()


def session_summary(result: BacktestResult) -> dict[str, Any]:
    """What a replay must reproduce: counts, money (exact strings) and the fills' digest."""
    s = result.summary()
    keep = ("events", "orders_sent", "rejected", "fills", "equity", "realised", "unrealised")
    out = {k: s[k] for k in (*keep, "fees", "turnover")}
    out["fills_sha256"] = fills_digest(result.fills)
    return out


# --- when a live run stops ----------------------------------------------------------------------


@dataclass(frozen=True)
class Until:
    """When a live run stops by itself: after ``max_bars`` closed bars, at ``deadline``
    (:func:`time.monotonic`), or once ``stop_when()`` holds, whichever comes first."""

    max_bars: int | None = None
    deadline: float | None = None
    stop_when: Callable[[], bool] | None = None

    @classmethod
    def after(
        cls,
        max_bars: int | None = None,
        seconds: float | None = None,
        stop_when: Callable[[], bool] | None = None,
    ) -> Until:
        """Stop after ``max_bars`` bars or ``seconds`` from now, or once ``stop_when()``."""
        deadline = None if seconds is None else time.monotonic() + seconds
        return cls(max_bars, deadline, stop_when)

    def quiet(self) -> bool:
        """Is it time, whatever the stream does (the deadline passed, or the condition holds)?"""
        return (self.deadline is not None and time.monotonic() >= self.deadline) or (
            self.stop_when is not None and self.stop_when()
        )

    def reached(self, bars: int) -> bool:
        """Is it time, after an event that brought the closed bars to ``bars``?"""
        return (self.max_bars is not None and bars >= self.max_bars) or self.quiet()


async def run_until(
    task: asyncio.Task[None], until: Until, stop: Callable[[], None], poll: float = 0.05
) -> None:
    """Await ``task``, a loop over a live source that checks ``until`` after each event, until
    it returns or ``stop()`` cancels it (Ctrl-C). A stream that went quiet brings no event to
    check after, so meanwhile a watcher polls ``until`` and calls ``stop()``."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(poll)
            if until.quiet():
                stop()
                return

    watcher = None
    if until.deadline is not None or until.stop_when is not None:
        watcher = asyncio.ensure_future(watch())
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        if watcher is not None:
            watcher.cancel()


# --- showing a live run ---------------------------------------------------------------------


def stop_on_signals(stop: Callable[[], None]) -> None:
    """Make Ctrl-C (SIGINT) and SIGTERM call ``stop()`` in the running loop, so that a live run
    ends the way it ends by itself: with its end message, its record and its report."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        loop.add_signal_handler(signal.SIGINT, stop)
        loop.add_signal_handler(signal.SIGTERM, stop)


def p50(values: list[float]) -> float | None:
    """The median as the status lines and reports show it (the upper one of an even count)."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else None


def status_head(
    symbol: str,
    last_price: Decimal | None,
    portfolio: Portfolio,
    orders: int,
    fills: int,
    bars: int,
) -> str:
    """The start of a session's status line: last price, position, equity and the counts."""
    price = "-" if last_price is None else format(last_price, "f")
    return (
        f"{symbol} last {price}  pos {portfolio.position(symbol).normalize():f}  "
        f"equity {portfolio.equity():.2f}  orders {orders}  fills {fills}  bars {bars}"
    )


def status_writer() -> Callable[[str], None]:
    """Write status text to stderr: in a terminal, ``\\r`` redraws the line; in a log file,
    whole lines, no carriage returns."""
    tty = sys.stderr.isatty()

    def show(text: str) -> None:
        if not tty:
            text = text.strip("\r\n") + "\n"
        sys.stderr.write(text)
        sys.stderr.flush()

    return show


def print_report(report: dict[str, Any], as_json: bool, *, after_status: bool = False) -> None:
    """Print a command's report on stdout, as JSON or as an aligned table (floats to 6
    places); ``after_status``: end the status line on stderr first."""
    report = {k: round(v, 6) if isinstance(v, float) else v for k, v in report.items()}
    if as_json:
        print(json.dumps(report, indent=2))
        return
    if after_status:
        sys.stderr.write("\n")
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
