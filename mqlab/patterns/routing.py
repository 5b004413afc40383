"""Routing (路由模式): a direct exchange delivers where binding key == routing key.

A queue may hold several bindings, and several queues may share one key (then each gets a
copy). A message whose key no queue is bound with is dropped, unless published as mandatory
(see :mod:`mqlab.patterns.mandatory`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractQueue, ExchangeType

from mqlab.patterns._common import DeliveryLog, PatternRun, consume_into, flush, mark_end, unique
from mqlab.topology import TopologyRecorder

__all__ = ["DEFAULT_INTERESTS", "bind_keys", "demo"]

#: Who wants which symbol: the binding keys of each consumer's queue.
DEFAULT_INTERESTS: Mapping[str, Sequence[str]] = {
    "btc-strategy": ["BTCUSDT"],
    "pairs-strategy": ["BTCUSDT", "ETHUSDT"],
    "recorder": ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
}


async def bind_keys(
    rec: TopologyRecorder, queue: AbstractQueue, exchange: AbstractExchange, keys: Iterable[str]
) -> None:
    """Bind ``queue`` to ``exchange`` once per key."""
    for key in keys:
        await rec.bind(queue, exchange, key)


async def demo(
    connection: AbstractConnection,
    interests: Mapping[str, Sequence[str]] = DEFAULT_INTERESTS,
    routing_keys: Sequence[str] = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"),
) -> PatternRun:
    """Publish one message per routing key; each consumer gets exactly the keys it bound."""
    log = DeliveryLog()
    async with TopologyRecorder(connection) as rec:
        exchange = await rec.exchange(unique("ch09.ticks"), ExchangeType.DIRECT, auto_delete=True)
        rec.producer("market", exchange, routing_keys)
        for name, keys in interests.items():
            queue = await rec.queue(exclusive=True)
            await bind_keys(rec, queue, exchange, keys)
            await mark_end(queue, exchange, name)
            rec.consumer(name, queue)
            await consume_into(queue, log, name)
        for key in routing_keys:
            message = aio_pika.Message(f"tick {key}".encode())
            await exchange.publish(message, routing_key=key, mandatory=False)
        await flush(exchange, log, interests)
    return PatternRun(log, rec.topology, {"published": len(routing_keys), "delivered": len(log)})
