"""RPC over AMQP: a request carries ``reply_to`` and ``correlation_id``; the reply echoes the id.

Unlike the aio-pika tutorial's client, :class:`RpcClient`

* gives every call a timeout (:class:`RpcTimeout`) and forgets the call when it expires;
* ignores, logs and counts a reply whose correlation id it does not know (a late reply to a call
  that timed out, or a stray message) instead of crashing with ``KeyError``;
* turns a server-side failure into :class:`RemoteError` at once, instead of a timeout.

:class:`RpcServer` acks a request only after its reply is published, so a server that dies
mid-request leaves the request to another server. ``aio_pika.patterns.RPC`` is the production
version of the same idea (with pickled arguments); this one keeps each step visible.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from mqlab.patterns._common import Delivery, DeliveryLog, PatternRun, text, unique
from mqlab.topology import DEFAULT_EXCHANGE, TopologyRecorder

__all__ = [
    "ERROR_HEADER",
    "Handler",
    "RemoteError",
    "ReplyHandler",
    "RpcClient",
    "RpcServer",
    "RpcTimeout",
    "demo",
    "resolve_reply",
]

log = logging.getLogger(__name__)

#: Header a server sets on a reply when the handler raised.
ERROR_HEADER = "x-rpc-error"

#: Server side: request body -> reply body.
Handler = Callable[[bytes], Awaitable[bytes]]
#: Client side: route one reply to its waiting call; return False if it matched none.
ReplyHandler = Callable[
    [AbstractIncomingMessage, MutableMapping[str, "asyncio.Future[bytes]"]], bool
]


class RpcTimeout(TimeoutError):
    """No reply arrived in time."""


class RemoteError(RuntimeError):
    """The server's handler raised; the message is the server's error text."""


def resolve_reply(
    message: AbstractIncomingMessage, pending: MutableMapping[str, asyncio.Future[bytes]]
) -> bool:
    """Complete the call this reply belongs to; ignore a reply that belongs to none."""
    future = pending.pop(message.correlation_id or "", None)
    if future is None or future.done():  # unknown id, or its call already timed out
        return False
    error = (message.headers or {}).get(ERROR_HEADER)
    if error is not None:
        future.set_exception(RemoteError(str(error)))
    else:
        future.set_result(message.body)
    return True


class RpcServer:
    """Serves requests from ``queue_name`` with ``handler``; one reply per request."""

    def __init__(self, channel: AbstractChannel, queue_name: str, handler: Handler) -> None:
        self.channel, self.queue_name, self.handler = channel, queue_name, handler
        self.served = 0

    async def start(self) -> AbstractQueue:
        queue = await self.channel.declare_queue(self.queue_name, auto_delete=True)
        await queue.consume(self._on_request)
        return queue

    async def _on_request(self, request: AbstractIncomingMessage) -> None:
        if not request.reply_to:
            log.warning("RPC request %r has no reply_to; rejecting it", request.message_id)
            await request.reject(requeue=False)
            return
        headers: dict[str, Any] = {}
        try:
            body = await self.handler(request.body)
        except Exception as exc:  # the caller should hear about it now, not time out
            body, headers = b"", {ERROR_HEADER: f"{type(exc).__name__}: {exc}"}
        reply = aio_pika.Message(body, correlation_id=request.correlation_id, headers=headers)
        await self.channel.default_exchange.publish(reply, routing_key=request.reply_to)
        await request.ack()  # after the reply: a crash before this hands the request on
        self.served += 1


class RpcClient:
    """Calls an :class:`RpcServer` and waits, with a timeout, for the matching reply.

    ``on_reply`` decides which waiting call a reply completes (default :func:`resolve_reply`);
    a reply it rejects is logged and counted in :attr:`ignored`, never raised.
    """

    def __init__(self, channel: AbstractChannel, *, on_reply: ReplyHandler = resolve_reply) -> None:
        self.channel = channel
        self.on_reply = on_reply
        self.pending: dict[str, asyncio.Future[bytes]] = {}
        self.ignored = 0
        self.errors: list[BaseException] = []  # exceptions raised by on_reply, kept not lost
        self._reply_queue: AbstractQueue | None = None

    @property
    def reply_queue(self) -> AbstractQueue:
        if self._reply_queue is None:
            raise RuntimeError("await client.start() before calling")
        return self._reply_queue

    async def start(self) -> RpcClient:
        """Declare a private reply queue (exclusive, unnamed) and listen on it."""
        self._reply_queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await self._reply_queue.consume(self._on_reply_message, no_ack=True)
        return self

    async def _on_reply_message(self, message: AbstractIncomingMessage) -> None:
        try:
            matched = self.on_reply(message, self.pending)
        except Exception as exc:
            self.errors.append(exc)
            log.exception("reply handler failed on correlation id %r", message.correlation_id)
            matched = False
        if not matched:
            self.ignored += 1
            log.warning("ignored a reply with unknown correlation id %r", message.correlation_id)

    async def call(self, routing_key: str, body: bytes, *, timeout: float = 5.0) -> bytes:
        """Send ``body`` to the queue ``routing_key``; return the reply's body.

        Raises :class:`RpcTimeout` after ``timeout`` seconds; the request also expires in the
        queue then, so no server works on a call nobody is waiting for.
        """
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[correlation_id] = future
        request = aio_pika.Message(
            body,
            correlation_id=correlation_id,
            reply_to=self.reply_queue.name,
            expiration=timeout,
        )
        try:
            await self.channel.default_exchange.publish(request, routing_key=routing_key)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise RpcTimeout(
                f"no reply from {routing_key!r} within {timeout} s (is a server consuming it?)"
            ) from None
        finally:
            self.pending.pop(correlation_id, None)  # a late reply is now "unknown"


async def _square(body: bytes) -> bytes:
    n = int(body)
    if n < 0:
        raise ValueError(f"refusing negative input {n}")
    await asyncio.sleep(0.05 * n if n >= 10 else 0)  # big inputs are slow: to show the timeout
    return str(n * n).encode()


async def demo(connection: AbstractConnection, timeout: float = 0.3) -> PatternRun:
    """Three calls (answered, remote error, timed out) and one stray reply; who got what."""
    log_ = DeliveryLog()
    async with TopologyRecorder(connection) as rec:
        server_channel = await connection.channel()
        server = RpcServer(server_channel, unique("ch09.rpc"), _square)
        rec.record_queue(await server.start())
        client = await RpcClient(rec.channel).start()
        rec.record_queue(client.reply_queue)
        rec.producer("client", DEFAULT_EXCHANGE, server.queue_name)
        rec.producer("server", DEFAULT_EXCHANGE, client.reply_queue.name)
        rec.consumer("server", server.queue_name)
        rec.consumer("client", client.reply_queue)
        for n in (7, -1, 12):
            try:
                reply = text(await client.call(server.queue_name, str(n).encode(), timeout=timeout))
            except (RpcTimeout, RemoteError) as exc:
                reply = f"{type(exc).__name__}: {exc}"
            log_.record(Delivery("client", f"square({n}) -> {reply}"))
        stray = aio_pika.Message(b"?", correlation_id="not-a-call-of-mine")
        await rec.channel.default_exchange.publish(stray, routing_key=client.reply_queue.name)
        # The late reply to square(12) and the stray reply are both ignored, not raised.
        deadline = asyncio.get_running_loop().time() + 10
        while client.ignored < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await server_channel.close()
    counts = {"served": server.served, "ignored replies": client.ignored}
    return PatternRun(log_, rec.topology, counts)
