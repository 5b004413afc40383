"""Strategy host (策略服务): runs any :class:`~mqlab.strategy.Strategy` on bus events.

The host calls the very same :meth:`Strategy.handle` the backtest calls and binds the
strategy's ``send`` to a publish on the ``orders`` exchange. Market events are handled by
routing-key pattern, as aioquant's strategies subscribe (``kline.binance.BTCUSDT.1m``, or
``kline.*.*.1m``, or ``#``); events the patterns do not match are skipped.

While the strategy is *quiet* (nothing of it at the exchange), the host handles market events
as they arrive and reports them in one batched ``done``; while it is *engaged*, it handles the
exchange's numbered calls in order and answers each at once (see
:mod:`mqlab.services.protocol`). It reads every market event, matched or not, because it must
see every step number to know that none is still on its way.
"""

from __future__ import annotations

import argparse
from collections.abc import Generator
from pathlib import Path
from typing import Any

from mqlab.bus import Bus, Delivery, Reject
from mqlab.events import (
    Cancel,
    Fill,
    Order,
    OrderUpdate,
    decode,
    encode,
    routing_key,
)
from mqlab.services._runtime import EngineService, Journal, Outgoing
from mqlab.services.options import KeyFilter, ServiceOptions
from mqlab.services.protocol import (
    EXCHANGE_END,
    EXECUTION,
    HEADER_CALL,
    HEADER_OPEN,
    HEADER_SENT,
    HEADER_SEQ,
    MARKET,
    ORDERS,
    batch_size,
    call_key,
    done_message,
    header_int,
    market_records,
    parse_control,
)

__all__ = ["StrategyHost", "add_arguments", "run"]


