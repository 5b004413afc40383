"""Shared tools for the broker conformance suite: unique names, cleanup, polling, raw frames.

Every test runs on the embedded broker and on a real RabbitMQ that other people share, so
names are unique and whatever a test declares is deleted afterwards, from a fresh connection
(the test's own channel may have been closed by the error it provoked).

``RawConnection`` speaks AMQP through pamqp on a bare socket, for behaviour that aio-pika
cannot produce on purpose: bad frames, garbage, frames out of order, heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
import pamqp.frame
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pamqp import commands
from pamqp.base import Frame
from pamqp.body import ContentBody
from pamqp.exceptions import UnmarshalingException
from pamqp.header import ContentHeader, ProtocolHeader
from pamqp.heartbeat import Heartbeat

from mqlab.broker.frames import unchecked

__all__ = [
    "CONNECTION_ERROR_CODES",
    "TIMEOUT",
    "RawConnection",
    "Scratch",
    "collect",
    "free_port",
    "get_n",
    "host_port",
    "ignore",
    "message_count",
    "start_cli_broker",
    "unique",
    "wait_until",
]

TIMEOUT = 5.0
# AMQP 0-9-1 hard errors, the codes a broker may put in connection.close after a bad frame.
CONNECTION_ERROR_CODES = frozenset({320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541})

AnyFrame = Frame | ContentHeader | ContentBody | Heartbeat | ProtocolHeader


def unique(kind: str) -> str:
    """A name no other test (nor another engineer's run on the shared RabbitMQ) uses."""
    return f"mqlab-conf-{kind}-{uuid.uuid4().hex[:12]}"


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 5672


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def start_cli_broker(
    port: int, log: Path, data_dir: Path | None = None, *extra: str
) -> subprocess.Popen[bytes]:
    """``python -m mqlab broker`` in its own process; returns once it accepts connections.

    Its stdout and stderr both go to ``log``.
    """
    command = [sys.executable, "-m", "mqlab", "broker", "--host", "127.0.0.1", "--port", str(port)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, *extra], stdout=output, stderr=output, start_new_session=True
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while loop.time() < deadline:
        assert process.poll() is None, f"broker exited: {log.read_text()[-2000:]}"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return process
    process.kill()
    raise AssertionError(f"broker did not listen on {port} within 20 s: {log.read_text()}")


class Scratch:
    """One test's connection and channel, plus the queues and exchanges to delete afterwards.

    ``qname()``/``xname()`` hand out unique names and remember them; on exit every extra
    connection is closed first (so exclusive queues are released), then everything remembered
    is deleted from a fresh connection, ignoring what is already gone. Most tests take one
    from the ``scratch`` fixture (conftest.py) on the broker under test.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._queues: list[str] = []
        self._exchanges: list[str] = []
        self._connections: list[aio_pika.abc.AbstractConnection] = []

    async def __aenter__(self) -> Self:
        self.connection = await self.connect()
        self.channel = await self.connection.channel()
        return self

    async def __aexit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for connection in reversed(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), TIMEOUT)
        if not (self._queues or self._exchanges):
            return
        cleaner = await aio_pika.connect(self.url, timeout=TIMEOUT)
        async with cleaner:
            channel = await cleaner.channel()
            for method, names in (
                (channel.queue_delete, self._queues),
                (channel.exchange_delete, self._exchanges),
            ):
                for name in names:
                    try:
                        await asyncio.wait_for(method(name), TIMEOUT)
                    except aiormq.exceptions.AMQPError:
                        channel = await cleaner.channel()  # a 404 closed it; carry on

    async def connect(self, url: str | None = None) -> aio_pika.abc.AbstractConnection:
        """A plain (not robust) connection: errors must surface, not be retried away."""
        connection = await aio_pika.connect(url or self.url, timeout=TIMEOUT)
        self._connections.append(connection)
        return connection

    async def new_channel(self, **kwargs: Any) -> aio_pika.abc.AbstractChannel:
        return await self.connection.channel(**kwargs)

    async def publish(self, routing_key: str, *messages: bytes | aio_pika.Message) -> None:
        """Publish to the default exchange through a confirming channel of its own, so the
        messages are queued when this returns."""
        channel = await self.new_channel(publisher_confirms=True)
        for message in messages:
            body = message if isinstance(message, aio_pika.Message) else aio_pika.Message(message)
            await channel.default_exchange.publish(body, routing_key)
        await channel.close()

    async def take_unacked(
        self, queue_name: str, n: int
    ) -> tuple[aio_pika.abc.AbstractChannel, list[AbstractIncomingMessage]]:
        """``basic.get`` n messages, unacked, on a new channel; closing it hands them back."""
        channel = await self.new_channel()
        messages = await get_n(await channel.get_queue(queue_name), n, no_ack=False)
        return channel, messages

    def qname(self, kind: str = "q") -> str:
        name = unique(kind)
        self._queues.append(name)
        return name

    def xname(self, kind: str = "x") -> str:
        name = unique(kind)
        self._exchanges.append(name)
        return name

    def track_queue(self, name: str) -> str:
        self._queues.append(name)
        return name

    async def queue(self, channel: aio_pika.abc.AbstractChannel | None = None, **kwargs: Any):
        """Declare a uniquely named queue (kwargs as for ``declare_queue``)."""
        return await (channel or self.channel).declare_queue(self.qname(), **kwargs)

    async def exchange(
        self,
        type_: aio_pika.ExchangeType | str = aio_pika.ExchangeType.DIRECT,
        channel: aio_pika.abc.AbstractChannel | None = None,
        **kwargs: Any,
    ) -> aio_pika.abc.AbstractExchange:
        return await (channel or self.channel).declare_exchange(self.xname(), type_, **kwargs)


async def ignore(message: Any) -> None:
    """A consumer callback that leaves the message unacked (aio-pika wants a coroutine)."""


async def wait_until(predicate: Any, timeout: float = TIMEOUT, interval: float = 0.02) -> None:
    """Poll an async or plain predicate until it is true; fail with a clear message if not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        await asyncio.sleep(interval)


async def message_count(channel: aio_pika.abc.AbstractChannel, name: str) -> int:
    """Ready (not unacked) messages in a queue, from a passive declare."""
    queue = await channel.declare_queue(name, passive=True)
    count = queue.declaration_result.message_count
    assert count is not None
    return count


async def get_n(
    queue: AbstractQueue, n: int, *, no_ack: bool = True, timeout: float = TIMEOUT
) -> list[AbstractIncomingMessage]:
    """``basic.get`` until n messages came; get-empty in between just means "not yet"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    messages: list[AbstractIncomingMessage] = []
    while len(messages) < n:
        message = await queue.get(no_ack=no_ack, fail=False, timeout=TIMEOUT)
        if message is not None:
            messages.append(message)
            continue
        if loop.time() > deadline:
            raise AssertionError(f"got {len(messages)} of {n} messages within {timeout} s")
        await asyncio.sleep(0.02)
    return messages


async def collect(
    queue: AbstractQueue, n: int, *, no_ack: bool = False, timeout: float = TIMEOUT
) -> list[AbstractIncomingMessage]:
    """Consume exactly n messages (not acking them), then cancel the consumer."""
    inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
    tag = await queue.consume(inbox.put, no_ack=no_ack)
    try:
        async with asyncio.timeout(timeout):
            return [await inbox.get() for _ in range(n)]
    finally:
        await queue.cancel(tag)


class RawConnection:
    """AMQP 0-9-1 over a bare socket, every frame built and parsed by pamqp."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = b""
        self.eof = False
        self.write_closed = False
        self.tune: commands.Connection.Tune | None = None
        self.start: commands.Connection.Start | None = None

    @classmethod
    async def connect(cls, url: str, *, timeout: float = TIMEOUT) -> RawConnection:
        """Just the TCP connection, nothing sent."""
        host, port = host_port(url)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        return cls(reader, writer)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        heartbeat: int = 0,
        channels: Iterable[int] = (1,),
        username: str | None = None,
        password: str | None = None,
        capabilities: dict[str, bool] | None = None,
        channel_max: int | None = None,
    ) -> RawConnection:
        """Handshake up to connection.open-ok, then open the given channels.

        ``channel_max`` asks for fewer channels than the broker offers (as a client may).
        """
        raw = await cls.connect(url)
        parts = urlsplit(url)
        user = username if username is not None else unquote(parts.username or "guest")
        secret = password if password is not None else unquote(parts.password or "guest")
        raw.send_bytes(ProtocolHeader().marshal())
        raw.start = await raw.expect(commands.Connection.Start)
        raw.send(
            commands.Connection.StartOk(
                # Without this capability RabbitMQ drops a failed login silently.
                client_properties={
                    "capabilities": {"authentication_failure_close": True, **(capabilities or {})}
                },
                mechanism="PLAIN",
                response=f"\0{user}\0{secret}",
            )
        )
        raw.tune = await raw.expect(commands.Connection.Tune)
        raw.send(
            commands.Connection.TuneOk(
                channel_max=channel_max or raw.tune.channel_max,
                frame_max=raw.tune.frame_max,
                heartbeat=heartbeat,
            )
        )
        raw.send(commands.Connection.Open(virtual_host=unquote(parts.path[1:] or "/")))
        await raw.expect(commands.Connection.OpenOk)
        for number in channels:
            raw.send(commands.Channel.Open(), channel=number)
            await raw.expect(commands.Channel.OpenOk, channel=number)
        return raw

    def send(self, *frames: AnyFrame, channel: int = 0) -> None:
        self.send_bytes(b"".join(pamqp.frame.marshal(f, channel) for f in frames))

    def send_bytes(self, data: bytes) -> None:
        if not (self.writer.is_closing() or self.write_closed):
            self.writer.write(data)

    def shutdown_write(self) -> None:
        """Half-close: the broker reads EOF, while we can still read what it says."""
        if not (self.writer.is_closing() or self.write_closed):
            self.write_closed = True
            with contextlib.suppress(OSError):  # the broker may have hung up already
                self.writer.write_eof()

    def publish(
        self,
        body: bytes,
        *,
        exchange: str = "",
        routing_key: str = "",
        channel: int = 1,
        mandatory: bool = False,
        properties: commands.Basic.Properties | None = None,
    ) -> None:
        """One basic.publish: method, content header and (if any) a body frame."""
        frames: list[AnyFrame] = [
            # unchecked: any name RabbitMQ accepts, even those pamqp would refuse to send
            unchecked(
                commands.Basic.Publish,
                exchange=exchange,
                routing_key=routing_key,
                mandatory=mandatory,
            ),
            ContentHeader(
                body_size=len(body), properties=properties or commands.Basic.Properties()
            ),
        ]
        if body:
            frames.append(ContentBody(body))
        self.send(*frames, channel=channel)

    async def recv(
        self, timeout: float = TIMEOUT, *, heartbeats: bool = False
    ) -> tuple[int, AnyFrame] | None:
        """The next frame as (channel, frame), or None at EOF. Heartbeats are skipped unless asked.

        Raises TimeoutError when nothing complete arrives in time.
        """
        async with asyncio.timeout(timeout):
            while True:
                if self.buffer:
                    try:
                        used, channel, frame = pamqp.frame.unmarshal(self.buffer)
                    except UnmarshalingException:
                        frame = None  # incomplete: read more
                    else:
                        self.buffer = self.buffer[used:]
                        if isinstance(frame, Heartbeat) and not heartbeats:
                            continue
                        return channel, frame
                if self.eof:
                    return None
                try:
                    chunk = await self.reader.read(65536)
                except ConnectionResetError:
                    chunk = b""  # a broker that hangs up on unread input resets the socket
                if not chunk:
                    self.eof = True
                    if not self.buffer:
                        return None
                    # Leftover bytes that never parse would loop forever; report EOF.
                    with contextlib.suppress(UnmarshalingException):
                        used, channel, frame = pamqp.frame.unmarshal(self.buffer)
                        self.buffer = self.buffer[used:]
                        return channel, frame
                    return None
                self.buffer += chunk

    async def expect(self, kind: type, *, channel: int | None = None, timeout: float = TIMEOUT):
        """The next frame, which must be a ``kind`` (on ``channel`` if given)."""
        got = await self.recv(timeout)
        assert got is not None, f"connection closed while waiting for {kind.__name__}"
        number, frame = got
        assert isinstance(frame, kind), f"expected {kind.__name__}, got {frame!r} on {number}"
        if channel is not None:
            assert number == channel, f"{kind.__name__} came on channel {number}, not {channel}"
        return frame

    async def until_closed(self, timeout: float = TIMEOUT) -> list[tuple[int, AnyFrame]]:
        """Read frames until the broker closes the socket; answer a connection.close politely.

        Returns every frame seen. Fails (TimeoutError) if the broker keeps the socket open.
        """
        seen: list[tuple[int, AnyFrame]] = []
        async with asyncio.timeout(timeout):
            while (got := await self.recv(timeout)) is not None:
                seen.append(got)
                if isinstance(got[1], commands.Connection.Close):
                    self.send(commands.Connection.CloseOk())
        return seen

    async def connection_close(self, timeout: float = TIMEOUT) -> commands.Connection.Close:
        """The connection.close the broker sends (earlier frames are skipped); answers close-ok.

        Doesn't wait for the hang-up: after a frame error RabbitMQ stops reading and takes
        a few seconds to drop the socket.
        """
        async with asyncio.timeout(timeout):
            while (got := await self.recv(timeout)) is not None:
                if isinstance(got[1], commands.Connection.Close):
                    self.send(commands.Connection.CloseOk())
                    return got[1]
        raise AssertionError("the broker hung up without sending connection.close")

    def abort(self) -> None:
        """Drop the TCP connection without any AMQP goodbye (a crashed client)."""
        self.writer.transport.abort()

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
