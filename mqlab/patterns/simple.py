"""Simple queue (简单模式): one producer, one queue, one consumer, via the default exchange.

The default exchange (named ``""``) routes a message to the queue whose name equals the routing
key, so a producer needs to know only the queue name.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection

from mqlab.patterns._common import DeliveryLog, PatternRun, consume_into, unique
from mqlab.topology import DEFAULT_EXCHANGE, TopologyRecorder

__all__ = ["demo", "send"]


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
