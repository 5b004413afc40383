"""The CI harness itself: a persistent message round-trips through a real RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika


async def test_persistent_message_round_trip(rabbitmq_url: str) -> None:
    queue_name = f"smoke-{uuid.uuid4().hex}"
    connection = await aio_pika.connect_robust(rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(queue_name, durable=True)
        try:
            await channel.default_exchange.publish(
                aio_pika.Message(b"hello", delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key=queue_name,
            )
            message = await asyncio.wait_for(_get(queue), 10)
            assert message.body == b"hello"
            assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
            await message.ack()
        finally:
            await queue.delete(if_unused=False, if_empty=False)


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    while (message := await queue.get(no_ack=False, fail=False)) is None:
        await asyncio.sleep(0.05)
    return message
