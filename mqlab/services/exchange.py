"""Simulated exchange service (撮合服务): orders in, order updates and fills out.

It is a driver of :class:`mqlab.engine.Engine`, the very object the backtest drives, so the
order of events is the backtest's by construction. For each market event it delivers what the
engine returns next; "deliver" means *call the strategy*: publish the answer with a call
number, wait for the strategy host's ``done`` for that call, and give the orders it listed
to the engine. The market event itself needs no call when the strategy is *quiet* (nothing
of it at the exchange): its host handled the event straight from the market queue and says
so in a batched ``done``; the exchange only waits for that before matching the next event.
When the strategy is *engaged*, the step is a call too (``call.<strategy>``). See
:mod:`mqlab.services.protocol` for the rule both sides share.

Requests from a strategy the service was not told about, and malformed messages, go to the
dead-letter queue with the reason; the service carries on.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mqlab.bus import Bus, Delivery, Reject
from mqlab.engine import Answer, Engine
from mqlab.events import (
    ZERO,
    Cancel,
    Fill,
    Kline,
    Order,
    OrderBook,
    OrderStatus,
    OrderUpdate,
    Trade,
    decode,
    encode,
    routing_key,
)
from mqlab.portfolio import mark_price
from mqlab.services._runtime import EngineService, Journal, Outgoing
from mqlab.services.options import ServiceOptions
from mqlab.services.protocol import (
    CHECKED,
    EXCHANGE_END,
    EXCHANGE_STEP,
    EXECUTION,
    HEADER_CALL,
    HEADER_OPEN,
    HEADER_SENT,
    HEADER_SEQ,
    MARKET,
    ORDERS,
    batch_size,
    call_key,
    control,
    header_int,
    market_records,
    parse_control,
    parse_done,
)
from mqlab.services.risk import HEADER_RISK_REASON
from mqlab.venue import SimulatedExchange

__all__ = [
    "ExchangeService",
    "Published",
    "ReplayedRecord",
    "add_arguments",
    "replay_journal",
    "run",
]


class ExchangeService(EngineService):
    """The run config's venue on the bus, serving the strategy ids the options name."""

    name = "exchange"

    def __init__(self, bus: Bus, options: ServiceOptions, journal: Journal | None = None) -> None:
        self.exchange = options.config.make_exchange()
        self.core = Engine(self.exchange)
        self.orders_from = options.orders_from
        lockstep = options.lockstep
        self.strategies = options.served
        self.step = 0  # last step fully handled
        self.market: dict[int, dict[str, Any]] = {}  # step -> market event or end record
        self.pauses: dict[int, str] = {}  # "after step N" -> pause id
        self.requests: dict[str, Order | Cancel] = {}  # received, waiting for their done
        self.refused: dict[str, str] = {}  # order id -> reason, from a risk service
        self.done: dict[tuple[str, int], list[str]] = {}  # (strategy, call) -> request ids
        #: Quiet steps a strategy reported handled (all steps up to this one), and the
        #: requests it sent at some of them: (strategy, step) -> request ids.
        self.through = dict.fromkeys(self.strategies, 0)
        self.step_orders: dict[tuple[str, int], list[str]] = {}
        self._covered: dict[str, dict[int, int]] = {s: {} for s in self.strategies}
        self.calls = dict.fromkeys(self.strategies, 0)  # last call number, per strategy
        #: The lookahead rule (see mqlab.services.protocol): engaged strategies get calls.
        #: ``lockstep``: always engaged, every step a call (the protocol before lookahead,
        #: kept to measure the difference; the strategy host must be told the same).
        self.lockstep = lockstep
        self.engaged = dict.fromkeys(self.strategies, lockstep)
        self.latencies_ns: list[int] = []
        #: Event → decision latency: from a step's publish to the strategy's ``done`` for it.
        self.decisions_ns: list[int] = []
        #: Ids of the requests passed to the engine, in order (the fault tests compare them).
        self.submitted: list[str] = []
        self.counts = dict.fromkeys(("events", "orders", "cancels", "updates", "fills"), 0)
        self.counts |= {"calls": 0, "markers": 0}
        self.events_replayed = 0
        self.marked = 0  # step of the last progress marker
        self._fills: list[list[Any]] = []  # [fill id, step] since the last marker
        #: [step, routing key, symbol, ts, price] of each step since the last marker: the
        #: prices the portfolio marks to, as a venue reports them (no market queue of its own)
        self._marks: list[list[Any]] = []
        self._sent_ns: dict[int, int] = {}  # step -> when the market published it
        super().__init__(bus, journal)

    # --- inputs are stored as they arrive ------------------------------------------------------

    def store(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind in ("market", "end"):
            self.market[record["seq"]] = record
            self._sent_ns[record["seq"]] = record["sent_ns"]
        elif kind == "pause":
            self.pauses[record["after"]] = record["id"]
        elif kind == "request":
            request = self.event_of(record)
            assert isinstance(request, Order | Cancel)
            self.requests[request.id] = request
            if record.get("risk_reason"):
                self.refused[request.id] = record["risk_reason"]
            self.counts["orders" if isinstance(request, Order) else "cancels"] += 1
            if record["sent_ns"]:
                self.latencies_ns.append(record["received_ns"] - record["sent_ns"])
        elif kind == "done":
            sid = record["strategy"]
            for entry_kind, number, ids in record["entries"]:
                if entry_kind == "call":
                    self.done[(sid, number)] = ids
                else:
                    self.step_orders[(sid, number)] = ids
            # Event → decision: from a step's publish to the exchange knowing what the strategy
            # did with it (a batched done answers many steps at once, a call one).
            # A done may overtake an earlier one (a publish retried after a reconnect): steps
            # count as decided only up to where every done so far covers them without a hole.
            before = self.through[sid]
            self._covered[sid][record["since"]] = record["through"]
            while (through := self._covered[sid].pop(self.through[sid] + 1, None)) is not None:
                self.through[sid] = max(self.through[sid], through)
            steps = [*range(before + 1, self.through[sid] + 1), *record.get("decided", ())]
            for step in dict.fromkeys(steps):
                sent = self._sent_ns.get(step)
                if sent:
                    self.decisions_ns.append(record["received_ns"] - sent)
        # kind "flush": nothing to store; apply() publishes the progress marker

    def pending(self) -> bool:
        return self.step > self.marked

    def apply(self, record: dict[str, Any]) -> list[Outgoing]:
        outputs = super().apply(record)
        if record["kind"] == "flush" and self.step > self.marked:
            outputs.append(self._marker())
        return outputs

    def _marker(self) -> Outgoing:
        """ "Matched steps ``since`` to N", with the fills delivered and the prices seen since
        the last marker (``since`` lets a consumer notice a marker still on its way)."""
        since, self.marked = self.marked + 1, self.step
        self.counts["markers"] += 1
        fills, self._fills = self._fills, []
        marks, self._marks = self._marks, []
        return control(
            EXECUTION, EXCHANGE_STEP, f"step.exchange.{self.step}", "step",
            seq=self.step, since=since, fills=fills, marks=marks,
        )  # fmt: skip

    # --- ... and consumed in the backtest's order ----------------------------------------------

    def engine(self) -> Generator[None, None, None]:
        yield
        core = self.core
        seq = 1
        while True:
            while (item := self.market.pop(seq, None)) is None:
                if (pause := self.pauses.pop(seq - 1, None)) is not None:
                    self.emit(self._stop_marker("pause", pause, seq - 1))
                    self.on_pause()
                yield
            if item["kind"] == "end":
                core.end()
                while (answer := core.next()) is not None:
                    yield from self._deliver(answer, seq)  # type: ignore[arg-type]
                self.step = seq
                self.emit(self._stop_marker("end", "end", seq - 1))
                return
            event = self.event_of(item)
            assert isinstance(event, Kline | OrderBook | Trade)
            x: Any = core.feed(event)
            while x is not event:
                yield from self._deliver(x, seq)  # type: ignore[arg-type]
                x = core.next()
            self.counts["events"] += 1
            self._marks.append(
                [seq, item["key"], event.symbol, event.ts, format(mark_price(event), "f")]
            )
            # The step: a call for each engaged strategy; a quiet one handled it already.
            calls = {}
            for sid in self.strategies:
                if self.engaged[sid]:
                    calls[sid] = call = self._next_call(sid)
                    self.emit(
                        control(
                            EXECUTION,
                            call_key(sid),
                            f"call.{sid}.{call}",
                            "step",
                            seq=seq,
                            call=call,
                            key=item["key"],
                            sent_ns=item["sent_ns"],
                        )
                    )
            batches: list[list[Order | Cancel]] = []
            for sid in self.strategies:
                if sid in calls:
                    batches.append((yield from self._wait_call(sid, calls[sid])))
                else:
                    batches.append((yield from self._wait_step(sid, seq)))
            for sid, batch in zip(self.strategies, batches, strict=True):
                self._submit(sid, batch)
            self._sent_ns.pop(seq, None)
            self.step = seq
            if seq - self.marked >= batch_size(item.get("window", 1)):
                self.emit(self._marker())
            seq += 1

    def _stop_marker(self, kind: str, marker_id: str, after: int) -> Outgoing:
        since, self.marked = self.marked + 1, max(self.marked, after)
        fills, self._fills = self._fills, []
        marks, self._marks = self._marks, []
        return control(
            EXECUTION, EXCHANGE_END, f"{EXCHANGE_END}.{marker_id}", kind, seq=after + 1,
            after=after, since=since, calls=dict(self.calls), fills=fills, marks=marks,
        )  # fmt: skip

    async def recover(self) -> int:
        replayed = await super().recover()
        self.events_replayed = self.counts["events"]  # for events/s of this run alone
        return replayed

    def _next_call(self, strategy: str) -> int:
        self.calls[strategy] += 1
        self.counts["calls"] += 1
        return self.calls[strategy]

    def _deliver(self, answer: Answer, seq: int) -> Generator[None, None, None]:
        """A call: the strategy handles the answer; its orders go in."""
        sid = answer.strategy
        call = self._next_call(sid)
        kind = "fill" if isinstance(answer, Fill) else "order_update"
        self.counts["fills" if kind == "fill" else "updates"] += 1
        if kind == "fill":
            self._fills.append([answer.id, seq])
        open_ = self.core.busy(sid)
        if not open_ and not self.lockstep:
            self.engaged[sid] = False
        headers = {HEADER_CALL: call, HEADER_SEQ: seq, HEADER_OPEN: open_}
        self.emit(
            Outgoing(EXECUTION, routing_key(answer), encode(answer), answer.id, headers, kind)
        )
        self._submit(sid, (yield from self._wait_call(sid, call)))

    def _wait_call(self, strategy: str, call: int) -> Generator[None, None, list[Order | Cancel]]:
        while (ids := self.done.pop((strategy, call), None)) is None:
            yield
        return (yield from self._requests(ids))

    def _wait_step(self, strategy: str, seq: int) -> Generator[None, None, list[Order | Cancel]]:
        while self.through[strategy] < seq:
            yield
        return (yield from self._requests(self.step_orders.pop((strategy, seq), [])))

    def _requests(self, ids: list[str]) -> Generator[None, None, list[Order | Cancel]]:
        requests: list[Order | Cancel] = []
        for request_id in ids:
            while (request := self.requests.pop(request_id, None)) is None:
                yield
            requests.append(request)
        return requests

    def _submit(self, strategy: str, requests: list[Order | Cancel]) -> None:
        """The strategy's requests to the engine (a risk service's refusals answered here)."""
        if not requests:
            return
        self.engaged[strategy] = True
        for request in requests:
            self.submitted.append(request.id)
            reason = self.refused.pop(request.id, None)
            if reason is not None and isinstance(request, Order):
                self.core.queue(_refusal(request, reason, self.exchange))
            else:
                self.core.submit((request,))

    # --- handlers: validate, turn into a record, commit ----------------------------------------

    async def on_market(self, delivery: Delivery) -> None:
        if delivery.type in ("pause", "end"):
            record: dict[str, Any] = {"id": delivery.message_id, "kind": delivery.type}
            if delivery.type == "pause":
                record["after"] = parse_control(delivery.body, after=int)["after"]
            else:
                sent_ns = int(delivery.headers.get(HEADER_SENT) or 0)
                record |= {"seq": header_int(delivery, HEADER_SEQ), "sent_ns": sent_ns}
            await self.commit(record)
            return
        for record, event in market_records(delivery, self.step):
            other = self.market.get(record["seq"])
            if other is not None and other["id"] != record["id"]:
                raise Reject(f"a second, different message for step {record['seq']}: "
                             f"{record['id']}")  # fmt: skip
            self.remember(record["id"], event)
            await self.commit(record)

    async def on_orders(self, delivery: Delivery) -> None:
        if delivery.type == "done":
            done = parse_done(delivery.body)
            self._check_strategy(done["strategy"])
            await self.commit(
                {"id": delivery.message_id, "kind": "done", "received_ns": delivery.received_ns}
                | done
            )
            return
        request = decode(delivery.body)
        if not isinstance(request, Order | Cancel):
            raise Reject(f"not an order or cancel: a {type(request).__name__} on {ORDERS}")
        self._check_strategy(request.strategy)
        record = {
            "id": delivery.message_id or request.id,
            "kind": "request",
            "body": delivery.body.decode(),
            "received_ns": delivery.received_ns,
            "sent_ns": int(delivery.headers.get(HEADER_SENT) or 0),
        }
        if delivery.type == "risk_reject":
            record["risk_reason"] = str(delivery.headers.get(HEADER_RISK_REASON) or "risk")
        self.remember(record["id"], request)
        await self.commit(record)

    def _check_strategy(self, strategy: str) -> None:
        if strategy not in self.calls:
            raise Reject(
                f"unknown strategy {strategy!r}; this exchange serves "
                f"{', '.join(self.strategies)} (see --strategies)"
            )

    async def subscribe(self) -> None:
        await self.bus.subscribe(
            "exchange.orders", [(self.orders_from, "#")], self.on_orders, seen=self.applied,
            on_idle=self.on_idle,
        )  # fmt: skip
        await self.bus.subscribe(
            "exchange.market", [(MARKET, "#")], self.on_market, seen=self.applied,
            on_idle=self.on_idle,
        )  # fmt: skip

    def summary(self) -> str:
        c = self.counts
        text = f"{c['events']} events matched, {c['orders']} orders, {c['fills']} fills"
        stats = self.stats()
        if stats["latency_ms_p50"] is not None:
            text += (
                f"; event→order latency p50 {stats['latency_ms_p50']:.2f} ms, "
                f"p99 {stats['latency_ms_p99']:.2f} ms"
            )
        return text

    def stats(self) -> dict[str, Any]:
        lat = np.array(self.latencies_ns, dtype=float) / 1e6
        p50, p99 = np.percentile(lat, [50, 99]).tolist() if lat.size else (None, None)
        return (
            super().stats()
            | self.counts
            | {
                "step": self.step,
                "latency_ms_p50": p50,
                "latency_ms_p99": p99,
            }
        )


@dataclass(frozen=True)
class Published:
    """One message a replayed journal record published."""

    #: ``step`` (a call for an engaged strategy, or a progress marker), ``end``, ``pause``,
    #: ``fill`` or ``order_update``.
    type: str
    message_id: str
    #: The market step it belongs to (for a progress marker: matched through this step).
    step: int | None
    #: The call number the strategy must answer; None for progress, end and pause markers.
    call: int | None


@dataclass(frozen=True)
class ReplayedRecord:
    """What one line of an exchange service's journal did when it was replayed."""

    #: The record's kind (``market``, ``request``, ``done``, ``pause``, ``end``, ``flush``),
    #: or ``confirmed``: the broker confirmed what record ``id`` published, so its input is acked.
    record: str
    id: str | None
    step: int | None = None
    #: Ids of the requests handed to the engine (its ``on_order``), in order.
    submitted: tuple[str, ...] = ()
    #: The bars matched, by step number.
    matched: tuple[int, ...] = ()
    published: tuple[Published, ...] = ()
    #: A ``done``: the quiet steps up to ``through`` are handled, and its entries
    #: ``(call|step, number, request ids)``.
    through: int | None = None
    entries: tuple[tuple[str, int, tuple[str, ...]], ...] = ()


def replay_journal(
    records: Iterable[dict[str, Any]], options: ServiceOptions
) -> list[ReplayedRecord]:
    """Replay an exchange service's journal, as a restart does; say what each record did.

    One :class:`ReplayedRecord` per journal line. The ``options`` must be those of the
    service that wrote the journal.
    """
    service = ExchangeService(Bus(), options)
    replayed: list[ReplayedRecord] = []
    for record in records:
        if "confirmed" in record:
            replayed.append(ReplayedRecord("confirmed", record["confirmed"]))
            continue
        submitted, events = len(service.submitted), service.counts["events"]
        published = tuple(_published(out) for out in service.apply(record))
        kind, seq = record.get("kind", "?"), record.get("seq")
        replayed.append(
            ReplayedRecord(
                kind,
                record.get("id"),
                seq if isinstance(seq, int) else None,
                tuple(service.submitted[submitted:]),
                tuple(range(events + 1, service.counts["events"] + 1)),
                published,
                record.get("through") if kind == "done" else None,
                tuple((what, n, tuple(ids)) for what, n, ids in record.get("entries", ())),
            )
        )
    return replayed


def _published(out: Outgoing) -> Published:
    if out.type in ("step", "end", "pause"):
        body = json.loads(out.body)
        call = body.get("call") if out.type == "step" else None
        return Published(out.type, out.message_id, body["seq"], call)
    seq, call = out.headers[HEADER_SEQ], out.headers[HEADER_CALL]
    return Published(out.type or "?", out.message_id, seq, call)


def _refusal(order: Order, reason: str, exchange: SimulatedExchange) -> OrderUpdate:
    """The REJECTED update for an order a risk service refused, timed like the exchange's own."""
    arrival = order.ts + exchange.latency.delay(order.id)
    return OrderUpdate(
        order.id, order.strategy, order.platform, order.symbol, OrderStatus.REJECTED, ZERO,
        ZERO, f"risk: {reason}", 1, arrival, arrival,
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.services import add_service_arguments

    add_service_arguments(parser)
    parser.add_argument(
        "--strategies", nargs="+", help="strategy ids to serve (default: the --strategy's id)"
    )
    parser.add_argument(
        "--risk",
        action="store_true",
        help=f"take orders from a risk service (the {CHECKED!r} exchange) instead of straight "
        f"from the strategy hosts ({ORDERS!r}); see python -m mqlab risk --help",
    )
    parser.add_argument("--out", type=Path, help="write exchange.json (counters) here")


def run(args: argparse.Namespace) -> int:
    from mqlab.services import run_service

    return run_service(args, "exchange", ExchangeService)
