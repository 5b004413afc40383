"""Conformance: channel errors (403/404/405/406), connection errors for bad frames, tx.

Channel errors close only the offending channel; connection errors (5xx, from malformed or
out-of-order frames) close the whole connection with connection.close and the code RabbitMQ
uses. Either way the broker carries on serving everyone else.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import aio_pika
import aiormq
import pamqp.frame
import pytest
from aio_pika import Message
from pamqp import commands, constants
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from .helpers import (
    CONNECTION_ERROR_CODES,
    RawConnection,
    Scratch,
    get_n,
    ignore,
    message_count,
)

pytestmark = pytest.mark.timeout(60)

CODE_NAMES = {
    501: "FRAME_ERROR",
    503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR",
    505: "UNEXPECTED_FRAME",
}


async def _channel_close(raw: RawConnection, channel: int = 1) -> commands.Channel.Close:
    close = await raw.expect(commands.Channel.Close, channel=channel)
    raw.send(commands.Channel.CloseOk(), channel=channel)
    return close


@pytest.mark.parametrize("tag", [1, 999])
async def test_ack_unknown_delivery_tag_406(amqp_url: str, scratch: Scratch, tag: int) -> None:
    """Tag 1 with nothing delivered, or 999: both unknown, both 406 on that channel."""
    raw = await RawConnection.open(amqp_url, channels=(1, 2))
    try:
        raw.send(commands.Basic.Ack(delivery_tag=tag), channel=1)
        close = await _channel_close(raw)
        assert close.reply_code == 406, close.reply_text
        assert (close.class_id, close.method_id) == (60, 80)  # basic.ack
        # Channel 2 and the connection live on.
        raw.send(commands.Queue.Declare(queue=scratch.qname(), exclusive=True), channel=2)
        await raw.expect(commands.Queue.DeclareOk, channel=2)
    finally:
        await raw.close()


@pytest.mark.parametrize("second", ["ack", "nack", "reject"])
async def test_settling_a_delivery_twice_406(scratch: Scratch, second: str) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, b"x")
    channel, [message] = await scratch.take_unacked(queue.name, 1)
    underlay = await channel.get_underlay_channel()
    await message.ack()
    settle = {
        "ack": lambda: underlay.basic_ack(message.delivery_tag),
        "nack": lambda: underlay.basic_nack(message.delivery_tag, requeue=False),
        "reject": lambda: underlay.basic_reject(message.delivery_tag, requeue=False),
    }
    await settle[second]()
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await channel.declare_queue(queue.name, passive=True)  # the close arrives here


async def test_delivery_tags_belong_to_their_channel_406(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, b"x")
    [message] = await get_n(queue, 1, no_ack=False)
    other = await scratch.new_channel()
    await (await other.get_underlay_channel()).basic_ack(message.delivery_tag)
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await other.declare_queue(queue.name, passive=True)
    await message.ack()  # still fine on its own channel
    assert await message_count(scratch.channel, queue.name) == 0


async def test_channel_error_leaves_other_channels_and_connections_alone(scratch: Scratch) -> None:
    queue = await scratch.queue()
    doomed = await scratch.new_channel()
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await doomed.declare_queue(scratch.qname(), passive=True)
    assert doomed.is_closed and not scratch.channel.is_closed and not scratch.connection.is_closed
    await scratch.publish(queue.name, b"still here")
    [message] = await get_n(queue, 1)
    assert message.body == b"still here"


async def test_user_id_must_match_the_login_406(scratch: Scratch) -> None:
    """RabbitMQ validates the user_id property against the authenticated user."""
    queue = await scratch.queue()
    channel = await scratch.new_channel(publisher_confirms=True)
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await channel.default_exchange.publish(Message(b"x", user_id="mallory"), queue.name)
    assert await message_count(scratch.channel, queue.name) == 0


async def test_duplicate_consumer_tag_is_530(amqp_url: str, scratch: Scratch) -> None:
    """Reusing a consumer tag on one channel is a connection error: 530 NOT_ALLOWED."""
    queue = await scratch.queue()
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send(commands.Basic.Consume(queue=queue.name, consumer_tag="twin"), channel=1)
        await raw.expect(commands.Basic.ConsumeOk, channel=1)
        raw.send(commands.Basic.Consume(queue=queue.name, consumer_tag="twin"), channel=1)
        close = await raw.connection_close()
        assert close.reply_code == 530, close.reply_text
    finally:
        await raw.close()


def _method(channel: int, class_id: int, method_id: int, payload: bytes = b"") -> bytes:
    return pamqp.frame._marshal(
        constants.FRAME_METHOD, channel, struct.pack(">HH", class_id, method_id) + payload
    )


def _bad_end() -> bytes:
    frame = bytearray(pamqp.frame.marshal(commands.Basic.Qos(prefetch_count=1), 1))
    frame[-1] = 0x00
    return bytes(frame)


def _frames(*parts: object, channel: int = 1) -> bytes:
    return b"".join(pamqp.frame.marshal(p, channel) for p in parts)  # type: ignore[arg-type]


_BAD_END = "<<0,60,0,10,0,0,0,0,0,1,0>>: {invalid_frame_end_marker,0}"
_NOT_HEADER = "expected content header for class 60, got non content header frame instead"
_RUNNING = "unexpected method in connection state running"

# name -> (bytes to send after the handshake, then the connection.close RabbitMQ 3.10 sends:
# code, text, and the class and method it names)
BAD_FRAMES: dict[str, tuple[Callable[[], bytes], int, str, tuple[int, int]]] = {
    "bad frame-end octet": (_bad_end, 501, f"type 1, all octets = {_BAD_END}", (0, 0)),
    "unknown frame type": (
        lambda: struct.pack(">BHI", 9, 1, 4) + b"abcd\xce",
        501,
        'type 9, all octets = <<"abcd">>: unknown_frame',
        (0, 0),
    ),
    "frame larger than frame_max": (
        lambda: struct.pack(">BHI", 1, 1, 10_000_000) + b"abcd",
        501,
        "type 1, all octets = <<>>: {frame_too_large,10000000,131064}",
        (0, 0),
    ),
    "truncated method arguments": (
        lambda: _method(1, 50, 10, b"\x00"),
        501,
        "cannot decode <<0>>",
        (50, 10),
    ),
    "content header with no method": (
        lambda: _frames(ContentHeader(body_size=3)),
        505,
        "expected method frame, got non method frame instead",
        (0, 0),
    ),
    "content body with no header": (
        lambda: _frames(ContentBody(b"abc")),
        505,
        "expected method frame, got non method frame instead",
        (0, 0),
    ),
    "content body before its header": (
        lambda: _frames(commands.Basic.Publish(routing_key="k"), ContentBody(b"abc")),
        505,
        _NOT_HEADER,
        (60, 40),
    ),
    "method where a content header belongs": (
        lambda: _frames(commands.Basic.Publish(routing_key="k"), commands.Basic.Qos()),
        505,
        _NOT_HEADER,
        (60, 40),
    ),
    "method on a channel never opened": (
        lambda: _frames(commands.Basic.Qos(prefetch_count=1), channel=5),
        504,
        "expected 'channel.open'",
        (60, 10),
    ),
    "channel.open on an open channel": (
        lambda: _frames(commands.Channel.Open()),
        504,
        "second 'channel.open' seen",
        (20, 10),
    ),
    "channel.close-ok nobody asked for": (
        lambda: _frames(commands.Channel.CloseOk()),
        503,
        "unimplemented method",
        (20, 41),
    ),
    "basic method on channel 0": (
        lambda: _frames(commands.Basic.Qos(prefetch_count=1), channel=0),
        504,
        _RUNNING,
        (60, 10),
    ),
    "connection.open again": (
        lambda: _frames(commands.Connection.Open(), channel=0),
        504,
        _RUNNING,
        (10, 40),
    ),
    "connection.tune-ok late": (
        lambda: _frames(commands.Connection.TuneOk(), channel=0),
        504,
        _RUNNING,
        (10, 31),
    ),
    "connection method on channel 1": (
        lambda: _frames(commands.Connection.Open()),
        503,
        "unimplemented method",
        (10, 40),
    ),
    "heartbeat on channel 1": (
        lambda: b"\x08\x00\x01\x00\x00\x00\x00\xce",
        505,
        "type 8, all octets = <<>>",
        (0, 0),
    ),
    "body frame larger than frame_max": (
        lambda: _frames(
            commands.Basic.Publish(routing_key="k"),
            ContentHeader(body_size=200_000),
            ContentBody(b"x" * 200_000),
        ),
        501,
        "type 3, all octets = <<>>: {frame_too_large,200000,131064}",
        (0, 0),
    ),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_bad_frame_closes_the_connection_in_rabbitmqs_words(
    amqp_url: str, scratch: Scratch, case: str
) -> None:
    make, code, text, (class_id, method_id) = BAD_FRAMES[case]
    bystander = await scratch.new_channel()
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send_bytes(make())
        close = await raw.connection_close()
        assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
            code,
            f"{CODE_NAMES[code]} - {text}",
            class_id,
            method_id,
        )
    finally:
        await raw.close()
    # Other connections are untouched.
    queue = await scratch.queue(channel=bystander)
    assert queue.declaration_result.message_count == 0


@pytest.mark.parametrize(("class_id", "method_id"), [(60, 999), (77, 10)], ids=["method", "class"])
async def test_unknown_method_ends_the_connection(
    amqp_url: str, class_id: int, method_id: int
) -> None:
    """RabbitMQ 3.10 hangs up on an unknown class/method without connection.close; a
    connection.close with a hard-error code (e.g. 540 or 503) is just as acceptable."""
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send_bytes(_method(1, class_id, method_id))
        frames = await raw.until_closed()
        closes = [f for _, f in frames if isinstance(f, commands.Connection.Close)]
        assert all(c.reply_code in CONNECTION_ERROR_CODES for c in closes), closes
        assert len(frames) == len(closes), f"unexpected frames: {frames}"
    finally:
        await raw.close()


async def test_transactions(scratch: Scratch, broker_kind: str) -> None:
    """tx.select/commit/rollback: RabbitMQ implements them. The embedded broker may instead
    answer tx.select with connection.close 540 NOT_IMPLEMENTED (the issue allows it); if it
    accepts tx.select it must then implement the semantics properly."""
    queue = await scratch.queue()
    connection = await scratch.connect()
    channel = await connection.channel(publisher_confirms=False)
    transaction = channel.transaction()
    try:
        await transaction.select()
    except aiormq.exceptions.ConnectionNotImplemented:
        assert broker_kind == "embedded", "RabbitMQ implements tx"
        return
    except aiormq.exceptions.ConnectionClosed as closed:
        pytest.fail(f"tx.select refused with {closed!r}; 540 NOT_IMPLEMENTED is the code")
    await channel.default_exchange.publish(Message(b"rolled back"), queue.name)
    await transaction.rollback()
    await channel.default_exchange.publish(Message(b"committed"), queue.name)
    await asyncio.sleep(0.2)
    assert await message_count(scratch.channel, queue.name) == 0, "published before commit"
    await transaction.commit()
    [message] = await get_n(queue, 1)
    assert message.body == b"committed"
    assert await queue.get(fail=False) is None


async def test_consume_after_queue_error_needs_a_new_channel(scratch: Scratch) -> None:
    """After a channel error aio-pika refuses to use that channel; a new one works."""
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await scratch.channel.declare_queue(scratch.qname(), passive=True)
    with pytest.raises(aiormq.exceptions.ChannelInvalidStateError):
        await (await scratch.channel.get_underlay_channel()).basic_qos(prefetch_count=1)
    fresh = await scratch.new_channel()
    queue = await scratch.queue(channel=fresh)
    await queue.consume(ignore)
    assert isinstance(fresh, aio_pika.abc.AbstractChannel)
