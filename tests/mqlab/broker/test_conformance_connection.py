"""Conformance: the connection handshake, PLAIN auth, heartbeats and channel lifecycle.

Each test runs on the embedded broker and on RabbitMQ (the ``amqp_url`` fixture).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import aiormq
import pytest
from pamqp import commands
from pamqp.header import ProtocolHeader
from pamqp.heartbeat import Heartbeat

from .helpers import TIMEOUT, RawConnection, Scratch, collect, free_port, start_cli_broker

pytestmark = pytest.mark.timeout(60)


def _with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port or 5672}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_aio_pika_hello_world(amqp_url: str) -> None:
    """The tutorial's first program, unchanged: declare, publish, consume.

    (Its own Scratch, not the fixture: the CLI broker's test below runs it on another URL.)"""
    async with Scratch(amqp_url) as s:
        queue = await s.queue()
        await s.channel.default_exchange.publish(aio_pika.Message(b"Hello World!"), queue.name)
        [message] = await collect(queue, 1)
        assert message.body == b"Hello World!"
        assert message.routing_key == queue.name
        await message.ack()


async def test_handshake_offers_0_9_1_plain_and_the_capabilities_aio_pika_needs(
    amqp_url: str,
) -> None:
    raw = await RawConnection.open(amqp_url)
    try:
        assert raw.start is not None and raw.tune is not None
        assert (raw.start.version_major, raw.start.version_minor) == (0, 9)
        assert "PLAIN" in raw.start.mechanisms.split()
        capabilities = raw.start.server_properties["capabilities"]
        for name in ("publisher_confirms", "basic.nack", "consumer_cancel_notify"):
            assert capabilities.get(name) is True, f"capability {name} not advertised"
        # 4096 is the protocol's minimum frame size; 0 would mean "no limit".
        assert raw.tune.frame_max == 0 or raw.tune.frame_max >= 4096
        assert raw.tune.channel_max == 0 or raw.tune.channel_max >= 64
    finally:
        await raw.close()


async def test_wrong_password_is_refused(amqp_url: str) -> None:
    with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
        await aio_pika.connect(_with_credentials(amqp_url, "guest", "wrong"), timeout=TIMEOUT)


@pytest.mark.parametrize(("user", "password"), [("guest", "wrong"), ("no-such-user", "guest")])
async def test_bad_credentials_get_connection_close_403(
    amqp_url: str, user: str, password: str
) -> None:
    raw = await RawConnection.connect(amqp_url)
    try:
        raw.send_bytes(ProtocolHeader().marshal())
        await raw.expect(commands.Connection.Start)
        raw.send(
            commands.Connection.StartOk(
                client_properties={"capabilities": {"authentication_failure_close": True}},
                response=f"\0{user}\0{password}",
            )
        )
        close = await raw.connection_close()
        assert close.reply_code == 403, close.reply_text
        assert close.reply_text.startswith("ACCESS_REFUSED")
    finally:
        await raw.close()


@pytest.mark.parametrize(
    "greeting",
    [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"AMQP\x01\x01\x00\x0a"],
    ids=["http", "0-10"],
)
async def test_foreign_protocol_header_answered_with_0_9_1_header(
    amqp_url: str, greeting: bytes
) -> None:
    """The spec: reply with the protocol header the server does speak, then hang up."""
    raw = await RawConnection.connect(amqp_url)
    try:
        raw.send_bytes(greeting)
        frames = await raw.until_closed()
        assert frames, "the broker hung up without naming the protocol it speaks"
        header = frames[0][1]
        assert isinstance(header, ProtocolHeader)
        assert (header.major_version, header.minor_version, header.revision) == (0, 9, 1)
    finally:
        await raw.close()


async def test_broker_sends_heartbeats(amqp_url: str) -> None:
    raw = await RawConnection.open(amqp_url, heartbeat=1)
    try:
        _, frame = await raw.recv(timeout=4, heartbeats=True) or (0, None)
        assert isinstance(frame, Heartbeat), f"expected a heartbeat, got {frame!r}"
    finally:
        await raw.close()


@pytest.mark.slow  # waits out missed heartbeats
async def test_silent_client_is_dropped_after_missed_heartbeats(amqp_url: str) -> None:
    """A peer that hears nothing for two heartbeat intervals closes the socket (spec 4.2.7)."""
    raw = await RawConnection.open(amqp_url, heartbeat=1)
    try:
        frames = await raw.until_closed(timeout=10)
        others = [f for _, f in frames if not isinstance(f, Heartbeat | commands.Connection.Close)]
        assert not others, f"unexpected frames before the hang-up: {others}"
    finally:
        await raw.close()


@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
async def test_heartbeating_client_stays_connected(amqp_url: str) -> None:
    async with Scratch(f"{amqp_url}?heartbeat=1") as s:
        await asyncio.sleep(3.5)  # several heartbeat intervals with no other traffic
        queue = await s.queue(exclusive=True)
        assert not s.connection.is_closed
        assert queue.name


async def test_graceful_connection_close(amqp_url: str) -> None:
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send(
            commands.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)
        )
        await raw.expect(commands.Connection.CloseOk)
    finally:
        await raw.close()


