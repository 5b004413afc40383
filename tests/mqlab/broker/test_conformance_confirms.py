"""Conformance: publisher confirms and mandatory publishes answered by basic.return."""

from __future__ import annotations

import asyncio

import aio_pika
import aiormq
import pytest
from aio_pika import Message
from pamqp import commands
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from .helpers import RawConnection, Scratch, message_count

pytestmark = pytest.mark.timeout(60)


async def test_every_publish_is_acked(scratch: Scratch) -> None:
    queue = await scratch.queue()
    channel = await scratch.new_channel(publisher_confirms=True)
    confirmations = await asyncio.gather(
        *(channel.default_exchange.publish(Message(b"%d" % i), queue.name) for i in range(300))
    )
    assert all(isinstance(c, commands.Basic.Ack) for c in confirmations)
    assert await message_count(scratch.channel, queue.name) == 300


async def test_confirm_tags_cover_every_publish_in_order(amqp_url: str, scratch: Scratch) -> None:
    """On the wire: confirm.select-ok, then acks whose tags (multiple or not) cover 1..n."""
    queue = await scratch.queue()
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send(commands.Confirm.Select(), channel=1)
        await raw.expect(commands.Confirm.SelectOk, channel=1)
        for i in range(50):
            raw.publish(b"%d" % i, routing_key=queue.name)
        confirmed: set[int] = set()
        highest = 0
        while len(confirmed) < 50:
            ack = await raw.expect(commands.Basic.Ack, channel=1)
            assert ack.delivery_tag > highest, "confirm tags must increase"
            covered = (
                range(highest + 1, ack.delivery_tag + 1) if ack.multiple else [ack.delivery_tag]
            )
            confirmed.update(covered)
            highest = ack.delivery_tag
        assert confirmed == set(range(1, 51))
    finally:
        await raw.close()
    assert await message_count(scratch.channel, queue.name) == 50


async def test_unroutable_non_mandatory_is_dropped_but_acked(scratch: Scratch) -> None:
    exchange = await scratch.exchange(aio_pika.ExchangeType.DIRECT)
    channel = await scratch.new_channel(publisher_confirms=True, on_return_raises=True)
    target = await channel.get_exchange(exchange.name, ensure=False)
    confirmation = await target.publish(Message(b"void"), "nobody", mandatory=False)
    assert isinstance(confirmation, commands.Basic.Ack)


async def test_mandatory_unroutable_raises_with_312_no_route(scratch: Scratch) -> None:
    exchange = await scratch.exchange(aio_pika.ExchangeType.DIRECT)
    channel = await scratch.new_channel(publisher_confirms=True, on_return_raises=True)
    target = await channel.get_exchange(exchange.name, ensure=False)
    with pytest.raises(aiormq.exceptions.PublishError) as caught:
        await target.publish(Message(b"lost", message_id="m1"), "nobody", mandatory=True)
    returned = caught.value.frame
    assert isinstance(returned, commands.Basic.Return)
    assert (returned.reply_code, returned.reply_text) == (312, "NO_ROUTE")
    assert (returned.exchange, returned.routing_key) == (exchange.name, "nobody")
    assert caught.value.message.body == b"lost"
    assert not channel.is_closed  # a return is not an error


async def test_mandatory_routable_is_not_returned(scratch: Scratch) -> None:
    queue = await scratch.queue()
    channel = await scratch.new_channel(publisher_confirms=True, on_return_raises=True)
    confirmation = await channel.default_exchange.publish(
        Message(b"ok"), queue.name, mandatory=True
    )
    assert isinstance(confirmation, commands.Basic.Ack)
    assert await message_count(scratch.channel, queue.name) == 1


async def test_return_without_confirms(amqp_url: str, scratch: Scratch) -> None:
    """basic.return does not need confirm mode. (Raw frames: aiormq 7.2 only dispatches a
    return to aio-pika's return_callbacks on a confirming channel.)"""
    missing_key = scratch.qname()  # no queue of that name exists: the default exchange can't route
    raw = await RawConnection.open(amqp_url)
    try:
        properties = commands.Basic.Properties(headers={"h": "v"}, message_id="m1")
        raw.publish(b"back", routing_key=missing_key, mandatory=True, properties=properties)
        returned = await raw.expect(commands.Basic.Return, channel=1)
        assert (returned.reply_code, returned.reply_text) == (312, "NO_ROUTE")
        assert (returned.exchange, returned.routing_key) == ("", missing_key)
        header = await raw.expect(ContentHeader, channel=1)
        assert (header.properties.headers, header.properties.message_id) == ({"h": "v"}, "m1")
        body = await raw.expect(ContentBody, channel=1)
        assert body.value == b"back"
    finally:
        await raw.close()


async def test_return_comes_before_its_ack(amqp_url: str, scratch: Scratch) -> None:
    """For an unroutable mandatory publish the broker sends basic.return, then basic.ack."""
    missing_key = scratch.qname()
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send(commands.Confirm.Select(), channel=1)
        await raw.expect(commands.Confirm.SelectOk, channel=1)
        raw.publish(b"abc", routing_key=missing_key, mandatory=True)
        returned = await raw.expect(commands.Basic.Return, channel=1)
        assert (returned.reply_code, returned.routing_key) == (312, missing_key)
        header = await raw.expect(ContentHeader, channel=1)
        assert header.body_size == 3
        body = await raw.expect(ContentBody, channel=1)
        assert body.value == b"abc"
        ack = await raw.expect(commands.Basic.Ack, channel=1)
        assert ack.delivery_tag == 1
    finally:
        await raw.close()


async def test_publish_to_a_queue_that_rejects_nothing_is_acked_after_routing(
    scratch: Scratch,
) -> None:
    """An ack means routed: after it, a passive declare already counts the message."""
    exchange = await scratch.exchange(aio_pika.ExchangeType.FANOUT)
    queues = [await scratch.queue() for _ in range(3)]
    for queue in queues:
        await queue.bind(exchange)
    channel = await scratch.new_channel(publisher_confirms=True)
    target = await channel.get_exchange(exchange.name, ensure=False)
    await target.publish(Message(b"x"), "")
    for queue in queues:
        assert await message_count(scratch.channel, queue.name) == 1
