"""Simulated exchange service (撮合服务): orders in, order updates and fills out.

It wraps :class:`mqlab.exchange.SimulatedExchange` unchanged and runs, in :meth:`engine`,
the same loop as :class:`mqlab.backtest.Backtest`:

* before market event N, deliver the answers (order updates) due by its ``recv_ts``;
* ``on_market(N)``: deliver each fill and update it causes;
* publish the step marker for N (the portfolio marks to market; the strategy handles N);

where "deliver" means *call the strategy*: publish the answer with a call number, wait for
the strategy host's ``done`` for that call, then pass the orders it listed to ``on_order`` and
queue their answers by ``recv_ts``, exactly as the backtest's ``send()`` does. So the exchange
sees the same calls in the same order as in the backtest, whatever the broker's timing.

Requests from a strategy the service was not told about, and malformed messages, go to the
dead-letter queue with the reason; the service carries on.
"""

from __future__ import annotations

import argparse
import heapq
import json
from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mqlab.bus import Bus, Delivery, Reject
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
from mqlab.exchange import SimulatedExchange
from mqlab.services._runtime import EngineService, Journal, Outgoing, add_common_arguments
from mqlab.services.protocol import (
    CHECKED,
    EXCHANGE_STEP,
    EXECUTION,
    HEADER_CALL,
    HEADER_SENT,
    HEADER_SEQ,
    MARKET,
    ORDERS,
    control,
    header_int,
    parse_control,
)
from mqlab.services.risk import HEADER_RISK_REASON

__all__ = ["ExchangeService", "add_arguments", "explain_journal", "run"]

Answer = Fill | OrderUpdate