async def test_channel_close_and_reopen_same_number(amqp_url: str) -> None:
    raw = await RawConnection.open(amqp_url, channels=(1, 7))
    try:
        raw.send(
            commands.Channel.Close(reply_code=200, reply_text="done", class_id=0, method_id=0),
            channel=7,
        )
        await raw.expect(commands.Channel.CloseOk, channel=7)
        raw.send(commands.Channel.Open(), channel=7)
        await raw.expect(commands.Channel.OpenOk, channel=7)
        raw.send(commands.Basic.Qos(prefetch_count=5), channel=1)
        await raw.expect(commands.Basic.QosOk, channel=1)
    finally:
        await raw.close()


async def test_channel_max_limits_how_many_are_open_not_their_numbers(amqp_url: str) -> None:
    # aiormq's own tests open channel 65535 on a connection whose channel_max is 2047
    raw = await RawConnection.open(amqp_url, channels=(1, 65535), channel_max=2)
    try:
        raw.send(commands.Channel.Open(), channel=3)
        close = await raw.expect(commands.Connection.Close)
        assert close.reply_code == 530, close.reply_text
        assert close.reply_text == (
            "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"
        )
    finally:
        await raw.close()


async def test_many_channels_and_closing_one_leaves_the_rest(scratch: Scratch) -> None:
    channels = [await scratch.new_channel() for _ in range(20)]
    queue = await scratch.queue()
    await channels[3].close()
    for number, channel in enumerate(channels):
        if number == 3:
            continue
        await channel.default_exchange.publish(aio_pika.Message(b"%d" % number), queue.name)
    messages = await collect(queue, 19, no_ack=True)
    assert sorted(int(m.body) for m in messages) == [n for n in range(20) if n != 3]


async def test_channel_flow(amqp_url: str, scratch: Scratch, broker_kind: str) -> None:
    """channel.flow(active=true) is always accepted; active=false differs between brokers.

    RabbitMQ 3.x answers active=false with connection.close 540 NOT_IMPLEMENTED (it uses TCP
    back-pressure instead). The embedded broker may do the same, or implement the spec: confirm
    with flow-ok(active=false) and hold deliveries to that channel until flow(active=true).
    """
    queue = await scratch.queue()
    raw = await RawConnection.open(amqp_url)
    try:
        raw.send(commands.Channel.Flow(active=True), channel=1)
        ok = await raw.expect(commands.Channel.FlowOk, channel=1)
        assert ok.active is True
        raw.send(commands.Basic.Consume(queue=queue.name, no_ack=True), channel=1)
        await raw.expect(commands.Basic.ConsumeOk, channel=1)

        raw.send(commands.Channel.Flow(active=False), channel=1)
        got = await raw.recv()
        assert got is not None, "the broker hung up without connection.close"
        reply = got[1]
        if isinstance(reply, commands.Connection.Close):
            assert reply.reply_code == 540, reply.reply_text
            if broker_kind == "rabbitmq":
                assert "active=false" in reply.reply_text
            return
        assert broker_kind == "embedded", f"RabbitMQ 3.x refuses active=false, got {reply!r}"
        assert isinstance(reply, commands.Channel.FlowOk) and reply.active is False, reply
        await scratch.channel.default_exchange.publish(aio_pika.Message(b"held"), queue.name)
        with pytest.raises(TimeoutError):
            await raw.recv(timeout=0.5)  # paused: nothing may be delivered
        raw.send(commands.Channel.Flow(active=True), channel=1)
        ok = await raw.expect(commands.Channel.FlowOk, channel=1)
        assert ok.active is True
        await raw.expect(commands.Basic.Deliver, channel=1)
    finally:
        await raw.close()


@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
async def test_embedded_users_are_configurable() -> None:
    """Embedded only: ``Broker(users=...)`` replaces guest/guest."""
    from mqlab.broker import Broker

    async with Broker(host="127.0.0.1", port=0, users={"alice": "s3cret"}) as broker:
        guest = _with_credentials(broker.url, "guest", "guest")
        with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
            await aio_pika.connect(guest, timeout=TIMEOUT)  # guest is not a user here
        alice = _with_credentials(broker.url, "alice", "s3cret")
        async with Scratch(alice) as s:
            queue = await s.queue(exclusive=True)
            await s.channel.default_exchange.publish(aio_pika.Message(b"hi"), queue.name)
            [message] = await collect(queue, 1, no_ack=True)
            assert message.body == b"hi"


async def test_cli_broker_prints_its_url_and_serves_hello_world(tmp_path: Path) -> None:
    """Embedded only: ``python -m mqlab broker --port N`` in its own process."""
    port, log = free_port(), tmp_path / "broker.log"
    process = await start_cli_broker(port, log)
    try:
        url = f"amqp://guest:guest@127.0.0.1:{port}/"
        async with asyncio.timeout(10):
            while f"127.0.0.1:{port}" not in log.read_text():
                await asyncio.sleep(0.05)
        assert "amqp://" in log.read_text(), log.read_text()
        await test_aio_pika_hello_world(url)
    finally:
        process.terminate()
        process.wait(10)
