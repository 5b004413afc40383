"""Conformance: what clients met where the embedded broker differed from RabbitMQ 3.10.

Each case runs on both brokers. Names RabbitMQ accepts but pamqp refuses to *send*
(``orders!``, ``订单``, exchange names over 127 characters) go over a raw socket, with frames
built by :func:`mqlab.broker.frames.unchecked`; aio-pika cannot produce them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import aio_pika
import aiormq
import pytest
from aio_pika import ExchangeType, Message
from pamqp import commands

from mqlab.broker.frames import unchecked

from .helpers import (
    TIMEOUT,
    RawConnection,
    Scratch,
    collect,
    get_n,
    message_count,
    unique,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


def _padded(prefix: str, size: int, fill: str) -> str:
    """``prefix`` followed by ``fill`` up to ``size`` bytes of UTF-8 (never more)."""
    name = prefix
    while len((name + fill).encode()) <= size:
        name += fill
    return name


def _odd_names() -> list[tuple[str, str]]:
    base = unique("n")
    return [
        ("bang", base + "orders!"),
        ("chinese", base + "订单"),
        ("market", base + "市场"),
        ("star", base + "a*b"),
        ("parens", base + "q(1)"),
        ("200 bytes", _padded(base, 200, "x")),
        ("255 bytes utf-8", _padded(base, 255, "é")),
    ]


async def _raw_delete(url: str, queues: Sequence[str] = (), exchanges: Sequence[str] = ()) -> None:
    """Delete what a raw test declared (aio-pika would refuse these names)."""
    raw = await RawConnection.open(url)
    try:
        for name in queues:
            raw.send(unchecked(commands.Queue.Delete, queue=name), channel=1)
            await raw.expect(commands.Queue.DeleteOk, channel=1)
        for name in exchanges:
            raw.send(unchecked(commands.Exchange.Delete, exchange=name), channel=1)
            await raw.expect(commands.Exchange.DeleteOk, channel=1)
    finally:
        await raw.close()


async def _frames_until(raw: RawConnection, kind: type, channel: int = 1) -> list:
    """Frames up to and including the first ``kind`` (fails on a Close meanwhile)."""
    seen = []
    while True:
        got = await raw.recv()
        assert got is not None, f"connection closed before {kind.__name__}: {seen}"
        number, frame = got
        assert not isinstance(frame, commands.Connection.Close | commands.Channel.Close), (
            f"{frame.name}: {frame.reply_code} {frame.reply_text}"
        )
        seen.append(frame)
        if isinstance(frame, kind) and number == channel:
            return seen


# -- any legal name -------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "name"), _odd_names(), ids=[n for n, _ in _odd_names()])
async def test_any_legal_name_round_trips(amqp_url: str, label: str, name: str) -> None:
    """Declare a queue and an exchange with the name, route through them, consume no_ack."""
    assert len(name.encode()) <= 255
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send(unchecked(commands.Queue.Declare, queue=name), channel=1)
        ok = await raw.expect(commands.Queue.DeclareOk, channel=1)
        assert ok.queue == name
        raw.send(
            unchecked(commands.Exchange.Declare, exchange=name, exchange_type="fanout"), channel=1
        )
        await raw.expect(commands.Exchange.DeclareOk, channel=1)
        raw.send(
            unchecked(commands.Queue.Bind, queue=name, exchange=name, routing_key=name), channel=1
        )
        await raw.expect(commands.Queue.BindOk, channel=1)
        raw.publish(b"via " + name.encode(), exchange=name, routing_key=name)
        # no_ack: the broker forgets the message as it sends it; the reply must be buildable.
        raw.send(
            unchecked(commands.Basic.Consume, queue=name, consumer_tag=name, no_ack=True), channel=1
        )
        frames = await _frames_until(raw, commands.Basic.Deliver)
        deliver = frames[-1]
        assert (deliver.exchange, deliver.routing_key, deliver.consumer_tag) == (name, name, name)
        body = (await raw.recv())[1], (await raw.recv())[1]
        assert body[1].value == b"via " + name.encode()
        raw.send(unchecked(commands.Basic.Cancel, consumer_tag=name), channel=1)
        await _frames_until(raw, commands.Basic.CancelOk)
        # basic.get carries the names too.
        raw.publish(b"again", exchange=name, routing_key=name)
        await asyncio.sleep(0.1)
        raw.send(unchecked(commands.Basic.Get, queue=name, no_ack=True), channel=1)
        get_ok = (await _frames_until(raw, commands.Basic.GetOk))[-1]
        assert (get_ok.exchange, get_ok.routing_key) == (name, name)
    finally:
        await raw.close()
        await _raw_delete(amqp_url, [name], [name])


async def test_unencodable_reply_never_loses_a_no_ack_message(monkeypatch) -> None:
    """Embedded only (a reply RabbitMQ can always encode): if building the delivery fails, the
    consumer's connection gets 541 but the message stays in the queue."""
    from mqlab.broker import Broker, server

    real = server.Connection.send_content

    def broken(self, channel, method, message):  # type: ignore[no-untyped-def]
        if isinstance(method, commands.Basic.Deliver):
            raise TypeError("string exceeds maximum length of 255 bytes")
        return real(self, channel, method, message)

    async with Broker(host="127.0.0.1", port=0) as broker:
        raw = await RawConnection.open(broker.url)
        raw.send(commands.Queue.Declare(queue="q"), channel=1)
        await raw.expect(commands.Queue.DeclareOk)
        raw.publish(b"precious", routing_key="q")
        await wait_until(lambda: broker.topology().queue("q").messages == 1)
        monkeypatch.setattr(server.Connection, "send_content", broken)
        raw.send(commands.Basic.Consume(queue="q", no_ack=True), channel=1)
        close = await raw.connection_close()
        assert close.reply_code == 541
        await raw.close()
        monkeypatch.setattr(server.Connection, "send_content", real)
        assert broker.topology().queue("q").messages == 1