class ExchangeService(EngineService):
    """The matching engine on the bus; ``strategies`` are the strategy ids it serves."""

    name = "exchange"

    def __init__(
        self,
        bus: Bus,
        exchange: SimulatedExchange,
        journal: Journal | None = None,
        *,
        strategies: Sequence[str] = ("sma_cross",),
        orders_from: str = ORDERS,
    ) -> None:
        if not strategies:
            raise ValueError("the exchange service needs at least one strategy id")
        self.exchange = exchange
        self.orders_from = orders_from
        self.strategies = sorted(set(strategies))
        self.step = 0  # last step fully handled
        self.market: dict[int, dict[str, Any]] = {}  # step -> market event or end record
        self.pauses: dict[int, str] = {}  # "after step N" -> pause id
        self.requests: dict[str, Order | Cancel] = {}  # received, waiting for their done
        self.refused: dict[str, str] = {}  # order id -> reason, from a risk service
        self.done: dict[tuple[str, int], list[str]] = {}  # (strategy, call) -> request ids
        self.calls = dict.fromkeys(self.strategies, 0)  # last call number, per strategy
        self.heap: list[tuple[int, int, Answer]] = []  # answers due later, as in the backtest
        self.latencies_ns: list[int] = []
        #: Event → decision latency: from a step's publish to the strategy's ``done`` for it.
        self.decisions_ns: list[int] = []
        #: Ids of the requests passed to ``on_order``, in order (the fault tests compare them).
        self.submitted: list[str] = []
        self.counts = dict.fromkeys(("events", "orders", "cancels", "updates", "fills"), 0)
        self._answers = 0
        self.events_replayed = 0
        super().__init__(bus, journal)

    # --- inputs are stored as they arrive ------------------------------------------------------

    def store(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind in ("market", "end"):
            self.market[record["seq"]] = record
        elif kind == "pause":
            self.pauses[record["after"]] = record["id"]
        elif kind == "request":
            request = decode(record["body"])
            assert isinstance(request, Order | Cancel)
            self.requests[request.id] = request
            if record.get("risk_reason"):
                self.refused[request.id] = record["risk_reason"]
            self.counts["orders" if isinstance(request, Order) else "cancels"] += 1
            if record["sent_ns"]:
                self.latencies_ns.append(record["received_ns"] - record["sent_ns"])
        elif kind == "done":
            self.done[(record["strategy"], record["call"])] = record["orders"]
            if record.get("sent_ns"):
                self.decisions_ns.append(record["received_ns"] - record["sent_ns"])

    # --- ... and consumed in the backtest's order ----------------------------------------------

    def engine(self) -> Generator[None, None, None]:
        yield
        seq = 1
        while True:
            while (item := self.market.pop(seq, None)) is None:
                if (pause := self.pauses.pop(seq - 1, None)) is not None:
                    self.emit(
                        control(
                            EXECUTION,
                            EXCHANGE_STEP,
                            f"step.exchange.{pause}",
                            "pause",
                            after=seq - 1,
                            calls=dict(self.calls),
                        )
                    )
                    self.on_pause()
                yield
            if item["kind"] == "end":
                while self.heap:
                    yield from self._deliver(heapq.heappop(self.heap)[2])
                self.step = seq
                self.emit(
                    control(
                        EXECUTION,
                        EXCHANGE_STEP,
                        "step.exchange.end",
                        "end",
                        seq=seq,
                        after=seq - 1,
                        calls=dict(self.calls),
                    )
                )
                return
            event = decode(item["body"])
            assert isinstance(event, Kline | OrderBook | Trade)
            while self.heap and self.heap[0][0] <= event.recv_ts:
                yield from self._deliver(heapq.heappop(self.heap)[2])
            answers = self.exchange.on_market(event)
            self.counts["events"] += 1
            for answer in answers:
                yield from self._deliver(answer)
            calls = {s: self._next_call(s) for s in self.strategies}
            fills = [a.id for a in answers if isinstance(a, Fill)]
            self.emit(
                control(
                    EXECUTION,
                    EXCHANGE_STEP,
                    f"step.exchange.{seq}",
                    "step",
                    seq=seq,
                    key=item["key"],
                    sent_ns=item["sent_ns"],
                    calls=calls,
                    fills=fills,
                )
            )
            # Every strategy handles the event; their orders go in by strategy name.
            batches: list[list[Order | Cancel]] = []
            for strategy in self.strategies:
                batches.append((yield from self._wait_done(strategy, calls[strategy])))
            for batch in batches:
                self._submit(batch)
            self.step = seq
            seq += 1

    async def recover(self) -> int:
        replayed = await super().recover()
        self.events_replayed = self.counts["events"]  # for events/s of this run alone
        return replayed

    def _next_call(self, strategy: str) -> int:
        self.calls[strategy] += 1
        return self.calls[strategy]

    def _deliver(self, answer: Answer) -> Generator[None, None, None]:
        """The backtest's ``deliver``: the strategy handles the answer; its orders go in."""
        call = self._next_call(answer.strategy)
        kind = "fill" if isinstance(answer, Fill) else "order_update"
        self.counts["fills" if kind == "fill" else "updates"] += 1
        headers = {HEADER_CALL: call, HEADER_SEQ: self.step}
        self.emit(
            Outgoing(EXECUTION, routing_key(answer), encode(answer), answer.id, headers, kind)
        )
        self._submit((yield from self._wait_done(answer.strategy, call)))

    def _wait_done(self, strategy: str, call: int) -> Generator[None, None, list[Order | Cancel]]:
        while (ids := self.done.pop((strategy, call), None)) is None:
            yield
        requests: list[Order | Cancel] = []
        for request_id in ids:
            while (request := self.requests.pop(request_id, None)) is None:
                yield
            requests.append(request)
        return requests

    def _submit(self, requests: list[Order | Cancel]) -> None:
        """The backtest's ``send``: each request to ``on_order``, its answers queued by time."""
        for request in requests:
            self.submitted.append(request.id)
            reason = self.refused.pop(request.id, None)
            if reason is not None and isinstance(request, Order):
                answers: list[OrderUpdate] = [_refusal(request, reason, self.exchange)]
            else:
                answers = self.exchange.on_order(request)
            for answer in answers:
                self._answers += 1
                heapq.heappush(self.heap, (answer.recv_ts, self._answers, answer))

    # --- handlers: validate, turn into a record, commit ----------------------------------------

    async def on_market(self, delivery: Delivery) -> None:
        sent_ns = int(delivery.headers.get(HEADER_SENT) or 0)
        record: dict[str, Any] = {"id": delivery.message_id}
        if delivery.type == "pause":
            after = parse_control(delivery.body, after=int)["after"]
            await self.commit(record | {"kind": "pause", "after": after})
            return
        if delivery.type == "end":
            record["kind"] = "end"
        else:  # validate before anything else, so a bad message always reaches the DLQ
            event = decode(delivery.body)  # the body first: its error says most
            if not isinstance(event, Kline | OrderBook | Trade):
                raise Reject(f"not market data: a {type(event).__name__} on {MARKET}")
            record |= {"kind": "market", "key": delivery.routing_key}
            record |= {"body": delivery.body.decode(), "id": delivery.message_id or event.id}
        seq = header_int(delivery, HEADER_SEQ)
        record |= {"seq": seq, "sent_ns": sent_ns}
        if seq <= self.step:
            return  # handled before a restart: the broker is redelivering it
        other = self.market.get(seq)
        if other is not None and other["id"] != record["id"]:
            raise Reject(f"a second, different message for step {seq}: {record['id']}")
        await self.commit(record)

    async def on_orders(self, delivery: Delivery) -> None:
        if delivery.type == "done":
            done = parse_control(delivery.body, strategy=str, call=int, orders=list)
            self._check_strategy(done["strategy"])
            await self.commit(
                {
                    "id": delivery.message_id,
                    "kind": "done",
                    "strategy": done["strategy"],
                    "call": done["call"],
                    "orders": [str(i) for i in done["orders"]],
                    "received_ns": delivery.received_ns,
                    "sent_ns": int(delivery.headers.get(HEADER_SENT) or 0),
                }
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
        await self.commit(record)

    def _check_strategy(self, strategy: str) -> None:
        if strategy not in self.calls:
            raise Reject(
                f"unknown strategy {strategy!r}; this exchange serves "
                f"{', '.join(self.strategies)} (see --strategies)"
            )

    async def subscribe(self) -> None:
        await self.bus.subscribe(
            "exchange.orders", [(self.orders_from, "#")], self.on_orders, seen=self.applied
        )
        await self.bus.subscribe(
            "exchange.market", [(MARKET, "#")], self.on_market, seen=self.applied
        )

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


def explain_journal(
    records: Iterable[dict[str, Any]], exchange: SimulatedExchange, strategies: Sequence[str]
) -> list[dict[str, Any]]:
    """Replay an exchange service's journal, as a restart does, and say what each record did.

    Returns one row per journal line: ``record`` (what arrived: market, request, done... or
    ``confirmed``), ``id``, ``step`` and ``what`` the engine did with it, in words. The
    ``exchange`` must be configured like the one that wrote the journal.
    """
    service = ExchangeService(Bus(), exchange, strategies=strategies)
    rows: list[dict[str, Any]] = []
    for record in records:
        if "confirmed" in record:
            what = "the broker confirmed what that record published: now its input is acked"
            rows.append(
                {"record": "confirmed", "id": record["confirmed"], "step": "", "what": what}
            )
            continue
        submitted, events = len(service.submitted), service.counts["events"]
        outputs = service.apply(record)
        did = [f"on_order({', '.join(service.submitted[submitted:])})"]
        did = did if len(service.submitted) > submitted else []
        did += [f"matched bar {n}" for n in range(events + 1, service.counts["events"] + 1)]
        for out in outputs:
            body = json.loads(out.body)
            if out.type == "step":
                calls = ", ".join(str(k) for k in body["calls"].values())
                did.append(f"published step marker {body['seq']} (call {calls})")
            elif out.type in ("end", "pause"):
                did.append(f"published the {out.type} marker")
            else:
                did.append(
                    f"published {out.type} {out.message_id} (call {out.headers[HEADER_CALL]})"
                )
        kind, step = record.get("kind", "?"), record.get("seq", "")
        if not did:
            calls = " and ".join(f"done {k} of {sid}" for sid, k in service.calls.items())
            did = [
                f"filed it only: the engine waits for {calls}" if kind == "market" else "filed it"
            ]
        if kind == "done":
            orders = ", ".join(record["orders"]) or "no orders"
            did.insert(0, f"call {record['call']} done ({orders})")
        rows.append({"record": kind, "id": record.get("id"), "step": step, "what": "; ".join(did)})
    return rows


def _refusal(order: Order, reason: str, exchange: SimulatedExchange) -> OrderUpdate:
    """The REJECTED update for an order a risk service refused, timed like the exchange's own."""
    arrival = order.ts + exchange.latency.delay(order.id)
    return OrderUpdate(
        order.id, order.strategy, order.platform, order.symbol, OrderStatus.REJECTED, ZERO,
        ZERO, f"risk: {reason}", 1, arrival, arrival,
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.services.config import add_config_arguments

    add_common_arguments(parser)
    add_config_arguments(parser)
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
    from mqlab.services import load_config, serve
    from mqlab.services._runtime import journal_for

    config = load_config(args)
    if config is None:
        return 2

    def build(bus: Bus) -> ExchangeService:
        return ExchangeService(
            bus,
            config.make_exchange(),
            journal_for(args.state_dir, "exchange"),
            strategies=args.strategies or [config.strategy_id],
            orders_from=CHECKED if args.risk else ORDERS,
        )

    return serve(args, build)
