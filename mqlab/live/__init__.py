"""Live market data (实盘行情) and paper trading (模拟盘), with record and replay (回放).

* :mod:`mqlab.live.binance`: Binance's public stream format, parsed sans-IO;
* :mod:`mqlab.live.source`: :class:`BinanceSource`, the websocket driver (reconnects, gaps);
* :mod:`mqlab.live.fakeserver`: a local server speaking the same format, for tests and chapters;
* :mod:`mqlab.live.record`: the session file a paper run writes and a replay reads;
* :mod:`mqlab.live.paper`: :class:`PaperSession`, the engine driven by a live source
  (``python -m mqlab paper``);
* :mod:`mqlab.live.bus`: the same session as services over the bus, free-running
  (``python -m mqlab paper --url URL``); :mod:`mqlab.live.bus_processes` runs each service in
  an OS process of its own (``--processes``); :mod:`mqlab.live.bus_cli` is their command line;
* :mod:`mqlab.live.bus_venue`: the venue service's engine calls in arrival order, and
  :func:`~mqlab.live.bus_venue.replay_bus_session`, their replay from its session file;
* :mod:`mqlab.live.common`: what the sessions share (venue, portfolio and strategy from a
  session's settings, its summary, when a run stops, its status line and report);
* :mod:`mqlab.live.replay`: :func:`replay_session` (``python -m mqlab backtest --replay``);
* :mod:`mqlab.live.demo`: :func:`paper_demo`, a short session on the local server, replayed;
* :mod:`mqlab.live.ccxt_source`: other venues through ccxt (optional ``live`` extra).
"""

from __future__ import annotations

from mqlab.live.binance import (
    BINANCE_STREAM_URL,
    Gap,
    LiveInputError,
    Malformed,
    ServerShutdown,
    StreamParser,
    Subscription,
    check_interval,
    check_symbol,
)
from mqlab.live.demo import LiveDemo, paper_demo, run_paper_demo
from mqlab.live.paper import PaperSession
from mqlab.live.record import Session, SessionError, SessionRecorder, read_session
from mqlab.live.replay import ReplayResult, replay_session
from mqlab.live.source import Backoff, BinanceSource, LiveSourceError, Reconnect

__all__ = [
    "BINANCE_STREAM_URL",
    "Backoff",
    "BinanceSource",
    "Gap",
    "LiveDemo",
    "LiveInputError",
    "LiveSourceError",
    "Malformed",
    "PaperSession",
    "Reconnect",
    "ReplayResult",
    "ServerShutdown",
    "Session",
    "SessionError",
    "SessionRecorder",
    "StreamParser",
    "Subscription",
    "check_interval",
    "check_symbol",
    "paper_demo",
    "read_session",
    "replay_session",
    "run_paper_demo",
]
