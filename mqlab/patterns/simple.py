"""Simple queue (简单模式): one producer, one queue, one consumer, via the default exchange.

The default exchange (named ``""``) routes a message to the queue whose name equals the routing
key, so a producer needs to know only the queue name.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from mqlab.patterns._common import DeliveryLog, PatternRun, consume_into, unique
from mqlab.topology import DEFAULT_EXCHANGE, TopologyRecorder

if TYPE_CHECKING:
    from mqlab.broker.frametrace import FrameRecord, FrameTrace

__all__ = ["demo", "send", "trace_hello"]


async def send(channel: AbstractChannel, queue_name: str, body: str | bytes) -> None:
    """Publish ``body`` to the queue called ``queue_name`` through the default exchange."""
    data = body.encode() if isinstance(body, str) else body
    await channel.default_exchange.publish(aio_pika.Message(data), routing_key=queue_name)


async def demo(connection: AbstractConnection, messages: int = 3) -> PatternRun:
    """``producer -> (default) -> hello -> consumer``; the consumer receives every message."""
    log = DeliveryLog()
    async with TopologyRecorder(connection) as rec:
        queue = await rec.queue(unique("ch09.hello"), auto_delete=True)
        rec.producer("producer", DEFAULT_EXCHANGE, queue.name)
        rec.consumer("consumer", queue)
        await consume_into(queue, log, "consumer")
        for i in range(messages):
            await send(rec.channel, queue.name, f"hello #{i}")
        await log.wait_for(messages)
    return PatternRun(log, rec.topology)


async def trace_hello(
    broker: Any, body: bytes = b"hello"
) -> tuple[FrameTrace, list[FrameRecord], dict[int, str]]:
    """Trace one confirmed publish and one acked delivery on an embedded broker.

    Returns the trace, its Basic/content frames (handshakes and declarations left out) and
    labels naming the two client connections. ``broker`` is an embedded ``BrokerThread``
    (``mqlab.connection.embedded_broker()``): RabbitMQ does not show us its frames.
    """
    from mqlab.broker.frametrace import FrameTrace

    trace = FrameTrace()
    publisher, consumer = await aio_pika.connect(broker.url), await aio_pika.connect(broker.url)
    async with publisher, consumer:
        out_channel, in_channel = await publisher.channel(), await consumer.channel()
        queue = await in_channel.declare_queue(unique("ch08.hello"), auto_delete=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await message.ack()

        await queue.consume(on_message)
        with trace.attach(broker):
            await out_channel.default_exchange.publish(aio_pika.Message(body), queue.name)
            for _ in range(500):  # until the consumer's ack has reached the broker
                if any(r.name == "Basic.Ack" and r.direction.startswith("client") for r in trace):
                    break
                await asyncio.sleep(0.01)
    frames = [r for r in trace.select(["Basic.", "Content"]) if r.name != "Basic.Cancel"]
    labels = {}
    for r in frames:
        if r.name == "Basic.Publish":
            labels[r.connection] = "publisher"
        elif r.name == "Basic.Deliver":
            labels[r.connection] = "consumer"
    frames = [r for r in frames if r.connection in labels]
    return trace, frames, labels
