"""Conformance: queue declare (server-named, passive, exclusive, auto-delete), purge, delete."""

from __future__ import annotations

import uuid

import aio_pika
import aiormq
import pytest
from aio_pika import Message

from .helpers import Scratch, collect, get_n, ignore, message_count, wait_until

pytestmark = pytest.mark.timeout(60)


async def test_server_named_queues(scratch: Scratch) -> None:
    first = await scratch.channel.declare_queue(exclusive=True)
    second = await scratch.channel.declare_queue("", exclusive=True)
    assert first.name.startswith("amq.gen-"), first.name  # RabbitMQ's prefix for them
    assert second.name.startswith("amq.gen-") and second.name != first.name
    await scratch.publish(first.name, b"x")
    [message] = await get_n(first, 1)
    assert message.body == b"x"


async def test_declare_reports_message_and_consumer_counts(scratch: Scratch) -> None:
    queue = await scratch.queue()
    ok = queue.declaration_result
    assert (ok.message_count, ok.consumer_count) == (0, 0)
    await scratch.publish(queue.name, b"1", b"2", b"3")
    again = await scratch.channel.declare_queue(queue.name)
    assert again.declaration_result.message_count == 3
    other = await scratch.new_channel()
    tag = await (await other.get_queue(queue.name, ensure=False)).consume(ignore, no_ack=False)
    await wait_until(lambda: _counts(scratch, queue.name, (0, 1)))
    assert tag


async def _counts(s: Scratch, name: str, want: tuple[int, int]) -> bool:
    ok = (await s.channel.declare_queue(name, passive=True)).declaration_result
    return (ok.message_count, ok.consumer_count) == want


async def test_passive_declare(scratch: Scratch) -> None:
    queue = await scratch.queue(durable=True)
    await scratch.publish(queue.name, b"1")
    # Passive ignores the other flags: it only asks "does it exist, and how full is it?"
    found = await scratch.channel.declare_queue(queue.name, passive=True)
    assert found.declaration_result.message_count == 1
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await scratch.channel.declare_queue(scratch.qname(), passive=True)
    assert scratch.channel.is_closed


async def test_empty_name_means_the_last_queue_except_in_a_passive_declare(amqp_url: str) -> None:
    # RabbitMQ's expand_queue_name_shortcut serves bind, purge, get, consume and delete only
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity, match="previously declared"):
            await channel.queue_purge("")
        channel = await connection.channel()
        name = (await channel.queue_declare("", exclusive=True)).queue
        await channel.basic_publish(b"x", routing_key=name)
        assert (await channel.queue_purge("")).message_count == 1
        await channel.queue_bind("", "amq.direct", routing_key=name)
        await channel.basic_publish(b"y", exchange="amq.direct", routing_key=name)
        assert (await channel.basic_get("")).body == b"y"
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity, match="no queue ''"):
            await channel.queue_declare("", passive=True)
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "other",
    [
        {"durable": True},
        {"auto_delete": True},
        {"arguments": {"x-message-ttl": 1000}},
        {"arguments": {"x-max-length": 10}},
    ],
    ids=["durable", "auto_delete", "ttl", "max-length"],
)
async def test_redeclare_with_other_properties_is_406(scratch: Scratch, other: dict) -> None:
    name = scratch.qname()
    await scratch.channel.declare_queue(name)
    await scratch.channel.declare_queue(name)  # identical: fine
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await scratch.channel.declare_queue(name, **other)


async def test_reserved_amq_prefix_is_403(scratch: Scratch) -> None:
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await scratch.channel.declare_queue(f"amq.mqlab-{uuid.uuid4().hex}")


@pytest.mark.parametrize("operation", ["declare", "passive", "consume", "get", "purge", "delete"])
async def test_exclusive_queue_is_locked_to_other_connections_405(
    scratch: Scratch, operation: str
) -> None:
    queue = await scratch.queue(exclusive=True)
    other = await (await scratch.connect()).channel()
    underlay = await other.get_underlay_channel()
    calls = {
        "declare": lambda: other.declare_queue(queue.name, exclusive=True),
        "passive": lambda: other.declare_queue(queue.name, passive=True),
        "consume": lambda: underlay.basic_consume(queue.name, ignore),
        "get": lambda: underlay.basic_get(queue.name),
        "purge": lambda: underlay.queue_purge(queue.name),
        "delete": lambda: underlay.queue_delete(queue.name),
    }
    with pytest.raises(aiormq.exceptions.ChannelLockedResource):
        await calls[operation]()
    # The owner is unaffected.
    await scratch.publish(queue.name, b"mine")
    assert [m.body for m in await get_n(queue, 1)] == [b"mine"]


