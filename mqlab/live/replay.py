"""Replay (回放) a recorded paper session offline, through the ordinary backtest.

:func:`replay_session` reads a session file (:mod:`mqlab.live.record`), builds the same
strategy and the same simulated venue from its settings, and runs
:class:`mqlab.backtest.Backtest` over the recorded market events with their recorded arrival
times. Both runs drive one :class:`mqlab.engine.Engine` with the same calls in the same order,
so the replay's fills and PnL must equal the live run's; :func:`replay_session` checks that,
and checks that the strategy sent the same orders that reached the venue at the same times.
Any difference is reported, never smoothed over: a strategy that reads the wall clock or a
random number generator would show up here.

CLI: ``python -m mqlab backtest --replay SESSION.jsonl [--json]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mqlab.backtest import Backtest, BacktestResult
from mqlab.live.common import (
    make_portfolio,
    make_strategy_from,
    make_venue,
    print_report,
    session_summary,
)
from mqlab.live.record import Session, SessionError, read_session
from mqlab.portfolio import Portfolio

__all__ = ["ReplayResult", "replay_session", "run_replay"]


@dataclass
class ReplayResult:
    """The backtest of a recorded session and how it compares with the live run."""

    session: Session
    result: BacktestResult
    summary: dict[str, Any]
    #: Human-readable differences from the live run (empty: identical).
    differences: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Same orders at the same venue times, and the same fills and PnL as recorded."""
        return not self.differences

    @property
    def portfolio(self) -> Portfolio:
        """The replay's portfolio (as :class:`mqlab.live.bus_venue.BusReplay` has one)."""
        return self.result.portfolio


def replay_session(session: str | Path | Session) -> ReplayResult:
    """Re-run a session file offline and compare it with what the live run recorded."""
    if not isinstance(session, Session):
        session = read_session(session)
    meta = session.meta
    try:
        strategy = make_strategy_from(meta)
        venue = make_venue(meta)
    except KeyError as exc:
        raise SessionError(f"{session.path}: the session line lacks {exc}") from None
    portfolio = make_portfolio(meta)
    result = Backtest(strategy, session.events, exchange=venue, portfolio=portfolio).run()
    summary = session_summary(result)
    differences: list[str] = []
    delay = venue.latency.delay
    replayed = [(o.ts + delay(o.id), o) for o in result.orders]
    if replayed != session.orders:
        for i, (got, want) in enumerate(zip(replayed, session.orders, strict=False)):
            if got != want:
                differences.append(
                    f"order {i + 1}: live sent {want[1].id} arriving at {want[0]}, the replay "
                    f"{got[1].id} arriving at {got[0]}"
                )
                break
        if len(replayed) != len(session.orders):
            differences.append(
                f"live sent {len(session.orders)} orders, the replay {len(replayed)}"
            )
    differences.extend(session.differences(summary))
    return ReplayResult(session, result, summary, differences)


def run_replay(path: Path, as_json: bool = False) -> int:
    """The ``backtest --replay`` command: replay, print the report, exit 1 on a difference."""
    from mqlab.live.bus_venue import replay_bus_session

    try:
        session = read_session(path)
        replay: ReplayResult | Any
        if session.meta.get("mode") == "bus":  # recorded by the venue service of a bus session
            replay = replay_bus_session(session)
            numbers = {k: v for k, v in replay.summary.items() if k != "fills_sha256"}
        else:
            replay = replay_session(session)
            numbers = replay.result.summary()
    except (SessionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = replay.session.meta
    report: dict[str, Any] = {
        "session": str(path),
        "recorded": f"{meta.get('symbol')} {meta.get('interval')} from {meta.get('endpoint')}"
        + (" over the bus" if meta.get("mode") == "bus" else ""),
        **numbers,
        "notices": len(replay.session.notices),
        "identical_to_live": replay.identical,
    }
    if replay.differences:
        report["differences"] = replay.differences
    print_report(report, as_json)
    return 0 if replay.identical else 1
