"""The matching core (撮合核心): one definition of "what happens next", with no I/O at all.

:class:`Engine` is a state machine in the style of h11: the caller feeds it market events
(:meth:`~Engine.feed`), the strategies' requests (:meth:`~Engine.submit`) and the end of the
data (:meth:`~Engine.end`), and asks :meth:`~Engine.next` what must be delivered next. It owns
the simulated venue (:class:`mqlab.venue.SimulatedExchange`) and the queue of its answers,
and nothing else: no clock, no asyncio, no broker. Every driver is a few lines around it:

* :class:`mqlab.backtest.Backtest` calls the strategy directly;
* the exchange service (:mod:`mqlab.services.exchange`) publishes each delivery on the bus
  and feeds the strategy host's answer back in;
* the paper-trading mode feeds it live events as they arrive.

So the three produce the same fills by construction, not because tests catch drift.

The order of events, for each market event ``E`` fed:

1. the venue's answers due by ``E.recv_ts`` (order updates queued by time after an order's
   latency), oldest first; after each, the strategy's reaction is submitted before anything
   else happens;
2. ``venue.on_market(E)``: the fills and updates it causes, one by one, likewise;
3. ``E`` itself, to every strategy; their requests go in (in strategy-name order) before the
   next market event.

``feed()`` and ``next()`` return each of these as the event object itself (a
:class:`~mqlab.events.Fill`, an :class:`~mqlab.events.OrderUpdate`, or ``E``), and ``None``
when they need the next market event (or, after :meth:`end`, when everything is delivered).
Returning the objects, not wrappers, keeps the backtest's hot loop free of allocations.

:meth:`Engine.busy` is the *lookahead* the bus pipeline uses (see docs/architecture.md): a
strategy with no working orders and no answers queued cannot receive anything before the next
market event, so its host may handle market events without waiting for the exchange.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import chain

from mqlab.events import Cancel, Fill, MarketEvent, Order, OrderUpdate
from mqlab.venue import SimulatedExchange

__all__ = ["Answer", "Engine", "merge_sources", "unsorted"]

Answer = Fill | OrderUpdate

# Stages of the market event in hand. Those > 0 refuse a new event, so that feed() tells them
# from the others with one comparison (it runs once a market event).
_IDLE, _STEP, _DUE, _MATCHED, _ENDED = 0, -1, 1, 2, 3


class Engine:
    """The backtest's order of events around one simulated venue (sans-IO).

    Usage, by any driver::

        engine = Engine(venue)
        for event in events:
            x = engine.feed(event)
            while x is not None:
                requests = strategy_handles(x)   # a Fill, an OrderUpdate, or `event` itself
                engine.submit(requests)          # may be empty
                x = engine.next()
        engine.end()
        while (x := engine.next()) is not None:   # answers still queued at the end
            engine.submit(strategy_handles(x))
    """

    def __init__(self, venue: SimulatedExchange | None = None) -> None:
        self.venue = venue or SimulatedExchange()
        #: Answers due later: (recv_ts, tiebreak, answer), as the backtest always queued them.
        self.heap: list[tuple[int, int, Answer]] = []
        self.ended = False
        #: Market events fed, requests submitted, answers delivered (counters for reports).
        self.events = self.requests = self.delivered = 0
        self._event: MarketEvent | None = None
        self._stage = _IDLE
        self._matched: deque[Answer] = deque()
        self._pushed = 0

    # --- inputs -------------------------------------------------------------------------------

    def feed(self, event: MarketEvent) -> Answer | MarketEvent:
        """The next market event, in time order; returns the first delivery it causes (call
        :meth:`next` for the others). Feeding also closes the previous event's step."""
        if self._stage > 0:
            if self.ended:
                raise RuntimeError("feed() after end(): the data is over")
            raise RuntimeError("feed() before the previous event was delivered: call next()")
        self._event = event
        self.events += 1
        # The common case inline (no answer due, nothing matched): this is the backtest's
        # hot path, one call per market event.
        heap = self.heap
        if heap and heap[0][0] <= event.recv_ts:
            self._stage = _DUE
            self.delivered += 1
            return heapq.heappop(heap)[2]
        matched = self.venue.on_market(event)
        if matched:
            self._matched.extend(matched)
            self._stage = _MATCHED
            self.delivered += 1
            return self._matched.popleft()
        self._stage = _STEP
        return event

    def end(self) -> None:
        """No more market events: :meth:`next` now drains the answers still queued."""
        if self._stage == _DUE or self._stage == _MATCHED:
            raise RuntimeError("end() before the last event was delivered: call next()")
        self._stage, self._event = _ENDED, None
        self.ended = True

    def submit(self, requests: Iterable[Order | Cancel]) -> None:
        """A strategy's orders and cancels, caused by the delivery :meth:`next` just returned;
        their answers are queued by the time they reach the strategy."""
        heap, on_order = self.heap, self.venue.on_order
        for request in requests:
            self.requests += 1
            for answer in on_order(request):
                self._pushed += 1
                heapq.heappush(heap, (answer.recv_ts, self._pushed, answer))

    def queue(self, answer: Answer) -> None:
        """An answer the venue did not make (a risk service's refusal), queued by time like
        the venue's own; it counts as a request submitted."""
        self.requests += 1
        self._pushed += 1
        heapq.heappush(self.heap, (answer.recv_ts, self._pushed, answer))

    # --- output -------------------------------------------------------------------------------

    def next(self) -> Answer | MarketEvent | None:
        """What must be delivered now, or None: feed the next event (or, ended, all done)."""
        stage = self._stage
        if stage == _DUE:
            event = self._event
            assert event is not None
            heap = self.heap
            if heap and heap[0][0] <= event.recv_ts:
                self.delivered += 1
                return heapq.heappop(heap)[2]
            matched = self.venue.on_market(event)
            if not matched:
                self._stage = _STEP
                return event
            self._matched.extend(matched)
            stage = self._stage = _MATCHED
        if stage == _MATCHED:
            if self._matched:
                self.delivered += 1
                return self._matched.popleft()
            self._stage = _STEP
            return self._event
        if stage == _STEP:
            self._stage = _IDLE
            self._event = None
            return None
        if self.ended and self.heap:
            self.delivered += 1
            return heapq.heappop(self.heap)[2]
        return None

    # --- the lookahead ------------------------------------------------------------------------

    def busy(self, strategy: str) -> int:
        """How many things could still reach ``strategy`` before its next market event: its
        working orders plus its answers queued or being delivered. 0 means none can."""
        working = sum(o.strategy == strategy for o in self.venue.open_orders)
        queued = sum(a.strategy == strategy for _, _, a in self.heap)
        return working + queued + sum(a.strategy == strategy for a in self._matched)

    @property
    def event(self) -> MarketEvent | None:
        """The market event in hand (fed, not yet fully delivered)."""
        return self._event