async def test_exclusive_queue_dies_with_its_connection(scratch: Scratch) -> None:
    owner = await scratch.connect()
    queue = await (await owner.channel()).declare_queue(scratch.qname(), exclusive=True)
    await owner.close()

    async def gone() -> bool:
        channel = await scratch.new_channel()
        try:
            await channel.declare_queue(queue.name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return True
        await channel.close()
        return False

    await wait_until(gone)


async def test_auto_delete_queue_goes_with_its_last_consumer(scratch: Scratch) -> None:
    queue = await scratch.queue(auto_delete=True)
    # Never consumed yet: it stays.
    assert await message_count(scratch.channel, queue.name) == 0
    first = await queue.consume(ignore, no_ack=True)
    second = await queue.consume(ignore, no_ack=True)
    await queue.cancel(first)
    assert await message_count(scratch.channel, queue.name) == 0  # one consumer left
    await queue.cancel(second)
    checker = await scratch.new_channel()

    async def gone() -> bool:
        nonlocal checker
        try:
            await checker.declare_queue(queue.name, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return True
        return False

    await wait_until(gone)


async def test_purge_returns_count_and_empties(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *[b"%d" % i for i in range(7)])
    ok = await queue.purge()
    assert ok.message_count == 7
    assert await message_count(scratch.channel, queue.name) == 0
    assert await queue.get(fail=False) is None


async def test_purge_keeps_unacked_messages(scratch: Scratch) -> None:
    """Purge removes ready messages only; an unacked one returns if its channel closes."""
    queue = await scratch.queue()
    await scratch.publish(queue.name, b"held", b"ready")
    consumer_channel = await scratch.new_channel()
    [held] = await get_n(await consumer_channel.get_queue(queue.name), 1, no_ack=False)
    assert held.body == b"held"
    assert (await queue.purge()).message_count == 1
    await consumer_channel.close()
    [back] = await get_n(queue, 1)
    assert (back.body, back.redelivered) == (b"held", True)


async def test_delete_returns_message_count(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, b"1", b"2")
    ok = await queue.delete(if_unused=False, if_empty=False)
    assert ok.message_count == 2
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await scratch.channel.declare_queue(queue.name, passive=True)


async def test_delete_if_empty_refuses_a_full_queue_406(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, b"1")
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await queue.delete(if_unused=False, if_empty=True)
    channel = await scratch.new_channel()
    assert await message_count(channel, queue.name) == 1
    await (await channel.get_queue(queue.name)).purge()
    await (await channel.get_underlay_channel()).queue_delete(queue.name, if_empty=True)
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await channel.declare_queue(queue.name, passive=True)


async def test_delete_if_unused_refuses_a_consumed_queue_406(scratch: Scratch) -> None:
    queue = await scratch.queue()
    consumer_channel = await scratch.new_channel()
    tag = await (await consumer_channel.get_queue(queue.name)).consume(ignore)
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await queue.delete(if_unused=True, if_empty=False)
    await (await consumer_channel.get_queue(queue.name)).cancel(tag)
    channel = await scratch.new_channel()
    await (await channel.get_underlay_channel()).queue_delete(queue.name, if_unused=True)


async def test_delete_missing_queue_is_ok(scratch: Scratch) -> None:
    """RabbitMQ makes queue.delete idempotent (delete-ok, count 0) rather than 404."""
    ok = await (await scratch.channel.get_underlay_channel()).queue_delete(scratch.qname())
    assert ok.message_count == 0
    assert not scratch.channel.is_closed


async def test_deleted_queue_cancels_its_consumers(scratch: Scratch) -> None:
    """consumer_cancel_notify: the broker sends basic.cancel when a consumed queue is deleted."""
    queue = await scratch.queue()
    consumer_channel = await scratch.new_channel()
    underlay = await consumer_channel.get_underlay_channel()
    ok = await underlay.basic_consume(queue.name, ignore)
    assert ok.consumer_tag in underlay.consumers
    await scratch.channel.queue_delete(queue.name)
    await wait_until(lambda: ok.consumer_tag not in underlay.consumers)
    assert not consumer_channel.is_closed


async def test_messages_come_out_in_fifo_order(scratch: Scratch) -> None:
    queue = await scratch.queue()
    bodies = [b"%03d" % i for i in range(50)]
    await scratch.publish(queue.name, *bodies)
    assert [m.body for m in await get_n(queue, 50)] == bodies
    await scratch.publish(queue.name, *bodies)
    assert [m.body for m in await collect(queue, 50, no_ack=True)] == bodies


async def test_queue_bind_arguments_round_trip_through_aio_pika_objects(scratch: Scratch) -> None:
    """queue.bind/unbind via aio-pika's own objects, as the chapters write them."""
    exchange = await scratch.exchange(aio_pika.ExchangeType.DIRECT)
    queue = await scratch.queue()
    await queue.bind(exchange, routing_key="tick")
    await exchange.publish(Message(b"t"), "tick")
    [message] = await get_n(queue, 1)
    assert (message.exchange, message.routing_key) == (exchange.name, "tick")
    await queue.unbind(exchange, routing_key="tick")
