"""Mandatory publishing and returns: learn that a message reached *no* queue.

An exchange drops a message that matches no binding, and a publisher confirm still says "ack":
the broker did take responsibility, for nothing. With ``mandatory=True`` the broker instead
sends the message back (``Basic.Return``, reply code 312 NO_ROUTE) before the ack. With
confirms on, aio-pika's ``publish`` then returns the returned message instead of the ack frame;
without confirms the return arrives later, on ``channel.return_callbacks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractIncomingMessage, ExchangeType
from pamqp.commands import Basic

from mqlab.patterns._common import (
    Delivery,
    DeliveryLog,
    PatternRun,
    consume_into,
    flush,
    mark_end,
    unique,
)
from mqlab.topology import TopologyRecorder

__all__ = ["PublishOutcome", "ReturnLog", "demo", "publish_mandatory"]


@dataclass(frozen=True)
class PublishOutcome:
    """Whether the broker routed the message, and if not, why (its reply text)."""

    routing_key: str
    routed: bool
    reply: str = ""


async def publish_mandatory(
    exchange: AbstractExchange, message: aio_pika.Message, routing_key: str
) -> PublishOutcome:
    """Publish with ``mandatory=True`` on a confirm channel; say whether it was routed."""
    result = await exchange.publish(message, routing_key=routing_key, mandatory=True)
    if isinstance(result, aiormq.abc.DeliveredMessage):  # a Basic.Return, not an ack
        frame = result.delivery
        assert isinstance(frame, Basic.Return)
        return PublishOutcome(routing_key, False, f"{frame.reply_code} {frame.reply_text}")
    return PublishOutcome(routing_key, True)


class ReturnLog:
    """Collects returned messages from ``channel.return_callbacks`` (for non-confirm channels)."""

    def __init__(self) -> None:
        self.returned: list[AbstractIncomingMessage] = []

    def __call__(self, channel: object, message: AbstractIncomingMessage) -> None:
        self.returned.append(message)


async def demo(
    connection: AbstractConnection,
    routing_keys: Sequence[str] = ("BTCUSDT", "ETHUSDT", "XRPUSDT"),
    bound: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
) -> PatternRun:
    """Orders for three symbols, a queue bound for two: mandatory publishing reports the third."""
    log = DeliveryLog()
    async with TopologyRecorder(connection) as rec:
        exchange = await rec.exchange(unique("ch09.orders"), ExchangeType.DIRECT, auto_delete=True)
        queue = await rec.queue(exclusive=True)
        for key in bound:
            await rec.bind(queue, exchange, key)
        await mark_end(queue, exchange, "order-router")
        rec.producer("strategy", exchange, routing_keys)
        rec.consumer("order-router", queue)
        await consume_into(queue, log, "order-router")
        for key in routing_keys:
            message = aio_pika.Message(f"order {key}".encode())
            outcome = await publish_mandatory(exchange, message, key)
            if not outcome.routed:  # the publisher itself receives the message back
                note = f"returned: {outcome.reply}"
                log.record(Delivery("publisher (strategy)", f"order {key}", key, note=note))
        dropped = aio_pika.Message(b"order XRPUSDT (mandatory=False)")
        ack = await exchange.publish(dropped, routing_key="XRPUSDT", mandatory=False)
        note = f"dropped, yet the broker confirmed it: {type(ack).__name__}"
        log.record(Delivery("(nobody)", "order XRPUSDT (mandatory=False)", note=note))
        await flush(exchange, log, ["order-router"])
    returned = sum(d.note.startswith("returned") for d in log)
    return PatternRun(log, rec.topology, {"published": len(routing_keys) + 1, "returned": returned})