def merge_sources(*sources: Iterable[MarketEvent]) -> Iterator[MarketEvent]:
    """Several time-ordered sources as one stream, by ``recv_ts`` (ties: source order).

    Lazy: the next event of a source is pulled only once its previous one was yielded, so the
    future does not exist yet while the strategy runs. ValueError names an unsorted source.
    """
    if len(sources) == 1:
        yield from _checked(sources[0], 0)
        return
    heap: list[tuple[int, int, MarketEvent, Iterator[MarketEvent]]] = []
    for i, source in enumerate(sources):
        it = _checked(source, i)
        first = next(it, None)
        if first is not None:
            heap.append((first.recv_ts, i, first, it))
    heapq.heapify(heap)
    while heap:
        _, i, event, it = heap[0]
        yield event
        following = next(it, None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following.recv_ts, i, following, it))


def _checked(source: Iterable[MarketEvent], i: int) -> Iterator[MarketEvent]:
    it = iter(source)
    first = next(it, None)
    if first is None:
        return
    t = first.recv_ts
    for event in chain((first,), it):
        ts = event.recv_ts
        if ts < t:
            raise unsorted(i, event, t)
        t = ts
        yield event


def unsorted(i: int, event: MarketEvent, t: int) -> ValueError:
    """The error for source ``i`` yielding ``event`` after an event at time ``t``."""
    return ValueError(
        f"source {i} is not in time order: {event.id} (recv_ts {event.recv_ts}) comes after "
        f"an event at {t}; sort it by time"
    )
