"""Strategy host (策略服务): runs any :class:`~mqlab.strategy.Strategy` on bus events.

The host subscribes to market data by routing-key pattern, as aioquant's strategies do
(``kline.binance.BTCUSDT.1m``, or ``kline.*.*.1m``, or ``#``), and to the exchange's answers
for its strategy. It calls the very same :meth:`Strategy.handle` the backtest calls, binds the
strategy's ``send`` to a publish on the ``orders`` exchange, and answers each *call* of the
exchange service with ``done`` (see :mod:`mqlab.services.protocol`).

A step whose market event does not match the host's patterns is answered at once without a
``handle``: the strategy did not subscribe to it.
"""

from __future__ import annotations

import argparse
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mqlab.broker.routing import topic_match
from mqlab.bus import Bus, Delivery, Reject
from mqlab.events import (
    Cancel,
    Fill,
    Kline,
    Order,
    OrderBook,
    OrderUpdate,
    Trade,
    decode,
    encode,
    routing_key,
)
from mqlab.services._runtime import EngineService, Journal, Outgoing, add_common_arguments
from mqlab.services.protocol import (
    EXCHANGE_STEP,
    EXECUTION,
    HEADER_CALL,
    HEADER_SENT,
    HEADER_SEQ,
    MARKET,
    ORDERS,
    control,
    done_key,
    header_int,
    parse_control,
)
from mqlab.strategy import Strategy

__all__ = ["StrategyHost", "add_arguments", "run"]


