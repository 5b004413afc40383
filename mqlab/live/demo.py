"""A short paper session on a live stream, replayed: for chapter 10 and tests.

By default (``endpoint=None``) :func:`paper_demo` starts a
:class:`~mqlab.live.fakeserver.FakeBinanceServer` playing SYNTHETIC time-lapse bars (with a
book snapshot after each) and a disconnect, a malformed frame and a burst in the middle, so it
needs no network. Given a real endpoint (:data:`~mqlab.live.binance.BINANCE_STREAM_URL`) it
listens to Binance's public stream instead, until ``bars`` candles have closed. Either way it
paper-trades an SMA crossover through :class:`~mqlab.live.paper.PaperSession`, records the
session, replays the file through the backtest (:func:`~mqlab.live.replay.replay_session`),
and returns the equity curves, plus a backtest of the same data: for the local server, the
script's bars as they would have arrived with no faults; for a real endpoint, the events the
session recorded. Use ``await paper_demo()`` in a notebook (its loop is already running) and
:func:`run_paper_demo` in a script.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from mqlab.backtest import Backtest
from mqlab.events import Fill, MarketEvent
from mqlab.live.binance import StreamParser, Subscription, events_only
from mqlab.live.common import make_portfolio, make_strategy_from, make_venue, p50
from mqlab.live.fakeserver import FakeBinanceServer, Frame, Step, session_script, time_lapse_klines
from mqlab.live.paper import PaperSession
from mqlab.live.record import read_session
from mqlab.live.replay import ReplayResult, replay_session
from mqlab.live.source import Backoff, BinanceSource

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mqlab.live.bus_venue import BusReplay

__all__ = [
    "NO_FAULTS",
    "LiveDemo",
    "LocalFaults",
    "SmaSettings",
    "bus_paper_demo",
    "events_from_script",
    "live_comparison",
    "paper_demo",
    "plot_live",
    "run_paper_demo",
    "same_fills",
]


#: The stream of the local server, as a label.
LOCAL_SOURCE = "local fake server (SYNTHETIC time-lapse data)"


@dataclass(frozen=True)
class SmaSettings:
    """The SMA-crossover paper trader the demos run: its windows, size, cash and fee."""

    fast: int = 5
    slow: int = 20
    qty: Decimal | str = "0.1"
    cash: Decimal | str = "10000"
    fee: Decimal | str = "0.001"


@dataclass(frozen=True)
class LocalFaults:
    """What the local server does to its stream, at which bar (``None``: not at all): a
    disconnect that loses ``lost_bars`` bars, a malformed frame, a burst."""

    disconnect_at: int | None = 120
    lost_bars: int = 3
    malformed_at: int | None = 60
    burst_at: int | None = 180


#: A local stream with no fault in it.
NO_FAULTS = LocalFaults(disconnect_at=None, malformed_at=None, burst_at=None)


@dataclass
class LiveDemo:
    """What :func:`paper_demo` ran and found."""

    #: Equity (USDT) after each market event, indexed by the events' time (UTC).
    live: pd.Series
    replay: pd.Series
    backtest: pd.Series  # the same data straight through Backtest (see the module docstring)
    live_summary: dict[str, Any]
    replay_summary: dict[str, Any]
    identical: bool  # the replay reproduced the live orders, fills and PnL exactly
    differences: list[str]
    notices: list[str]  # what the live session noticed: reconnect, gap, malformed frame
    session: Path  # the session file written
    fills: int = 0
    reconnects: int = 0
    #: Where the stream came from, as a label for tables and plots.
    source: str = LOCAL_SOURCE
    #: What the backtest curve ran on, as a label.
    backtest_label: str = "backtest of the same bars, no faults"
    extra: dict[str, Any] = field(default_factory=dict)
    #: Each fill as (order id, side, qty, price, fee): what was traded, without its times.
    executions: list[tuple[str, str, Decimal, Decimal, Decimal]] = field(default_factory=list)

    def comparison(self) -> pd.DataFrame:
        """The live run's recorded summary beside the replay's, key by key, and whether each is
        equal (money as exact strings, the fills as a SHA-256 of their JSON)."""
        keys = list(dict.fromkeys([*self.live_summary, *self.replay_summary]))

        def shown(value: Any) -> Any:  # a digest's head is enough to read; equality uses it all
            return value[:16] + "…" if isinstance(value, str) and len(value) > 40 else value

        rows = [
            (k, shown(self.live_summary.get(k)), shown(self.replay_summary.get(k)),
             self.live_summary.get(k) == self.replay_summary.get(k))
            for k in keys
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=["", "live (recorded)", "replay", "equal"])
        return frame.set_index("")

    def first_divergence(self) -> pd.Timestamp | None:
        """The first time (UTC) the backtest's equity differs from the live session's, at the
        live session's event times (the last value at each), or None if it never does."""
        live = self.live.groupby(level=0).last()
        backtest = self.backtest.groupby(level=0).last().reindex(live.index)
        apart = (backtest != live).to_numpy()
        return live.index[int(apart.argmax())] if apart.any() else None


