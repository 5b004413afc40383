"""The venue of a bus paper session: the engine fed in the order things reached it, and the
replay (回放) of its session file.

Over the bus nobody waits for anybody, so whether an order reaches the venue before or after
a market event is a race. :class:`BusVenue` is the venue service's side of it without the
bus: it feeds each market event to one :class:`mqlab.engine.Engine` when it arrives, and
each order when *it* arrives (its arrival is its venue time, which :class:`ArrivalLatency`
hands the simulated venue), so an order fills against the live prices that come after it
reached the venue, never earlier ones (no look-ahead). The venue service
(:mod:`mqlab.live.bus`) writes every market event and order in the order it handled them;
:func:`replay_bus_session` makes the same calls on a fresh :class:`BusVenue` in the file's
order, so ``python -m mqlab backtest --replay FILE`` gives exactly the same fills and PnL. It
cannot re-run the strategy the way the in-process replay does: when a fill reaches the
strategy relative to the next market event is a race too, which the file does not (and need
not) fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mqlab.engine import Engine
from mqlab.events import Cancel, Event, Fill, MarketEvent, Order
from mqlab.live.common import make_portfolio, make_venue, session_summary
from mqlab.live.record import Session, read_session
from mqlab.portfolio import Portfolio
from mqlab.venue import Latency

__all__ = [
    "ArrivalLatency",
    "BusReplay",
    "BusVenue",
    "bus_summary",
    "overtaken",
    "replay_bus_session",
]


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


class BusVenue:
    """The simulated venue and the portfolio a session's settings describe, fed market events
    and orders one call at a time, in the order they arrived. The calls are synchronous: the
    venue service's handlers never interleave inside one."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.venue = make_venue(meta)
        self.latency = ArrivalLatency(self.venue.latency)
        self.venue.latency = self.latency
        self.engine = Engine(self.venue)
        self.portfolio = make_portfolio(meta)
        self.events = 0
        self.orders: list[Order | Cancel] = []
        self.fills: list[Fill] = []
        self.updates = 0

    def market(self, event: MarketEvent) -> list[Event]:
        """Feed one market event; the venue's answers it released (due or caused by it)."""
        self.events += 1
        out: list[Event] = []
        x: Any = self.engine.feed(event)
        while x is not event:
            out.append(x)
            x = self.engine.next()
        self.engine.next()  # closes the step (returns None)
        self._apply(out)
        self.portfolio.on_market(event)
        return out

    def order(self, request: Order | Cancel, arrival: int) -> None:
        """Hand the venue an order that reached it at ``arrival`` (ms, its venue time); its
        answers are due at that time, so they come with the next market event."""
        self.latency.arrive(request, arrival)
        self.orders.append(request)
        self.engine.submit([request])

    def finish(self) -> list[Event]:
        """The session is over: the answers still queued."""
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
                self.updates += 1

    def summary(self) -> dict[str, Any]:
        """What a replay must reproduce (as :func:`mqlab.live.common.session_summary`)."""
        return bus_summary(self.events, self.orders, self.fills, self.portfolio, self.venue)


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
    venue = BusVenue(session.meta)
    for kind, i in session.sequence:
        if kind == "order":
            arrival, request = session.orders[i]
            venue.order(request, arrival)
        else:
            venue.market(session.events[i])
    if session.summary is not None:  # the live run reached its end: so does the replay
        venue.finish()
    summary = venue.summary()
    differences = session.differences(summary)
    return BusReplay(session, summary, venue.fills, venue.portfolio, differences)


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
