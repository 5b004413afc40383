"""Queue semantics: the Queue object alone (no sockets), then the queue arguments and
transactions beyond the conformance suite, on both brokers."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import aiormq
import pytest
from pamqp import commands, header

from mqlab.broker.errors import ChannelException
from mqlab.broker.queue import Consumer, Message, Queue, QueuedMessage, parse_arguments

from .helpers import Scratch, message_count


class Host:
    """The least a Queue needs from a broker: a clock, and places to report to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dead: list[tuple[str, bytes]] = []
        self.deleted: list[str] = []

    def persist(self, queue: Queue, qm: QueuedMessage) -> None: ...
    def forget(self, qm: QueuedMessage) -> None: ...

    def dead_letter(self, queue: Queue, qm: QueuedMessage, reason: str) -> None:
        self.dead.append((reason, qm.message.body))

    def auto_delete(self, queue: Queue) -> None:
        self.deleted.append(queue.name)


class Inbox:
    """A consumer's channel that just records what it is given."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    def can_deliver(self) -> bool:
        return True

    def deliver(self, consumer: Consumer, qm: QueuedMessage) -> None:
        consumer.unacked += 1
        self.got.append(qm.message.body)

    def cancel_from_broker(self, consumer: Consumer) -> None: ...


def _msg(body: bytes) -> Message:
    props = commands.Basic.Properties()
    return Message("", "q", props, header.ContentHeader(0, len(body), props).marshal(), body)


def test_round_robin_and_prefetch_without_sockets() -> None:
    host = Host()
    q = Queue(host, "work")
    a, b = Inbox(), Inbox()
    ca = Consumer("a", a, q, prefetch=2)
    cb = Consumer("b", b, q, prefetch=1)
    q.add_consumer(ca)
    q.add_consumer(cb)
    for i in range(6):
        q.put(_msg(b"m%d" % i))
    assert a.got == [b"m0", b"m2"] and b.got == [b"m1"]  # turns, then prefetch stops them
    assert [qm.message.body for qm in q.messages] == [b"m3", b"m4", b"m5"]
    ca.unacked -= 1  # an ack frees one slot in a's window
    q.dispatch()
    assert a.got[-1] == b"m3"
    host.loop.close()


def test_max_length_drops_from_the_head_and_reports_it() -> None:
    host = Host()
    q = Queue(host, "short", arguments={"x-max-length": 2})
    for i in range(4):
        q.put(_msg(b"%d" % i))
    assert [qm.message.body for qm in q.messages] == [b"2", b"3"]
    assert host.dead == [("maxlen", b"0"), ("maxlen", b"1")]
    host.loop.close()


def test_requeue_goes_to_the_head_in_order_and_marks_redelivered() -> None:
    host = Host()
    q = Queue(host, "q")
    for body in (b"a", b"b", b"c"):
        q.put(_msg(body))
    first, second = q.take(), q.take()
    assert first is not None and second is not None
    q.requeue([first, second])
    assert [(qm.message.body, qm.redelivered) for qm in q.messages] == [
        (b"a", True),
        (b"b", True),
        (b"c", False),
    ]
    host.loop.close()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"x-message-ttl": -1}, "value_negative"),
        ({"x-expires": 0}, "{value_zero,0}"),
        ({"x-max-length": "ten"}, "expected integer, got longstr"),
        ({"x-overflow": "explode"}, "invalid_overflow"),
        ({"x-dead-letter-routing-key": "k"}, "routing_key_but_no_dlx_defined"),
        ({"x-queue-type": "foo"}, "unsupported queue type 'foo'"),
        ({"x-queue-type": "stream"}, "stream queues are not supported"),
        ({"x-max-priority": 256}, "max_value_exceeded"),
        ({"x-max-priority": "5"}, "expected integer, got longstr"),
        ({"x-single-active-consumer": 1}, "{unacceptable_type,byte}"),
    ],
)
def test_bad_arguments_are_406(args: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ChannelException) as info:
        parse_arguments("q", args)
    assert info.value.code == 406 and fragment in info.value.text


async def test_x_expires_deletes_an_unused_queue(scratch: Scratch) -> None:
    name = scratch.qname()
    await scratch.channel.declare_queue(name, arguments={"x-expires": 300})
    await asyncio.sleep(0.8)
    channel = await scratch.new_channel()
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await channel.declare_queue(name, passive=True)


async def test_reject_publish_overflow_nacks_the_publisher(scratch: Scratch) -> None:
    name = scratch.qname()
    channel = await scratch.new_channel(publisher_confirms=True)
    args = {"x-max-length": 1, "x-overflow": "reject-publish"}
    await channel.declare_queue(name, arguments=args)
    await channel.default_exchange.publish(aio_pika.Message(b"kept"), name)
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await channel.default_exchange.publish(aio_pika.Message(b"refused"), name)
    assert await message_count(scratch.channel, name) == 1


async def test_max_length_bytes_drops_from_the_head(scratch: Scratch) -> None:
    name = scratch.qname()
    queue = await scratch.channel.declare_queue(name, arguments={"x-max-length-bytes": 10})
    for body in (b"aaaa", b"bbbb", b"cccc"):
        await scratch.channel.default_exchange.publish(aio_pika.Message(body), name)
    bodies = []
    while (m := await queue.get(fail=False, timeout=5)) is not None:
        bodies.append(m.body)
        await m.ack()
    assert bodies == [b"bbbb", b"cccc"]


async def test_rolled_back_ack_is_requeued_when_the_channel_closes(scratch: Scratch) -> None:
    name = scratch.qname()
    await scratch.channel.declare_queue(name)
    await scratch.channel.default_exchange.publish(aio_pika.Message(b"job"), name)
    channel = await scratch.new_channel(publisher_confirms=False)
    tx = channel.transaction()
    try:
        await tx.select()
    except aiormq.exceptions.ConnectionNotImplemented:
        pytest.fail("the embedded broker implements tx.select")
    queue = await channel.declare_queue(name, passive=True)
    message = await queue.get(timeout=5)
    await message.ack()
    await tx.rollback()  # the ack never happened
    assert await queue.get(fail=False) is None  # still unacked, not ready
    await channel.close()
    again = await (await scratch.new_channel()).declare_queue(name, passive=True)
    redelivered = await again.get(timeout=5)
    assert (redelivered.body, redelivered.redelivered) == (b"job", True)
    await redelivered.ack()