# -- idempotent unbind ----------------------------------------------------------------------


async def test_unbind_after_the_auto_delete_exchange_went_with_the_queue(scratch: Scratch) -> None:
    """aio-pika's RPC close(): the queue is gone, its auto-delete exchange with it; unbind is ok."""
    exchange = await scratch.exchange(ExchangeType.DIRECT, auto_delete=True)
    queue = await scratch.queue()
    await queue.bind(exchange, "k")
    await queue.delete()
    checker = await scratch.new_channel()
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await checker.declare_exchange(exchange.name, passive=True)
    await queue.unbind(exchange.name, "k")  # Unbind-Ok, the channel stays open
    await scratch.channel.declare_queue(exclusive=True)


@pytest.mark.parametrize("order", ["unbind then delete", "delete then unbind"])
async def test_teardown_in_either_order(scratch: Scratch, order: str) -> None:
    exchange = await scratch.exchange(ExchangeType.TOPIC)
    queue = await scratch.queue()
    await queue.bind(exchange, "a.#")
    if order == "unbind then delete":
        await queue.unbind(exchange, "a.#")
        await queue.delete()
        await exchange.delete()
    else:
        await queue.delete()
        await exchange.delete()
        await queue.unbind(exchange, "a.#")
    await scratch.channel.declare_queue(exclusive=True)  # the channel is still open


@pytest.mark.parametrize(
    "case", ["no queue", "no exchange", "neither", "no such binding", "exchange to exchange"]
)
async def test_unbind_of_missing_entities_is_ok(amqp_url: str, scratch: Scratch, case: str) -> None:
    queue, exchange = unique("gone-q"), unique("gone-x")
    if case == "no exchange" or case == "no such binding":
        queue = (await scratch.queue()).name
    if case == "no queue" or case == "no such binding":
        exchange = (await scratch.exchange()).name
    raw = await RawConnection.open(amqp_url)
    try:
        if case == "exchange to exchange":
            raw.send(
                commands.Exchange.Unbind(
                    destination=exchange, source=unique("x2"), routing_key="k"
                ),
                channel=1,
            )
            await raw.expect(commands.Exchange.UnbindOk, channel=1)
        else:
            raw.send(
                commands.Queue.Unbind(queue=queue, exchange=exchange, routing_key="k"),
                channel=1,
            )
            await raw.expect(commands.Queue.UnbindOk, channel=1)
    finally:
        await raw.close()


