"""Publish/subscribe (发布订阅模式): a fanout exchange copies every message to every queue.

Each subscriber declares its own exclusive queue without a name and binds it to the exchange;
routing keys are ignored. Without a name the broker would call the queue ``amq.gen-…``; on a
robust channel (what ``mqlab.connect()`` gives) aio-pika picks ``amq_<uuid>`` itself, so that it
can declare the same queue again after a reconnect. A subscriber that joins late misses what
was published before it bound its queue: the exchange stores nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractQueue, ExchangeType

from mqlab.patterns._common import DeliveryLog, PatternRun, consume_into, unique
from mqlab.topology import TopologyRecorder

__all__ = ["demo", "subscribe"]


async def subscribe(rec: TopologyRecorder, exchange: AbstractExchange) -> AbstractQueue:
    """A private queue (exclusive, unnamed: see the module doc) bound to the fanout ``exchange``."""
    queue = await rec.queue(exclusive=True)
    await rec.bind(queue, exchange)
    return queue


async def demo(
    connection: AbstractConnection,
    subscribers: Sequence[str] = ("strategy-a", "strategy-b", "recorder"),
    events: Sequence[str] = ("kline BTCUSDT 1m", "kline ETHUSDT 1m"),
) -> PatternRun:
    """Every subscriber receives every event."""
    log = DeliveryLog()
    async with TopologyRecorder(connection) as rec:
        exchange = await rec.exchange(unique("ch09.market"), ExchangeType.FANOUT, auto_delete=True)
        rec.producer("market", exchange)
        for name in subscribers:
            queue = await subscribe(rec, exchange)
            rec.consumer(name, queue)
            await consume_into(queue, log, name)
        for event in events:
            await exchange.publish(aio_pika.Message(event.encode()), routing_key="")
        await log.wait_for(len(subscribers) * len(events))
    return PatternRun(log, rec.topology)
