"""Conformance: unacked messages come back, marked redelivered, when their consumer dies."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika import Message
from aio_pika.abc import AbstractIncomingMessage
from pamqp import commands

from .helpers import RawConnection, Scratch, collect, get_n, message_count

pytestmark = pytest.mark.timeout(60)

BODIES = [b"%02d" % i for i in range(8)]


def _summary(messages: list[AbstractIncomingMessage]) -> list[tuple[bytes, bool]]:
    return sorted((m.body, bool(m.redelivered)) for m in messages)


@pytest.mark.parametrize("death", ["channel closed", "connection closed"])
async def test_unacked_messages_return_when_the_consumer_goes(scratch: Scratch, death: str) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *BODIES)
    connection = await scratch.connect()
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=5)
    taken = await collect(await channel.get_queue(queue.name), 5)
    await taken[0].ack()
    await taken[1].nack(requeue=False)
    # 02-04 unacked on the dying consumer, 05-07 never delivered.
    await (channel.close() if death == "channel closed" else connection.close())
    survivors = await collect(queue, 6, no_ack=True)
    expected = [(b, True) for b in BODIES[2:5]] + [(b, False) for b in BODIES[5:]]
    assert _summary(survivors) == expected
    assert await message_count(scratch.channel, queue.name) == 0


async def test_unacked_messages_return_when_the_client_crashes(
    amqp_url: str, scratch: Scratch
) -> None:
    """No channel.close, no connection.close: the TCP connection just drops."""
    queue = await scratch.queue()
    await scratch.publish(queue.name, *BODIES[:3])
    raw = await RawConnection.open(amqp_url)
    raw.send(commands.Basic.Consume(queue=queue.name), channel=1)
    await raw.expect(commands.Basic.ConsumeOk, channel=1)
    deliveries = 0
    while deliveries < 3:  # deliver, header, body for each message
        _, frame = await raw.recv() or (0, None)
        deliveries += isinstance(frame, commands.Basic.Deliver)
    raw.abort()
    back = await get_n(queue, 3)
    assert [(m.body, m.redelivered) for m in back] == [(b, True) for b in BODIES[:3]]


async def test_requeued_messages_go_to_the_surviving_consumer(scratch: Scratch) -> None:
    queue = await scratch.queue()
    survivor: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    await queue.consume(survivor.put, no_ack=True)
    doomed = await scratch.connect()
    doomed_channel = await doomed.channel()
    held: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    await (await doomed_channel.get_queue(queue.name)).consume(held.put)
    await scratch.publish(queue.name, *BODIES[:4])
    # Round-robin: two each. The doomed consumer never acks its two.
    got = [await asyncio.wait_for(survivor.get(), 5) for _ in range(2)]
    doomed_got = [await asyncio.wait_for(held.get(), 5) for _ in range(2)]
    await doomed.close()
    got += [await asyncio.wait_for(survivor.get(), 5) for _ in range(2)]
    assert sorted(m.body for m in got) == BODIES[:4]
    redelivered = sorted(m.body for m in got if m.redelivered)
    assert redelivered == sorted(m.body for m in doomed_got)


async def test_redelivered_messages_keep_their_properties(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(
        queue.name, Message(b"p", headers={"k": "v"}, correlation_id="c-1", priority=3)
    )
    consumer_channel, [first] = await scratch.take_unacked(queue.name, 1)
    await consumer_channel.close()
    [again] = await get_n(queue, 1)
    assert (again.body, again.headers, again.correlation_id, again.priority) == (
        first.body,
        {"k": "v"},
        "c-1",
        3,
    )
    assert again.redelivered and not first.redelivered