# -- requeue keeps the original order -------------------------------------------------------

REQUEUE_MODES = [
    "nack one by one",
    "nack last first",
    "reject one by one",
    "nack multiple",
    "channel close",
    "basic.recover",
]


@pytest.mark.parametrize("mode", REQUEUE_MODES)
async def test_requeued_messages_return_to_their_places(scratch: Scratch, mode: str) -> None:
    """Four of five taken unacked and given back: the queue reads 0..4 again, the four
    redelivered (RabbitMQ 3.10: "requeued messages go back to their original position")."""
    queue = await scratch.queue()
    publisher = await scratch.new_channel(publisher_confirms=True)
    for i in range(5):
        await publisher.default_exchange.publish(Message(b"%d" % i), queue.name)
    channel = await scratch.new_channel()
    taken = await get_n(await channel.get_queue(queue.name), 4, no_ack=False)
    assert [m.body for m in taken] == [b"0", b"1", b"2", b"3"]
    if mode == "nack one by one":
        for m in taken:
            await m.nack(requeue=True)
    elif mode == "nack last first":
        for m in reversed(taken):
            await m.nack(requeue=True)
    elif mode == "reject one by one":
        for m in taken:
            await m.reject(requeue=True)
    elif mode == "nack multiple":
        await taken[-1].nack(multiple=True, requeue=True)
    elif mode == "channel close":
        await channel.close()
    else:
        await (await channel.get_underlay_channel()).basic_recover(requeue=True)

    async def all_back() -> bool:
        return await message_count(scratch.channel, queue.name) == 5

    await wait_until(all_back)
    again = await get_n(queue, 5)
    assert [(m.body, m.redelivered) for m in again] == [
        (b"0", True),
        (b"1", True),
        (b"2", True),
        (b"3", True),
        (b"4", False),
    ]


# -- Connection.Close names the method ------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "code", "class_method"),
    [
        (
            [
                commands.Basic.Consume(queue="", consumer_tag="t"),
                commands.Basic.Consume(queue="", consumer_tag="t"),
            ],
            530,
            (60, 20),
        ),
        ([commands.Exchange.Declare(exchange=unique("x"), exchange_type="nope")], 503, (40, 10)),
        ([commands.Basic.Qos(prefetch_size=10)], 540, (60, 10)),
        ([commands.Channel.Open()], 504, (20, 10)),
    ],
    ids=["consumer tag reused", "unknown exchange type", "prefetch_size", "second channel.open"],
)
async def test_connection_close_names_the_failing_method(
    amqp_url: str, frames: list, code: int, class_method: tuple[int, int]
) -> None:
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send(commands.Queue.Declare(queue="", exclusive=True), channel=1)
        await raw.expect(commands.Queue.DeclareOk, channel=1)
        for frame in frames:
            raw.send(frame, channel=1)
        close = await raw.connection_close()
        assert close.reply_code == code, close.reply_text
        assert (close.class_id, close.method_id) == class_method, close.reply_text
    finally:
        await raw.close()


async def test_unknown_exchange_type_wording(amqp_url: str) -> None:
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send(commands.Exchange.Declare(exchange=unique("x"), exchange_type="nope"), channel=1)
        close = await raw.connection_close()
        assert close.reply_text == "COMMAND_INVALID - unknown exchange type 'nope'"
    finally:
        await raw.close()


# -- queue types ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["classic", "quorum"])
async def test_queue_type_is_accepted_and_kept(scratch: Scratch, kind: str) -> None:
    name = scratch.qname()
    args = {"x-queue-type": kind}
    queue = await scratch.channel.declare_queue(name, durable=True, arguments=args)
    await scratch.channel.default_exchange.publish(Message(b"m"), name)
    await wait_until(lambda: _ready(scratch, name, 1))
    [message] = await get_n(queue, 1)
    assert message.body == b"m"
    again = await scratch.channel.declare_queue(name, durable=True, arguments=args)
    assert again.name == name
    channel = await scratch.new_channel()
    if kind == "quorum":
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as info:
            await channel.declare_queue(name, durable=True)
        assert "inequivalent arg 'x-queue-type'" in str(
            info.value
        ) and "received none but current is the value 'quorum' of type 'longstr'" in str(info.value)
    else:  # an explicit classic equals no type at all
        await channel.declare_queue(name, durable=True)