class StrategyHost(EngineService):
    """Feed the options' strategy the market events matching their patterns, and its own
    answers."""

    name = "strategy"

    def __init__(self, bus: Bus, options: ServiceOptions, journal: Journal | None = None) -> None:
        self.strategy = strategy = options.make_strategy()
        self.sid = strategy.name
        self.subscribed = KeyFilter(options.market_patterns)
        self.calls: dict[int, dict[str, Any]] = {}  # call number -> answer or step record
        self.market: dict[int, dict[str, Any]] = {}  # step -> market event record
        self.stop: dict[str, Any] | None = None  # the exchange's end or pause marker
        self.last = 0  # the last step before the market's end or pause
        #: ``lockstep``: always engaged (see ExchangeService); both must be told the same.
        self.lockstep = self.engaged = options.lockstep
        self.step = 0  # last step handled
        self.handled = 0  # events and answers handed to the strategy
        self.sent: list[Order | Cancel] = []
        self.counts = {"quiet_steps": 0, "calls": 0, "dones": 0}
        self._entries: list[list[Any]] = []  # done entries not yet published
        self._decided: list[int] = []
        self._through = 0  # quiet steps handled, reported or not
        self._reported = 0  # ... and reported
        self._outbox: list[Order | Cancel] = []
        strategy.bind(self._outbox.append)
        super().__init__(bus, journal)

    @property
    def queue(self) -> str:
        return f"strategy.{self.sid}"

    # --- inputs are stored as they arrive ------------------------------------------------------

    def store(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind == "market":
            self.market[record["seq"]] = record
        elif kind in ("answer", "step"):
            self.calls[record["call"]] = record
        elif kind in ("end", "pause"):
            self.stop = record
        elif kind == "last":
            self.last = record["seq"]
        # kind "flush": apply() publishes the batched done

    def pending(self) -> bool:
        return self._through > self._reported

    def apply(self, record: dict[str, Any]) -> list[Outgoing]:
        outputs = super().apply(record)
        if record["kind"] == "flush" and self.pending():
            outputs.append(self._done())
        return outputs

    # --- ... and handled in the backtest's order ------------------------------------------------

    def engine(self) -> Generator[None, None, None]:
        yield
        call = 1
        while True:
            if self.engaged:
                while (record := self.calls.pop(call, None)) is None:
                    if self._stopped(call):
                        return
                    yield
                self.counts["calls"] += 1
                if record["kind"] == "answer":
                    self._handle(self.event_of(record))
                    if record["open"] == 0 and not self.lockstep:
                        self.engaged = False
                    requests = self._send(record)
                    self._entries.append(["call", call, [r.id for r in requests]])
                else:  # a market step, as a call
                    seq = record["seq"]
                    yield from self._market_step(seq)
                    del self.market[seq]
                    requests = self._send(record)
                    self._entries.append(["call", call, [r.id for r in requests]])
                    if requests:
                        self._decided.append(seq)
                    self.step = seq
                self.emit(self._done())  # the exchange waits for every call's answer
                call += 1
            else:
                seq = self.step + 1
                while seq not in self.market:
                    if self._stopped(call):
                        return
                    if self.step == self.last and self.pending():
                        self.emit(self._done())  # nothing more comes before the end or pause
                    yield
                yield from self._market_step(seq)
                self.counts["quiet_steps"] += 1
                requests = self._send({"seq": seq, "sent_ns": self.market[seq]["sent_ns"]})
                self._through = self.step = seq
                window = self.market.pop(seq)["window"]
                if requests:  # orders go out at once, and the exchange must know now
                    self._entries.append(["step", seq, [r.id for r in requests]])
                    self._decided.append(seq)
                    self.emit(self._done())
                elif seq - self._reported >= batch_size(window) or seq == self.last:
                    self.emit(self._done())

    def _market_step(self, seq: int) -> Generator[None, None, None]:
        while (market := self.market.get(seq)) is None:
            yield
        if self.subscribed(market["key"]):
            self._handle(self.event_of(market))
        else:
            self.forget(market)

    def _stopped(self, call: int) -> bool:
        """The end or a pause was reached: every step and call before it is handled."""
        stop = self.stop
        if stop is None or self.step < stop["after"] or call <= stop["last_call"]:
            return False
        if self.pending():
            self.emit(self._done())
        self.stop = None
        if stop["kind"] == "end":
            return True
        self.on_pause()
        return False

    def _handle(self, event: Any) -> None:
        self.handled += 1
        self.strategy.handle(event)

    def _send(self, cause: dict[str, Any]) -> list[Order | Cancel]:
        """Publish the orders the last handle caused; they make the strategy engaged."""
        requests, self._outbox[:] = list(self._outbox), []
        if not requests:
            return requests
        self.engaged = True
        headers = {HEADER_SEQ: cause.get("seq", 0), HEADER_SENT: cause.get("sent_ns", 0)}
        for request in requests:
            kind = "order" if isinstance(request, Order) else "cancel"
            self.emit(
                Outgoing(ORDERS, routing_key(request), encode(request), request.id, headers, kind)
            )
        self.sent += requests
        return requests

    def _done(self) -> Outgoing:
        self.counts["dones"] += 1
        entries, self._entries = self._entries, []
        decided, self._decided = self._decided, []
        since, self._reported = self._reported + 1, max(self._reported, self._through)
        return done_message(self.sid, self.counts["dones"], since, self._through, entries, decided)

    # --- handlers ------------------------------------------------------------------------------

    async def on_market(self, delivery: Delivery) -> None:
        if delivery.type in ("end", "pause"):
            # The last step before it: report what is batched once it is handled.
            last = header_int(delivery, HEADER_SEQ) - (delivery.type == "end")
            await self.commit({"id": delivery.message_id, "kind": "last", "seq": last})
            return
        for record, event in market_records(delivery, self.step):
            self.remember(record["id"], event)
            await self.commit(record)

    async def on_execution(self, delivery: Delivery) -> None:
        if delivery.type in ("end", "pause"):
            data = parse_control(delivery.body, kind=str, after=int, calls=dict)
            mine = data["calls"].get(self.sid)
            if not isinstance(mine, int):
                raise Reject(f"{data['kind']} marker without a call number for {self.sid!r}")
            await self.commit(
                {"id": delivery.message_id, "kind": data["kind"], "after": data["after"],
                 "last_call": mine}
            )  # fmt: skip
            return
        if delivery.type == "step":
            data = parse_control(delivery.body, seq=int, call=int, sent_ns=int)
            record = {"id": delivery.message_id, "kind": "step", "call": data["call"]}
            await self.commit(record | {"seq": data["seq"], "sent_ns": data["sent_ns"]})
            return
        answer = decode(delivery.body)
        if not isinstance(answer, Fill | OrderUpdate) or answer.strategy != self.sid:
            raise Reject(f"not an answer for strategy {self.sid!r}: {type(answer).__name__}")
        record = {"id": delivery.message_id or answer.id, "kind": "answer"}
        record |= {"call": header_int(delivery, HEADER_CALL), "body": delivery.body.decode()}
        self.remember(record["id"], answer)
        await self.commit(record | {"open": header_int(delivery, HEADER_OPEN)})

    async def subscribe(self) -> None:
        bindings = [(EXECUTION, EXCHANGE_END), (EXECUTION, call_key(self.sid))]
        bindings += [
            (EXECUTION, f"fill.{self.sid}.#"),
            (EXECUTION, f"order_update.{self.sid}.#"),
        ]
        await self.bus.subscribe(
            f"{self.queue}.execution", bindings, self.on_execution, seen=self.applied,
            on_idle=self.on_idle,
        )  # fmt: skip
        # Every market event (see the module docstring); the patterns pick what is handled.
        await self.bus.subscribe(
            f"{self.queue}.market", [(MARKET, "#")], self.on_market, seen=self.applied,
            on_idle=self.on_idle,
        )  # fmt: skip

    def summary(self) -> str:
        orders = sum(isinstance(r, Order) for r in self.sent)
        c = self.counts
        return (
            f"{self.sid}: {self.handled} events and answers handled ({c['quiet_steps']} steps "
            f"without waiting, {c['calls']} calls), {orders} orders sent, {c['dones']} dones"
        )

    def stats(self) -> dict[str, Any]:
        orders = sum(isinstance(r, Order) for r in self.sent)
        return super().stats() | {
            "strategy": self.sid,
            "handled": self.handled,
            **self.counts,
            "orders": orders,
            "cancels": len(self.sent) - orders,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.services import add_service_arguments

    add_service_arguments(parser)
    parser.add_argument(
        "--subscribe",
        nargs="+",
        metavar="PATTERN",
        help="routing-key patterns, e.g. kline.binance.BTCUSDT.1m or 'kline.*.*.1m' "
        "(default: every key in the data)",
    )
    parser.add_argument("--out", type=Path, help="write strategy.json (counters) here")


def run(args: argparse.Namespace) -> int:
    from mqlab.services import run_service

    return run_service(args, "strategy", StrategyHost)
