"""Conformance: basic.* — consume, get, ack/nack/reject, recover, qos, round-robin, cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aio_pika
import aiormq
import pytest
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractIncomingMessage

from .helpers import Scratch, collect, get_n, ignore, message_count, wait_until

pytestmark = pytest.mark.timeout(60)

# Long enough for a broker to over-deliver if it were going to; short enough to stay cheap.
SETTLE = 0.3


def _bodies(n: int) -> list[bytes]:
    return [b"%03d" % i for i in range(n)]


async def test_properties_and_headers_round_trip(scratch: Scratch) -> None:
    headers = {
        "text": "BTC-USDT",
        "int": 42,
        "negative": -7,
        "big": 2**40,
        "float": 1.5,
        "flag": True,
        "list": [1, "a", False],
        "table": {"nested": "yes", "n": 1},
    }
    stamp = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    queue = await scratch.queue()
    sent = Message(
        b'{"price": "42000.5"}',
        headers=headers,
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=DeliveryMode.PERSISTENT,
        priority=5,
        correlation_id="corr-1",
        reply_to="amq.rabbitmq.reply-to-not-used",
        expiration=60,
        message_id="msg-1",
        timestamp=stamp,
        type="kline",
        user_id="guest",
        app_id="mqlab-tests",
    )
    await scratch.channel.default_exchange.publish(sent, queue.name)
    [got] = await collect(queue, 1, no_ack=True)
    assert got.body == sent.body
    assert got.headers == headers
    for name in (
        "content_type",
        "content_encoding",
        "delivery_mode",
        "priority",
        "correlation_id",
        "reply_to",
        "message_id",
        "timestamp",
        "type",
        "user_id",
        "app_id",
    ):
        assert getattr(got, name) == getattr(sent, name), name
    assert got.expiration == sent.expiration == 60


@pytest.mark.parametrize("size", [0, 1, 4096, 131_072 + 1, 1_000_000])
async def test_body_sizes_including_multi_frame(scratch: Scratch, size: int) -> None:
    """Bodies larger than frame_max (131072 on both brokers) travel as several body frames."""
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    queue = await scratch.queue()
    await scratch.publish(queue.name, body)
    [got] = await get_n(queue, 1)
    assert got.body == body
    await scratch.publish(queue.name, body)
    [consumed] = await collect(queue, 1, no_ack=True)
    assert consumed.body == body


async def test_get_and_get_empty(scratch: Scratch) -> None:
    queue = await scratch.queue()
    assert await queue.get(fail=False) is None
    with pytest.raises(aio_pika.exceptions.QueueEmpty):
        await queue.get()
    await scratch.publish(queue.name, b"a", b"b")
    first = await queue.get(no_ack=False)
    assert (first.body, first.redelivered, first.message_count) == (b"a", False, 1)
    assert (first.exchange, first.routing_key) == ("", queue.name)
    await first.ack()
    second = await queue.get(no_ack=True)
    assert (second.body, second.message_count) == (b"b", 0)
    assert await queue.get(fail=False) is None


async def test_deliver_fields_and_per_channel_delivery_tags(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *_bodies(4))
    channel_a, channel_b = await scratch.new_channel(), await scratch.new_channel()
    [a1, a2] = await get_n(await channel_a.get_queue(queue.name), 2, no_ack=False)
    [b1] = await get_n(await channel_b.get_queue(queue.name), 1, no_ack=False)
    assert (a1.delivery_tag, a2.delivery_tag, b1.delivery_tag) == (1, 2, 1)
    consumer_queue = await channel_b.get_queue(queue.name)
    inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    tag = await consumer_queue.consume(inbox.put, consumer_tag="mqlab-tag")
    assert tag == "mqlab-tag"
    message = await asyncio.wait_for(inbox.get(), 5)
    assert (message.body, message.delivery_tag) == (b"003", 2)
    assert (message.consumer_tag, message.exchange, message.routing_key) == (
        "mqlab-tag",
        "",
        queue.name,
    )
    assert message.redelivered is False


async def test_ack_and_ack_multiple(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *_bodies(5))
    channel, messages = await scratch.take_unacked(queue.name, 5)
    await messages[0].ack()
    await messages[2].ack(multiple=True)  # covers tags 2 and 3 as well
    await channel.close()  # only 004 and 005 are still unacked: they come back
    back = await get_n(queue, 2)
    assert [(m.body, m.redelivered) for m in back] == [(b"003", True), (b"004", True)]
    assert await message_count(scratch.channel, queue.name) == 0


@pytest.mark.parametrize("how", ["reject", "nack"])
async def test_requeue_marks_redelivered(scratch: Scratch, how: str) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, b"again")
    [message] = await get_n(queue, 1, no_ack=False)
    assert message.redelivered is False
    await getattr(message, how)(requeue=True)
    [back] = await get_n(queue, 1, no_ack=False)
    assert (back.body, back.redelivered) == (b"again", True)
    await back.ack()


@pytest.mark.parametrize("how", ["reject", "nack"])
async def test_no_requeue_drops(scratch: Scratch, how: str) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, b"gone", b"kept")
    [message] = await get_n(queue, 1, no_ack=False)
    await getattr(message, how)(requeue=False)
    [kept] = await get_n(queue, 1)
    assert kept.body == b"kept"
    assert await queue.get(fail=False) is None


@pytest.mark.parametrize("requeue", [True, False])
async def test_nack_multiple(scratch: Scratch, requeue: bool) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *_bodies(4))
    messages = await get_n(queue, 4, no_ack=False)
    await messages[2].nack(multiple=True, requeue=requeue)  # first three
    await messages[3].ack()
    if requeue:
        back = await get_n(queue, 3)
        assert [(m.body, m.redelivered) for m in back] == [(b, True) for b in _bodies(3)]
    assert await message_count(scratch.channel, queue.name) == 0


async def test_recover_requeues_unacked(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *_bodies(3))
    channel, messages = await scratch.take_unacked(queue.name, 3)
    await messages[1].ack()
    await (await channel.get_underlay_channel()).basic_recover(requeue=True)
    back = await get_n(queue, 2)
    assert [(m.body, m.redelivered) for m in back] == [(b"000", True), (b"002", True)]


async def test_consumers_on_one_queue_get_messages_round_robin(scratch: Scratch) -> None:
    queue = await scratch.queue()
    got: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for worker in got:
        channel = await scratch.new_channel()
        consumer_queue = await channel.get_queue(queue.name)

        async def on_message(message: AbstractIncomingMessage, worker: int = worker) -> None:
            got[worker].append(int(message.body))

        await consumer_queue.consume(on_message, no_ack=True)
    await scratch.publish(queue.name, *_bodies(12))
    await wait_until(lambda: sum(map(len, got.values())) == 12)
    assert sorted(got.values()) == [list(range(k, 12, 3)) for k in range(3)], got


async def test_prefetch_limits_unacked_deliveries(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *_bodies(10))
    channel = await scratch.new_channel()
    await channel.set_qos(prefetch_count=3)
    inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    await (await channel.get_queue(queue.name)).consume(inbox.put)

    async def in_flight(n: int) -> list[AbstractIncomingMessage]:
        """Wait for n deliveries, then check the broker keeps the rest ready."""
        messages = [await asyncio.wait_for(inbox.get(), 5) for _ in range(n)]
        await asyncio.sleep(SETTLE)
        assert inbox.empty(), "more deliveries than prefetch_count allows"
        return messages

    first = await in_flight(3)
    assert await message_count(scratch.channel, queue.name) == 7
    await first[0].ack()
    [fourth] = await in_flight(1)
    assert fourth.body == b"003"
    assert await message_count(scratch.channel, queue.name) == 6
    await fourth.ack(multiple=True)  # settles 001, 002 and 003: room for three more
    await in_flight(3)
    assert await message_count(scratch.channel, queue.name) == 3


async def test_prefetch_is_per_consumer(scratch: Scratch) -> None:
    """basic.qos(global=false), aio-pika's default: RabbitMQ applies the limit to each consumer
    on the channel (not to the channel as the 0-9-1 text says). The embedded broker must match."""
    queue = await scratch.queue()
    await scratch.publish(queue.name, *_bodies(10))
    channel = await scratch.new_channel()
    await channel.set_qos(prefetch_count=2)
    consumer_queue = await channel.get_queue(queue.name)
    await consumer_queue.consume(ignore)
    await consumer_queue.consume(ignore)
    await wait_until(lambda: _ready(scratch, queue.name, 6))
    await asyncio.sleep(SETTLE)
    assert await message_count(scratch.channel, queue.name) == 6


async def _ready(s: Scratch, name: str, n: int) -> bool:
    return await message_count(s.channel, name) == n


async def test_fair_dispatch_skips_a_busy_worker(scratch: Scratch) -> None:
    """The work-queue tutorial: prefetch 1, one worker stuck on a message, the other does all."""
    queue = await scratch.queue()
    stuck: list[bytes] = []
    done: list[bytes] = []
    busy = await scratch.new_channel()
    await busy.set_qos(prefetch_count=1)

    async def hold(message: AbstractIncomingMessage) -> None:
        stuck.append(message.body)  # never acked

    await (await busy.get_queue(queue.name)).consume(hold)
    free = await scratch.new_channel()
    await free.set_qos(prefetch_count=1)

    async def work(message: AbstractIncomingMessage) -> None:
        done.append(message.body)
        await message.ack()

    await (await free.get_queue(queue.name)).consume(work)
    await scratch.publish(queue.name, *_bodies(8))
    await wait_until(lambda: len(stuck) + len(done) == 8)
    assert len(stuck) == 1 and len(done) == 7
    assert sorted(stuck + done) == _bodies(8)


async def test_prefetch_zero_means_unlimited(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *_bodies(30))
    channel = await scratch.new_channel()
    await channel.set_qos(prefetch_count=0)
    messages = await collect(await channel.get_queue(queue.name), 30)
    assert [m.body for m in messages] == _bodies(30)


async def test_no_ack_consumer_removes_messages(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, *_bodies(5))
    channel = await scratch.new_channel()
    await collect(await channel.get_queue(queue.name), 5, no_ack=True)
    await channel.close()  # nothing was unacked, so nothing returns
    assert await message_count(scratch.channel, queue.name) == 0


async def test_cancel_stops_deliveries_but_keeps_unacked(scratch: Scratch) -> None:
    queue = await scratch.queue()
    channel = await scratch.new_channel()
    consumer_queue = await channel.get_queue(queue.name)
    inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    tag = await consumer_queue.consume(inbox.put)
    await scratch.publish(queue.name, b"before")
    before = await asyncio.wait_for(inbox.get(), 5)
    await consumer_queue.cancel(tag)
    await scratch.publish(queue.name, b"after")
    await asyncio.sleep(SETTLE)
    assert inbox.empty()
    assert await message_count(scratch.channel, queue.name) == 1
    await before.ack()  # still valid after the cancel: the delivery belongs to the channel
    [after] = await get_n(queue, 1)
    assert after.body == b"after"
    assert not channel.is_closed


async def test_exclusive_consumer_locks_out_others_403(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await queue.consume(ignore, exclusive=True)
    other = await scratch.new_channel()
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await (await other.get_queue(queue.name)).consume(ignore)


async def test_exclusive_consume_on_a_consumed_queue_403(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await queue.consume(ignore)
    other = await scratch.new_channel()
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await (await other.get_queue(queue.name)).consume(ignore, exclusive=True)


async def test_consume_from_missing_queue_404(scratch: Scratch) -> None:
    underlay = await scratch.channel.get_underlay_channel()
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await underlay.basic_consume(scratch.qname(), ignore)


async def test_get_from_missing_queue_404(scratch: Scratch) -> None:
    underlay = await scratch.channel.get_underlay_channel()
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await underlay.basic_get(scratch.qname())