async def _ready(s: Scratch, name: str, n: int) -> bool:
    return await message_count(s.channel, name) == n


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "invalid property 'non-durable'"),
        ({"durable": True, "exclusive": True}, "invalid property 'exclusive-owner'"),
        ({"durable": True, "auto_delete": True}, "invalid property 'auto-delete'"),
    ],
    ids=["non-durable", "exclusive", "auto-delete"],
)
async def test_quorum_queue_refuses_what_it_cannot_be(
    scratch: Scratch, kwargs: dict, words: str
) -> None:
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match=words):
        await scratch.channel.declare_queue(
            scratch.qname(), arguments={"x-queue-type": "quorum"}, **kwargs
        )


async def test_embedded_topology_reports_the_queue_type() -> None:
    """Embedded only: RabbitMQ shows the type in its management UI / rabbitmqctl."""
    from mqlab.broker import BrokerThread

    with BrokerThread(port=0) as broker:
        async with Scratch(broker.url) as s:
            await s.channel.declare_queue("qq", durable=True, arguments={"x-queue-type": "quorum"})
            await s.channel.declare_queue("cq")
        topology = broker.topology()
        assert topology.queue("qq").type == "quorum"
        assert topology.queue("cq").type == "classic"


# -- priority queues --------------------------------------------------------------------------


async def test_priority_queue_serves_higher_priorities_first(scratch: Scratch) -> None:
    queue = await scratch.queue(arguments={"x-max-priority": 5})
    publisher = await scratch.new_channel(publisher_confirms=True)
    sent = [(b"a", 1), (b"b", 5), (b"c", 1), (b"d", 9), (b"e", 0), (b"f", 5), (b"g", None)]
    for body, priority in sent:
        await publisher.default_exchange.publish(Message(body, priority=priority), queue.name)
    got = await get_n(queue, len(sent))
    # 9 is capped at the maximum 5; None is priority 0; equal priorities keep their order.
    assert [m.body for m in got] == [b"b", b"d", b"f", b"a", b"c", b"e", b"g"]


async def test_priority_queue_requeue_keeps_places(scratch: Scratch) -> None:
    queue = await scratch.queue(arguments={"x-max-priority": 3})
    publisher = await scratch.new_channel(publisher_confirms=True)
    for body, priority in [(b"low1", 1), (b"high", 3), (b"low2", 1)]:
        await publisher.default_exchange.publish(Message(body, priority=priority), queue.name)
    channel = await scratch.new_channel()
    taken = await get_n(await channel.get_queue(queue.name), 2, no_ack=False)
    assert [m.body for m in taken] == [b"high", b"low1"]
    for m in taken:
        await m.nack(requeue=True)
    await wait_until(lambda: _ready(scratch, queue.name, 3))
    assert [m.body for m in await get_n(queue, 3)] == [b"high", b"low1", b"low2"]


@pytest.mark.parametrize(
    ("value", "words"),
    [(256, "{max_value_exceeded,256}"), (-1, "{value_negative,-1}"), ("5", "got longstr")],
)
async def test_bad_max_priority_is_406(scratch: Scratch, value: object, words: str) -> None:
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as info:
        await scratch.channel.declare_queue(scratch.qname(), arguments={"x-max-priority": value})
    assert words in str(info.value)