class StrategyHost(EngineService):
    """Feed ``strategy`` the market events matching ``patterns`` and its own answers."""

    name = "strategy"

    def __init__(
        self,
        bus: Bus,
        strategy: Strategy,
        journal: Journal | None = None,
        *,
        patterns: Sequence[str] = ("#",),
    ) -> None:
        self.strategy = strategy
        self.sid = strategy.name
        self.patterns = list(patterns)
        self.calls: dict[int, dict[str, Any]] = {}  # call number -> answer or step record
        self.market: dict[int, dict[str, Any]] = {}  # step -> market event record
        self.last_call: int | None = None  # set by an end or pause marker
        self._stop_kind = ""
        self.handled = 0  # calls handled
        self.sent: list[Order | Cancel] = []
        self._outbox: list[Order | Cancel] = []
        strategy.bind(self._outbox.append)
        super().__init__(bus, journal)

    @property
    def queue(self) -> str:
        return f"strategy.{self.sid}"

    def subscribed(self, key: str) -> bool:
        return any(topic_match(pattern, key) for pattern in self.patterns)

    # --- inputs are stored as they arrive ------------------------------------------------------

    def store(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind == "market":
            self.market[record["seq"]] = record
        elif kind in ("answer", "step"):
            self.calls[record["call"]] = record
        else:  # end or pause: after the calls issued so far, there is nothing more (for now)
            self.last_call = record["last_call"]
            self._stop_kind = kind

    # --- ... and handled in call order ---------------------------------------------------------

    def engine(self) -> Generator[None, None, None]:
        yield
        call = 1
        while True:
            while (record := self.calls.pop(call, None)) is None:
                if self.last_call is not None and call > self.last_call:
                    self.last_call = None
                    if self._stop_kind == "end":
                        return
                    self.on_pause()
                yield
            sent_ns = 0
            if record["kind"] == "answer":
                self.strategy.handle(decode(record["body"]))
            elif self.subscribed(record["key"]):
                while (market := self.market.pop(record["seq"], None)) is None:
                    yield
                self.strategy.handle(decode(market["body"]))
                sent_ns = record["sent_ns"]
            self._done(call, record.get("seq", 0), sent_ns)
            call += 1

    def _done(self, call: int, seq: int, sent_ns: int) -> None:
        """Publish the orders this call caused, then ``done`` listing them."""
        requests, self._outbox[:] = list(self._outbox), []
        headers = {HEADER_CALL: call, HEADER_SEQ: seq, HEADER_SENT: sent_ns}
        for request in requests:
            kind = "order" if isinstance(request, Order) else "cancel"
            self.emit(
                Outgoing(ORDERS, routing_key(request), encode(request), request.id, headers, kind)
            )
        self.sent += requests
        self.handled += 1
        done = control(
            ORDERS, done_key(self.sid), f"done.{self.sid}.{call}", "done",
            strategy=self.sid, call=call, orders=[r.id for r in requests],
        )  # fmt: skip
        # The step's publish time rides along, so the exchange can time event → decision.
        self.emit(replace(done, headers={HEADER_SENT: sent_ns}) if sent_ns else done)

    # --- handlers ------------------------------------------------------------------------------

    async def on_market(self, delivery: Delivery) -> None:
        event = decode(delivery.body)  # the body first: its error says most about a bad message
        if not isinstance(event, Kline | OrderBook | Trade):
            raise Reject(f"not market data: a {type(event).__name__} on {MARKET}")
        seq = header_int(delivery, HEADER_SEQ)
        record = {"id": delivery.message_id or event.id, "kind": "market", "seq": seq}
        await self.commit(record | {"body": delivery.body.decode()})

    async def on_execution(self, delivery: Delivery) -> None:
        if delivery.type in ("step", "end", "pause"):
            data = parse_control(delivery.body, kind=str, calls=dict)
            mine = data["calls"].get(self.sid)
            if not isinstance(mine, int):
                raise Reject(f"step marker without a call number for {self.sid!r}")
            record: dict[str, Any] = {"id": delivery.message_id, "kind": data["kind"]}
            if data["kind"] == "step":
                parse_control(delivery.body, seq=int, key=str, sent_ns=int)
                record |= {"call": mine, "seq": data["seq"], "key": data["key"]}
                record["sent_ns"] = data["sent_ns"]
            else:
                record["last_call"] = mine
            await self.commit(record)
            return
        answer = decode(delivery.body)
        if not isinstance(answer, Fill | OrderUpdate) or answer.strategy != self.sid:
            raise Reject(f"not an answer for strategy {self.sid!r}: {type(answer).__name__}")
        record = {"id": delivery.message_id or answer.id, "kind": "answer"}
        record |= {"call": header_int(delivery, HEADER_CALL), "body": delivery.body.decode()}
        await self.commit(record)

    async def subscribe(self) -> None:
        bindings = [(EXECUTION, EXCHANGE_STEP)]
        bindings += [
            (EXECUTION, f"fill.{self.sid}.#"),
            (EXECUTION, f"order_update.{self.sid}.#"),
        ]
        await self.bus.subscribe(
            f"{self.queue}.execution", bindings, self.on_execution, seen=self.applied
        )
        await self.bus.subscribe(
            f"{self.queue}.market",
            [(MARKET, p) for p in self.patterns],
            self.on_market,
            seen=self.applied,
        )

    def summary(self) -> str:
        orders = sum(isinstance(r, Order) for r in self.sent)
        return f"{self.sid}: {self.handled} calls handled, {orders} orders sent"

    def stats(self) -> dict[str, Any]:
        orders = sum(isinstance(r, Order) for r in self.sent)
        return super().stats() | {
            "strategy": self.sid,
            "calls": self.handled,
            "orders": orders,
            "cancels": len(self.sent) - orders,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.services.config import add_config_arguments

    add_common_arguments(parser)
    add_config_arguments(parser)
    parser.add_argument(
        "--subscribe",
        nargs="+",
        metavar="PATTERN",
        help="routing-key patterns, e.g. kline.binance.BTCUSDT.1m or 'kline.*.*.1m' "
        "(default: every key in the data)",
    )
    parser.add_argument("--out", type=Path, help="write strategy.json (counters) here")


def run(args: argparse.Namespace) -> int:
    from mqlab.services import load_config, serve
    from mqlab.services._runtime import journal_for

    config = load_config(args)
    if config is None:
        return 2

    def build(bus: Bus) -> StrategyHost:
        return StrategyHost(
            bus,
            config.make_strategy(),
            journal_for(args.state_dir, "strategy"),
            patterns=args.subscribe or config.market_keys,
        )

    return serve(args, build)