def events_from_script(script: list[Step], subscription: Subscription) -> list[MarketEvent]:
    """The market events a client would get from ``script`` if nothing were lost: its frames
    fed through the sans-IO parser directly, no socket (actions and raw strings skipped)."""
    parser = StreamParser(subscription)
    out: list[MarketEvent] = []
    for step in script:
        if isinstance(step, Frame):
            out.extend(events_only(parser.feed(step.text(), 0)))
    return out


def _local_script(
    bars: int, seed: int, faults: LocalFaults
) -> tuple[Subscription, list[Step], list[MarketEvent]]:
    """The subscription the local server's SYNTHETIC bars answer, the script that plays them
    with these faults (see :func:`~mqlab.live.fakeserver.session_script`), and the events of
    the same bars with no faults: every bar, in order, for the backtest to run on."""
    klines = time_lapse_klines(bars, seed=seed)
    subscription = Subscription(("BTCUSDT",), klines[0].interval, book="depth5")
    script = session_script(klines, book="depth5", **asdict(faults))
    clean = events_from_script(session_script(klines, book="depth5"), subscription)
    return subscription, script, clean


@contextlib.asynccontextmanager
async def _local_stream(
    script: list[Step], subscription: Subscription, pace: float
) -> AsyncIterator[tuple[BinanceSource, Callable[[], bool]]]:
    """The local server playing ``script``, a source listening to it, and when to stop: once
    the server played everything and the source read it all."""
    async with FakeBinanceServer(script, pace=pace) as server:
        source = BinanceSource(subscription, endpoint=server.url, backoff=Backoff(initial=0.05))
        yield source, lambda: server.exhausted.is_set() and source.parser.frames >= server.sent


def _sma_meta(
    subscription: Subscription,
    endpoint: str,
    sma: SmaSettings,
    latency_ms: int = 0,
    jitter_ms: int = 0,
) -> dict[str, Any]:
    """The session line of an SMA-crossover paper session on ``subscription``."""
    return {
        "symbol": subscription.symbols[0],
        "interval": subscription.interval,
        "streams": subscription.streams(),
        "endpoint": endpoint,
        "strategy": "sma_cross",
        "params": {"fast": sma.fast, "slow": sma.slow, "qty": str(sma.qty)},
        "cash": str(sma.cash),
        "fee": str(sma.fee),
        "latency_ms": latency_ms,
        "jitter_ms": jitter_ms,
    }


def _backtest_curve(events: list[MarketEvent], meta: dict[str, Any]) -> pd.Series:
    """The equity curve of the session's strategy and venue run straight through Backtest."""
    return (
        Backtest(
            make_strategy_from(meta),
            events,
            exchange=make_venue(meta),
            portfolio=make_portfolio(meta),
        )
        .run()
        .portfolio.equity_curve()
    )