# RabbitMQ 3.10's words (rabbit_amqqueue:declare_args/0 checks them in this order, so of two
# bad arguments the first in that order is named).
BAD_QUEUE_ARGUMENTS = [
    ({"x-expires": 0}, "x-expires", "{value_zero,0}"),
    ({"x-expires": -5}, "x-expires", "{value_negative,-5}"),
    ({"x-expires": "x"}, "x-expires", '"expected integer, got longstr"'),
    ({"x-expires": 315_360_000_001}, "x-expires", "{value_too_large,315360000001}"),
    ({"x-message-ttl": 315_360_000_001}, "x-message-ttl", "{value_too_large,315360000001}"),
    ({"x-message-ttl": 1.5}, "x-message-ttl", '"expected integer, got float"'),
    ({"x-message-ttl": True}, "x-message-ttl", '"expected integer, got bool"'),
    ({"x-message-ttl": None}, "x-message-ttl", '"expected integer, got void"'),
    ({"x-message-ttl": [1]}, "x-message-ttl", '"expected integer, got array"'),
    ({"x-max-length": "ten"}, "x-max-length", '"expected integer, got longstr"'),
    ({"x-max-length-bytes": -1}, "x-max-length-bytes", "{value_negative,-1}"),
    (
        {"x-dead-letter-routing-key": "k"},
        "x-dead-letter-routing-key",
        "routing_key_but_no_dlx_defined",
    ),
    (
        {"x-dead-letter-exchange": "d", "x-dead-letter-routing-key": 5},
        "x-dead-letter-routing-key",
        "{unacceptable_type,byte}",
    ),
    ({"x-overflow": "bogus"}, "x-overflow", "invalid_overflow"),
    ({"x-overflow": 5}, "x-overflow", "{unacceptable_type,byte}"),
    (
        {"x-single-active-consumer": "yes"},
        "x-single-active-consumer",
        "{unacceptable_type,longstr}",
    ),
    ({"x-queue-type": 5}, "x-queue-type", "{unacceptable_type,byte}"),
    ({"x-message-ttl": -1, "x-expires": 0}, "x-expires", "{value_zero,0}"),
    ({"x-max-length": -1, "x-message-ttl": -1}, "x-message-ttl", "{value_negative,-1}"),
    ({"x-overflow": "zz", "x-max-priority": 300}, "x-max-priority", "{max_value_exceeded,300}"),
]


@pytest.mark.parametrize(("arguments", "key", "why"), BAD_QUEUE_ARGUMENTS)
async def test_bad_queue_arguments_are_refused_in_rabbitmqs_words(
    scratch: Scratch, arguments: dict, key: str, why: str
) -> None:
    name = scratch.qname()
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as info:
        await scratch.channel.declare_queue(name, arguments=arguments)
    assert str(info.value) == (
        f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{name}' in vhost '/': {why}"
    )


@pytest.mark.parametrize(
    ("expiration", "why"),
    [
        ("abc", "no_integer"),
        (" 5", "no_integer"),
        ("٣", "no_integer"),  # a digit to Python's isdigit, not to Erlang
        ("1.5", '{leftover_string,".5"}'),
        ("5x5", '{leftover_string,"x5"}'),
        ("-1", "{value_negative,-1}"),
        ("315360000001", "{value_too_large,315360000001}"),  # over ten years
        ("+5", None),
        ("315360000000", None),
    ],
)
async def test_expiration_is_read_as_rabbitmq_reads_it(
    amqp_url: str, expiration: str, why: str | None
) -> None:
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = (await channel.queue_declare("", exclusive=True)).queue
        properties = aiormq.spec.Basic.Properties(expiration=expiration)
        if why is None:
            await channel.basic_publish(b"x", routing_key=queue, properties=properties)
            return
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as info:
            await channel.basic_publish(b"x", routing_key=queue, properties=properties)
        assert str(info.value) == (
            f"PRECONDITION_FAILED - invalid expiration '{expiration}': {why}"
        )
    finally:
        await connection.close()


async def test_a_dead_letter_exchange_must_be_a_name(scratch: Scratch) -> None:
    name = scratch.qname()
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as info:
        await scratch.channel.declare_queue(name, arguments={"x-dead-letter-exchange": 5})
    assert str(info.value) == (
        "PRECONDITION_FAILED - invalid type 'byte' for arg 'x-dead-letter-exchange' in queue "
        f"'{name}' in vhost '/'"
    )


