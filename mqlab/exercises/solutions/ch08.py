"""Reference solutions for chapter 08 (checked by :mod:`mqlab.exercises.ch08`)."""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

__all__ = ["envelope_of", "publish"]


def envelope_of(message: AbstractIncomingMessage) -> dict[str, Any]:
    """aioamqp's envelope from an aio-pika message: two fields were renamed."""
    return {
        "consumer_tag": message.consumer_tag,
        "delivery_tag": message.delivery_tag,
        "exchange_name": message.exchange,
        "routing_key": message.routing_key,
        "is_redeliver": message.redelivered,
    }


async def publish(channel: AbstractChannel, queue_name: str, body: bytes) -> None:
    """A durable queue and a persistent message, confirmed by the broker."""
    await channel.declare_queue(queue_name, durable=True)
    message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    await channel.default_exchange.publish(message, routing_key=queue_name)