def _demo(
    live: pd.Series,
    fills: list[Fill],
    stream: BinanceSource,
    replay: ReplayResult | BusReplay,
    backtest: pd.Series,
    **labels: Any,
) -> LiveDemo:
    """A :class:`LiveDemo` from the live run, its replay and the backtest."""
    return LiveDemo(
        live=live,
        replay=replay.portfolio.equity_curve(),
        backtest=backtest,
        live_summary=replay.session.summary or {},
        replay_summary=replay.summary,
        identical=replay.identical,
        differences=replay.differences,
        notices=replay.session.notices,
        session=replay.session.path,
        fills=len(fills),
        reconnects=stream.reconnects,
        executions=[(f.order_id, str(f.side), f.qty, f.price, f.fee) for f in fills],
        **labels,
    )


async def paper_demo(
    bars: int = 240,
    *,
    endpoint: str | None = None,
    symbol: str = "BTCUSDT",
    interval: str = "1s",
    sma: SmaSettings = SmaSettings(),
    faults: LocalFaults = LocalFaults(),
    pace: float = 0.0,
    latency_ms: int = 0,
    jitter_ms: int = 0,
    seed: int = 7,
    record: str | Path | None = None,
) -> LiveDemo:
    """Paper-trade ``sma`` (an SmaCross) on ``bars`` bars, then replay the session file;
    see the module docstring. ``endpoint``: None for the local server (its bars are 1m,
    SYNTHETIC, and ``faults`` apply), or a Binance-format websocket URL, where
    ``symbol`` and ``interval`` are streamed (``1s``: a bar a second). ``pace``: the local
    server's seconds per frame; ``latency_ms`` + up to ``jitter_ms``: the venue's simulated
    order latency."""
    if record is None:
        record = Path(tempfile.mkdtemp(prefix="mqlab-paper-")) / "session.jsonl"
    if endpoint is not None:
        subscription = Subscription((symbol,), interval, book="depth5")
        meta = _sma_meta(subscription, endpoint, sma, latency_ms, jitter_ms)
        source = BinanceSource(subscription, endpoint=endpoint)
        session = PaperSession(make_strategy_from(meta), source, meta, record=record)
        live = await session.run(max_bars=bars)
        replay = replay_session(record)
        # The stream has no "clean" copy to compare with: the backtest runs on what was
        # recorded, filled at once (no order latency).
        backtest = _backtest_curve(replay.session.events, {**meta, "latency_ms": 0, "jitter_ms": 0})
        return _demo(
            live.portfolio.equity_curve(), live.fills, source, replay, backtest,
            source=f"{endpoint} ({subscription.symbols[0]} {interval})",
            extra={"latencies_ms": [x * 1e3 for x in session.latencies]},
            backtest_label="backtest of the recorded events, no order latency",
        )  # fmt: skip
    subscription, script, clean = _local_script(bars, seed, faults)
    meta = _sma_meta(subscription, LOCAL_SOURCE, sma, latency_ms, jitter_ms)
    async with _local_stream(script, subscription, pace) as (source, played):
        session = PaperSession(make_strategy_from(meta), source, meta, record=record)
        live = await session.run(stop_when=played)
    return _demo(
        live.portfolio.equity_curve(), live.fills, source, replay_session(record),
        _backtest_curve(clean, meta),
        extra={"latencies_ms": [x * 1e3 for x in session.latencies]},
    )  # fmt: skip


def run_paper_demo(**options: Any) -> LiveDemo:
    """:func:`paper_demo` from synchronous code (not inside a running event loop)."""
    return asyncio.run(paper_demo(**options))