# -- alternate exchanges ----------------------------------------------------------------------


async def test_unroutable_messages_go_to_the_alternate_exchange(scratch: Scratch) -> None:
    alternate = await scratch.exchange(ExchangeType.FANOUT)
    main = await scratch.exchange(
        ExchangeType.DIRECT, arguments={"alternate-exchange": alternate.name}
    )
    routed, unrouted = await scratch.queue(), await scratch.queue()
    await routed.bind(main, "known")
    await unrouted.bind(alternate)
    publisher = await scratch.new_channel(publisher_confirms=True, on_return_raises=True)
    target = await publisher.get_exchange(main.name, ensure=False)
    # mandatory=True: the alternate exchange took it, so nothing is returned.
    await target.publish(Message(b"lost?"), "unknown", mandatory=True)
    await target.publish(Message(b"normal"), "known", mandatory=True)
    assert [m.body for m in await get_n(unrouted, 1)] == [b"lost?"]
    assert [m.body for m in await get_n(routed, 1)] == [b"normal"]
    assert await message_count(scratch.channel, unrouted.name) == 0
    channel = await scratch.new_channel()
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="alternate-exchange"):
        await channel.declare_exchange(main.name, ExchangeType.DIRECT)


# -- single active consumer -------------------------------------------------------------------


async def test_single_active_consumer(scratch: Scratch) -> None:
    queue = await scratch.queue(arguments={"x-single-active-consumer": True})
    inboxes: list[asyncio.Queue[aio_pika.abc.AbstractIncomingMessage]] = []
    tags = []
    for _ in range(2):
        channel = await scratch.new_channel()
        inbox: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
        inboxes.append(inbox)
        tags.append(
            (
                channel,
                await (await channel.get_queue(queue.name)).consume(inbox.put, no_ack=True),
            )
        )
    publisher = await scratch.new_channel(publisher_confirms=True)
    for i in range(6):
        await publisher.default_exchange.publish(Message(b"%d" % i), queue.name)
    await wait_until(lambda: inboxes[0].qsize() == 6)
    await asyncio.sleep(0.2)
    assert inboxes[1].qsize() == 0, "only the active consumer receives"
    first_channel, first_tag = tags[0]
    await (await first_channel.get_queue(queue.name)).cancel(first_tag)
    for i in range(6, 9):
        await publisher.default_exchange.publish(Message(b"%d" % i), queue.name)
    await wait_until(lambda: inboxes[1].qsize() == 3)
    assert [inboxes[1].get_nowait().body for _ in range(3)] == [b"6", b"7", b"8"]


async def test_single_active_consumer_refuses_an_exclusive_consumer(scratch: Scratch) -> None:
    queue = await scratch.queue(arguments={"x-single-active-consumer": True})
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="in exclusive use"):
        await queue.consume(collect, exclusive=True)


# -- max message size ---------------------------------------------------------------------------

MAX_MESSAGE_SIZE = 128 * 1024 * 1024  # RabbitMQ 3.10's default max_message_size


@pytest.mark.slow
async def test_message_over_max_size_closes_the_channel_406(amqp_url: str) -> None:
    """128 MiB + 1 byte: RabbitMQ 3.10 closes the channel with 406 and these words (seen in
    a probe of 3.10.8); the embedded broker says it as soon as the header announces the size."""
    size = MAX_MESSAGE_SIZE + 1
    raw = await RawConnection.open(amqp_url, channels=(1, 2))
    try:
        raw.send(commands.Basic.Publish(exchange="", routing_key=unique("nowhere")), channel=1)
        import pamqp.frame
        from pamqp.body import ContentBody
        from pamqp.header import ContentHeader

        raw.send(ContentHeader(body_size=size, properties=commands.Basic.Properties()), channel=1)
        assert raw.tune is not None
        step = raw.tune.frame_max - 8
        chunk = pamqp.frame.marshal(ContentBody(b"x" * step), 1)
        sent = 0
        while sent + step <= size:
            raw.send_bytes(chunk)
            sent += step
            if sent % (step * 64) == 0:
                await raw.writer.drain()
        raw.send(ContentBody(b"x" * (size - sent)), channel=1)
        await raw.writer.drain()
        got = await raw.recv(30)
        assert got is not None and isinstance(got[1], commands.Channel.Close), got
        close = got[1]
        assert close.reply_code == 406
        assert close.reply_text == (
            f"PRECONDITION_FAILED - message size {size} is larger than configured max size "
            f"{MAX_MESSAGE_SIZE}"
        )
        assert (close.class_id, close.method_id) == (60, 40)
        raw.send(commands.Channel.CloseOk(), channel=1)
        # The connection and its other channel carry on.
        raw.send(commands.Queue.Declare(queue="", exclusive=True), channel=2)
        await raw.expect(commands.Queue.DeclareOk, channel=2)
    finally:
        await raw.close()


