"""A short paper session against the local fake server, replayed: for chapter 10 and tests.

:func:`paper_demo` starts a :class:`~mqlab.live.fakeserver.FakeBinanceServer` playing
SYNTHETIC time-lapse bars (with a book snapshot after each) and a disconnect, a malformed
frame and a burst in the middle, paper-trades an SMA crossover on it through
:class:`~mqlab.live.paper.PaperSession`, records the session, replays the file through the
backtest (:func:`~mqlab.live.replay.replay_session`), and returns both equity curves, plus
the backtest of the same data as it would have arrived with no faults. Use ``await
paper_demo()`` in a notebook (its loop is already running) and :func:`run_paper_demo` in a
script.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from mqlab.backtest import Backtest
from mqlab.events import MarketEvent
from mqlab.live.binance import StreamParser, Subscription, events_only
from mqlab.live.fakeserver import FakeBinanceServer, Frame, Step, session_script, time_lapse_klines
from mqlab.live.paper import PaperSession, make_venue
from mqlab.live.replay import replay_session
from mqlab.live.source import Backoff, BinanceSource
from mqlab.portfolio import Portfolio
from mqlab.strategies import SmaCross

__all__ = ["LiveDemo", "events_from_script", "paper_demo", "run_paper_demo"]


@dataclass
class LiveDemo:
    """What :func:`paper_demo` ran and found."""

    #: Equity (USDT) after each market event, indexed by the events' time (UTC).
    live: pd.Series
    replay: pd.Series
    backtest: pd.Series  # the same bars and books with no faults, straight through Backtest
    live_summary: dict[str, Any]
    replay_summary: dict[str, Any]
    identical: bool  # the replay reproduced the live orders, fills and PnL exactly
    differences: list[str]
    notices: list[str]  # what the live session noticed: reconnect, gap, malformed frame
    session: Path  # the session file written
    fills: int = 0
    reconnects: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def events_from_script(script: list[Step], subscription: Subscription) -> list[MarketEvent]:
    """The market events a client would get from ``script`` if nothing were lost: its frames
    fed through the sans-IO parser directly, no socket (actions and raw strings skipped)."""
    parser = StreamParser(subscription)
    out: list[MarketEvent] = []
    for step in script:
        if isinstance(step, Frame):
            out.extend(events_only(parser.feed(step.text(), 0)))
    return out


async def paper_demo(
    bars: int = 240,
    *,
    fast: int = 5,
    slow: int = 20,
    qty: Decimal | str = "0.1",
    cash: Decimal | str = "10000",
    fee: Decimal | str = "0.001",
    disconnect_at: int | None = 120,
    lost_bars: int = 3,
    malformed_at: int | None = 60,
    burst_at: int | None = 180,
    pace: float = 0.0,
    latency_ms: int = 0,
    jitter_ms: int = 0,
    seed: int = 7,
    record: str | Path | None = None,
) -> LiveDemo:
    """Paper-trade SmaCross(fast, slow, qty) on ``bars`` synthetic bars from the local server,
    then replay the session file; see the module docstring. ``pace``: seconds per frame;
    ``latency_ms`` + up to ``jitter_ms``: the venue's simulated order latency."""
    klines = time_lapse_klines(bars, seed=seed)
    subscription = Subscription(("BTCUSDT",), klines[0].interval, book="depth5")
    script = session_script(
        klines,
        book="depth5",
        disconnect_at=disconnect_at,
        lost_bars=lost_bars,
        malformed_at=malformed_at,
        burst_at=burst_at,
    )
    if record is None:
        record = Path(tempfile.mkdtemp(prefix="mqlab-paper-")) / "session.jsonl"
    meta = {
        "symbol": "BTCUSDT",
        "interval": subscription.interval,
        "streams": subscription.streams(),
        "endpoint": "local fake server (SYNTHETIC time-lapse data)",
        "strategy": "sma_cross",
        "params": {"fast": fast, "slow": slow, "qty": str(qty)},
        "cash": str(cash),
        "fee": str(fee),
        "latency_ms": latency_ms,
        "jitter_ms": jitter_ms,
    }
    async with FakeBinanceServer(script, pace=pace) as server:
        source = BinanceSource(subscription, endpoint=server.url, backoff=Backoff(initial=0.05))
        session = PaperSession(SmaCross(fast, slow, qty), source, meta, record=record)
        live = await session.run(
            stop_when=lambda: server.exhausted.is_set() and source.parser.frames >= server.sent
        )
    replay = replay_session(record)
    clean = events_from_script(
        session_script(klines, book="depth5"), subscription
    )  # no faults: every bar, in order
    backtest = Backtest(
        SmaCross(fast, slow, qty),
        clean,
        exchange=make_venue(meta),
        portfolio=Portfolio(cash),
    ).run()
    return LiveDemo(
        live=live.portfolio.equity_curve(),
        replay=replay.result.portfolio.equity_curve(),
        backtest=backtest.portfolio.equity_curve(),
        live_summary=replay.session.summary or {},
        replay_summary=replay.summary,
        identical=replay.identical,
        differences=replay.differences,
        notices=replay.session.notices,
        session=Path(record),
        fills=len(live.fills),
        reconnects=source.reconnects,
    )


def run_paper_demo(**options: Any) -> LiveDemo:
    """:func:`paper_demo` from synchronous code (not inside a running event loop)."""
    return asyncio.run(paper_demo(**options))