async def bus_paper_demo(
    url: str,
    bars: int = 240,
    *,
    sma: SmaSettings = SmaSettings(),
    faults: LocalFaults = LocalFaults(),
    pace: float = 0.002,
    seed: int = 7,
    record: str | Path | None = None,
) -> LiveDemo:
    """:func:`paper_demo`'s local session (same bars, same faults), run as services over the
    bus at ``url``, free-running (:mod:`mqlab.live.bus`), then its file replayed through the
    engine. ``pace``: seconds per frame (a live stream is not instant; the bus takes some
    milliseconds per hop). ``extra`` holds ``latencies_ms`` (event → order at the venue) and
    ``overtaken`` (per order, the market events the venue handled after it but stamped before
    it arrived: :func:`mqlab.live.bus_venue.overtaken`)."""
    from mqlab.live.bus import run_bus_session
    from mqlab.live.bus_venue import overtaken, replay_bus_session

    if record is None:
        record = Path(tempfile.mkdtemp(prefix="mqlab-paper-")) / "bus-session.jsonl"
    subscription, script, clean = _local_script(bars, seed, faults)
    meta = _sma_meta(subscription, LOCAL_SOURCE, sma)
    async with _local_stream(script, subscription, pace) as (source, played):
        live = await run_bus_session(
            url, make_strategy_from(meta), source, meta, record, stop_when=played
        )
    replay = replay_bus_session(record)
    return _demo(
        live.equity_curve, live.fills, source, replay, _backtest_curve(clean, meta),
        source=f"{LOCAL_SOURCE}, over the bus",
        extra={"latencies_ms": live.latencies_ms, "overtaken": overtaken(replay.session)},
    )  # fmt: skip


def live_comparison(in_process: LiveDemo, over_bus: LiveDemo) -> pd.DataFrame:
    """The two live sessions side by side: fills, final equity, whether each replay was
    identical, the event → order latency and the market events orders could not trade on."""
    from mqlab.live.bus_venue import overtaken

    def median_ms(demo: LiveDemo) -> str:
        median = p50(demo.extra.get("latencies_ms", []))
        return "-" if median is None else f"{median:.3f}"

    rows = {
        "fills": (in_process.fills, over_bus.fills),
        "final equity (USDT)": (
            in_process.live_summary.get("equity"),
            over_bus.live_summary.get("equity"),
        ),
        "replay identical to the live run": (in_process.identical, over_bus.identical),
        "event → order p50 (ms)": (median_ms(in_process), median_ms(over_bus)),
        "market events orders could not trade on": tuple(
            sum(overtaken(read_session(d.session))) for d in (in_process, over_bus)
        ),
    }
    return pd.DataFrame(rows, index=["in process", "over the bus"]).T


def same_fills(a: LiveDemo, b: LiveDemo) -> bool:
    """Did two sessions fill the same orders, sides, quantities, prices and fees (their
    times aside: two runs of a live stream never arrive at the same milliseconds)?"""
    return a.executions == b.executions


def plot_live(
    demo: LiveDemo, path: str | Path | None = None, *, bus: LiveDemo | None = None
) -> Axes:
    """The equity curves of :func:`paper_demo` on one axis (USDT over UTC time): the backtest,
    the live paper session (模拟盘) and its replay (回放), dashed so that the live curve shows
    through where they coincide; with ``bus``, the session over the bus too. Saved as a PNG
    if ``path`` is given."""
    from mqlab.backtest import plot_equity

    curves = {
        demo.backtest_label: demo.backtest,
        f"paper session in process, live stream: {demo.source}": demo.live,
    }
    if bus is not None:
        curves["paper session over the bus (free-running), same stream"] = bus.live
    curves["replay of the in-process session file"] = demo.replay
    same = "the replay retraces the live curve" if demo.identical else "the replay DIFFERS"
    where = "in process and over the bus" if bus is not None else "live paper session"
    ax = plot_equity(curves, title=f"Equity, SMA crossover: backtest, {where}, replay ({same})")
    ax.lines[0].set_alpha(0.6)
    if bus is not None:
        ax.lines[2].set_linestyle(":")
        ax.lines[2].set_linewidth(2.0)
    ax.lines[-1].set_linestyle("--")
    ax.lines[-1].set_linewidth(2.0)
    ax.legend(loc="best", fontsize="small")
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        cast("Figure", ax.figure).savefig(path, dpi=110, bbox_inches="tight")
    return ax