async def test_embedded_refuses_a_huge_announced_body_at_once() -> None:
    """Embedded only: a 2**62-byte announcement is refused before a byte of body is held."""
    from pamqp.header import ContentHeader

    from mqlab.broker import Broker

    async with Broker(host="127.0.0.1", port=0, max_message_size=1024) as broker:
        raw = await RawConnection.open(broker.url)
        try:
            raw.send(commands.Basic.Publish(exchange="", routing_key="q"), channel=1)
            raw.send(
                ContentHeader(body_size=2**62, properties=commands.Basic.Properties()), channel=1
            )
            close = await raw.expect(commands.Channel.Close, channel=1)
            assert (
                close.reply_code == 406
                and "larger than configured max size 1024" in close.reply_text
            )
            raw.send(commands.Channel.CloseOk(), channel=1)
        finally:
            await raw.close()


# -- logins -------------------------------------------------------------------------------------


async def test_refused_login_is_held(amqp_url: str, broker_kind: str) -> None:
    """RabbitMQ keeps a refused login's socket 3 s when the client does not answer its close
    (measured on 3.10.8; the 403 itself comes at once). The embedded broker holds the 403 for
    ``login_delay`` (0.5 s in this suite, 3 s by default), then hangs up."""
    from pamqp.header import ProtocolHeader

    held = 2.5 if broker_kind == "rabbitmq" else 0.45
    raw = await RawConnection.connect(amqp_url)
    try:
        raw.send_bytes(ProtocolHeader().marshal())
        await raw.expect(commands.Connection.Start)
        loop = asyncio.get_running_loop()
        started = loop.time()
        raw.send(
            commands.Connection.StartOk(
                client_properties={"capabilities": {"authentication_failure_close": True}},
                mechanism="PLAIN",
                response="\0guest\0not-the-password",
            )
        )
        codes = []  # read to EOF without answering close-ok, as a password-guessing client
        while (got := await raw.recv(10)) is not None:
            if isinstance(got[1], commands.Connection.Close):
                codes.append(got[1].reply_code)
        took = loop.time() - started
        assert codes == [403]
        assert took >= held, f"hung up after {took:.2f} s"
    finally:
        await raw.close()


def _non_loopback_address() -> str | None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing address
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_embedded_guest_only_from_loopback() -> None:
    """Embedded only. RabbitMQ: "guest can only connect from localhost" (loopback_users, see
    https://www.rabbitmq.com/access-control.html); the shared RabbitMQ here cannot be reached
    from another address to show it. Our broker binds a non-loopback address for a moment."""
    from mqlab.broker import Broker

    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    users = {"guest": "guest", "alice": "s3cret"}
    async with Broker(host=address, port=0, users=users, login_delay=0.1) as broker:
        guest = f"amqp://guest:guest@{address}:{broker.port}/"
        with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
            await aio_pika.connect(guest, timeout=TIMEOUT)
        alice = f"amqp://alice:s3cret@{address}:{broker.port}/"
        connection = await aio_pika.connect(alice, timeout=TIMEOUT)
        await connection.close()
    async with Broker(host="127.0.0.1", port=0, users=users) as broker:
        connection = await aio_pika.connect(broker.url, timeout=TIMEOUT)  # guest, on loopback
        with contextlib.suppress(Exception):
            await connection.close()
