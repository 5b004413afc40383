"""The reliable message bus every pipeline service shares: nothing lost, nothing applied twice.

aioquant moves its events through RabbitMQ too, but it declares ``auto_delete`` queues, never
waits for a publisher confirm and acks a message *before* its handler runs, so a crash or a
broker restart silently loses events. This bus fixes each of those, one rule at a time:

* **connect_robust**: the connection and every channel, exchange, queue, binding and consumer
  come back by themselves after a broker restart or a dropped socket;
* **durable topic exchanges** and **durable queues, never auto_delete**, so a consumer that is
  down does not make the broker forget what it owes it;
* **persistent messages**, **publisher confirms** and ``mandatory`` publishing: ``publish``
  returns only once the broker has taken responsibility for the message, raises
  :class:`Unroutable` when no queue would receive it, and retries across reconnects;
* **ack after the handler succeeded**, one message at a time per subscription, in order (acks
  are sent for several messages at once, ``multiple=True``, when the inbox runs dry or every
  ``ack_every`` messages: nothing is acked before its handler returned);
* **idempotent handling** keyed by ``message_id`` (the event, order or fill id): a retried
  publish or a redelivery after a crash is acked and skipped, never applied twice;
* a **dead-letter queue** for malformed or unprocessable messages: the original body, with the
  reason in the ``x-mqlab-reason`` header, and the service carries on with the next message.

Names are ``{prefix}.{name}``, so several pipelines (or test runs) can share one RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import aio_pika
import aio_pika.exceptions as amqp_errors
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.abc import DeliveredMessage

from mqlab.connection import connect_errors
from mqlab.delivery import Delivery, Handler, IdleHook, IdStore, Reject, SeenIds

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "DEAD_LETTER_QUEUE",
    "HEADER_QUEUE",
    "HEADER_REASON",
    "Bus",
    "BusError",
    "BusStats",
    "Delivery",
    "Handler",
    "Outgoing",
    "Reject",
    "SeenIds",
    "Subscription",
    "Unroutable",
    "probe",
]

log = logging.getLogger(__name__)

#: Header that carries why a message was dead-lettered.
HEADER_REASON = "x-mqlab-reason"
#: Header that names the queue the dead-lettered message came from.
HEADER_QUEUE = "x-mqlab-queue"
#: Suffixes of the dead-letter exchange and queue (after the bus prefix).
DEAD_LETTER_EXCHANGE = "dlx"
DEAD_LETTER_QUEUE = "dlq"

# Errors that mean "the connection or channel went away", not "this message is bad".
_TRANSIENT: tuple[type[BaseException], ...] = (
    amqp_errors.AMQPConnectionError,
    amqp_errors.ChannelInvalidStateError,
    amqp_errors.ChannelClosed,
    amqp_errors.DeliveryError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
    RuntimeError,  # aiormq raises it for a write on a closed transport
)


def _transient(exc: BaseException) -> bool:
    # When the broker's side of a connection ends at a frame boundary, aiormq's reader stops
    # without an error and rejects every pending future (a publish's confirmation, an RPC)
    # with a bare ``Exception``: that is a lost connection too, not a bad message.
    return isinstance(exc, _TRANSIENT) or type(exc) is Exception


class _IgnoreTransient(contextlib.AbstractContextManager[None]):
    """``contextlib.suppress`` for the errors of a connection that went away."""

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> bool:
        return exc is not None and _transient(exc)


_ignore_transient = _IgnoreTransient()


class BusError(RuntimeError):
    """The bus could not do what it promised (e.g. the broker stayed away too long)."""


class Unroutable(BusError):
    """A mandatory publish matched no queue: it would have been dropped silently."""


@dataclass(frozen=True)
class Outgoing:
    """A message to publish; ``message_id`` must be deterministic, since consumers drop a
    repeated id (a service's journal replays what it published)."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    headers: Mapping[str, Any] = field(default_factory=dict)
    type: str | None = None

    async def publish(self, bus: Bus) -> None:
        """:meth:`Bus.publish` this message (confirmed)."""
        await bus.publish(
            self.exchange, self.routing_key, self.body, message_id=self.message_id,
            headers=self.headers, type=self.type,
        )  # fmt: skip


@dataclass
class BusStats:
    """Counters a service prints at the end; the fault tests read them."""

    published: int = 0
    publish_retries: int = 0
    delivered: int = 0
    handled: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    #: Messages published and delivered, by the first word of their routing key (``kline``,
    #: ``done``, ``fill`` ...): what a pipeline's messages per market event are made of.
    kinds: dict[str, int] = field(default_factory=dict)

    def count(self, routing_key: str) -> None:
        kind = routing_key.partition(".")[0]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__ | {"kinds": dict(self.kinds)}


@dataclass(eq=False, repr=False)
class Subscription:
    """One durable queue, its bindings, and a single worker that handles deliveries in order.

    aio-pika runs each consumer callback as its own task, so two messages could be handled at
    once and out of order. Here the callback only puts the message in an inbox; one worker
    takes them out one by one, calls the handler, and acks only when it returned.
    """

    bus: Bus
    queue: AbstractQueue
    channel: AbstractChannel
    handler: Handler
    seen: IdStore
    on_idle: IdleHook | None = None
    ack_every: int = 64
    stats: BusStats = field(default_factory=BusStats, init=False)
    _inbox: asyncio.Queue[DeliveredMessage] = field(default_factory=asyncio.Queue, init=False)
    _unacked: int = field(default=0, init=False)
    _tag: str | None = field(default=None, init=False)
    _worker: asyncio.Task[None] | None = field(default=None, init=False)
    _restoring: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    @property
    def name(self) -> str:
        return self.queue.name

    async def start(self) -> Subscription:
        self._worker = asyncio.create_task(self._work(), name=f"bus:{self.name}")
        await self._consume()
        # The robust channel declares the queue again after a reconnect; the consumer is ours.
        self.channel.reopen_callbacks.add(self._reopened)  # type: ignore[attr-defined]
        return self

    def _reopened(self, *_: object) -> None:
        # Not awaited here: the channel's restore calls this before the connection counts as
        # ready again, and consuming waits for that.
        task = asyncio.get_running_loop().create_task(self._consume_again())
        self._restoring.add(task)
        task.add_done_callback(self._restoring.discard)

    async def _consume_again(self) -> None:
        try:
            await self._consume()
        except Exception as exc:
            if not _transient(exc):
                raise
            # Cut again meanwhile: the next reopen consumes.
            log.info("%s: consuming after a reconnect failed: %r", self.name, exc)

    async def _consume(self) -> None:
        # aiormq's consumer directly, without aio-pika's IncomingMessage and the extra task it
        # starts for each delivery: at a few thousand deliveries a second that was a tenth of
        # a service's time. The message goes to the inbox as aiormq read it.
        underlay = await self.channel.get_underlay_channel()
        ok = await underlay.basic_consume(self.queue.name, self._deliver, no_ack=False)
        self._tag = ok.consumer_tag

    async def _deliver(self, message: DeliveredMessage) -> None:
        self._inbox.put_nowait(message)

    async def stop(self) -> None:
        """Stop consuming; unacked messages go back to the queue for the next consumer."""
        for task in self._restoring:
            task.cancel()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        with _ignore_transient:
            await self.channel.close()

    @property
    def worker(self) -> asyncio.Task[None] | None:
        """The task handling deliveries; it ends only by cancellation or a fatal bus error."""
        return self._worker

    @property
    def idle(self) -> bool:
        """Nothing waits in the inbox (the broker may still have messages on the way)."""
        return self._inbox.empty()

    async def _work(self) -> None:
        while True:
            message = await self._inbox.get()
            await self._handle(message)
            self._unacked += 1
            dry = self._inbox.empty()
            if dry or self._unacked >= self.ack_every:
                # Every message up to this one was handled: one ack settles them all.
                await _settle(message, multiple=True)
                self._unacked = 0
            if dry and self.on_idle is not None:
                await self.on_idle()

    async def _handle(self, message: DeliveredMessage) -> None:
        self.stats.delivered += 1
        self.stats.count(message.routing_key or "")
        delivery = Delivery.of(message, self.name)
        key = delivery.message_id
        if key and key in self.seen:
            self.stats.duplicates += 1
            return
        try:
            await self.handler(delivery)
        except asyncio.CancelledError:
            raise
        except BusError:
            raise  # the bus itself failed: stop this worker, leave the message unacked
        except Exception as exc:
            reason = exc.reason if isinstance(exc, Reject) else f"{type(exc).__name__}: {exc}"
            log.warning("dead-lettering %s from %s: %s", key, self.name, reason)
            await self.bus.dead_letter(delivery, reason)
            self.stats.dead_lettered += 1
        else:
            self.stats.handled += 1
        if key:
            self.seen.add(key)


async def _settle(message: DeliveredMessage, multiple: bool = False) -> None:
    # On the channel that delivered it: a delivery tag means nothing on any other. After a
    # reconnect that channel is gone; the broker redelivers the message and the id store turns
    # that redelivery into a no-op, so losing this ack is harmless.
    tag = message.delivery_tag
    if tag is not None:
        with _ignore_transient:
            # wait=False: queued for the connection's writer, not awaited until written (it
            # is written before anything the channel sends later, e.g. its close).
            await message.channel.basic_ack(tag, multiple=multiple, wait=False)


class Bus:
    """A robust connection plus the rules above; use as ``async with Bus(url) as bus``.

    ``url=None`` asks :func:`mqlab.connection.broker_url` (``MQLAB_AMQP_URL``, else the
    embedded broker). Every name the bus declares starts with ``prefix``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "mqlab",
        prefetch: int = 256,
        publish_timeout: float = 120.0,
        reconnect_interval: float = 0.5,
        connect_timeout: float = 10.0,
        queue_type: str | None = None,
    ) -> None:
        from mqlab.ha import queue_arguments, resolve_queue_type

        self.url = url
        #: "classic" or "quorum" (mqlab.ha): the type of every queue this bus declares.
        self.queue_type = resolve_queue_type(queue_type)
        self._queue_arguments = queue_arguments(self.queue_type)
        self.prefix = prefix
        self.prefetch = prefetch
        self.publish_timeout = publish_timeout
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self.stats = BusStats()
        self.connection: AbstractRobustConnection | None = None
        self.subscriptions: list[Subscription] = []
        #: What this bus declared: ``{"exchanges": {...}, "queues": {...}, "bindings": [...]}``.
        self.declared: dict[str, Any] = {"exchanges": {}, "queues": {}, "bindings": []}
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    def name(self, suffix: str) -> str:
        """The broker-side name of ``suffix`` under this bus's prefix."""
        return f"{self.prefix}.{suffix}"

    async def __aenter__(self) -> Bus:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> Bus:
        url = self.url
        if url is None:
            from mqlab.connection import broker_url

            url = self.url = broker_url()
        from mqlab.ha import connect  # several comma-separated URLs: fail over between them

        with connect_errors(url, unavailable=BusError, invalid=BusError):
            self.connection = await connect(
                url, reconnect_interval=self.reconnect_interval, timeout=self.connect_timeout
            )
        self._channel = await self.connection.channel(
            publisher_confirms=True, on_return_raises=True
        )
        dlx = await self.declare_exchange(DEAD_LETTER_EXCHANGE)
        dlq = await self._channel.declare_queue(
            self.name(DEAD_LETTER_QUEUE), durable=True, arguments=self._queue_arguments
        )
        await dlq.bind(dlx, "#")
        self.declared["queues"][dlq.name] = dict(self._queue_arguments)
        self.declared["bindings"].append((dlx.name, dlq.name, "#"))
        return self

    async def close(self) -> None:
        for subscription in self.subscriptions:  # kept in the list: their counters stay readable
            await subscription.stop()
        if self.connection is not None:
            with _ignore_transient:
                await self.connection.close()
            self.connection = None

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise BusError("the bus is not started; use `async with Bus(url) as bus:`")
        return self._channel

    async def declare_exchange(self, suffix: str) -> AbstractExchange:
        """A durable topic exchange ``{prefix}.{suffix}`` (declared once, then cached)."""
        name = self.name(suffix)
        if name not in self._exchanges:
            self._exchanges[name] = await self.channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            self.declared["exchanges"][name] = "topic"
        return self._exchanges[name]

    async def declare_queue(
        self,
        suffix: str,
        bindings: Iterable[tuple[str, str]],
        channel: AbstractChannel | None = None,
    ) -> AbstractQueue:
        """A durable queue ``{prefix}.{suffix}`` bound by ``(exchange suffix, pattern)`` pairs.

        Its dead-letter exchange is the bus's, so even a message the broker itself rejects
        (say, one nacked without requeue by some other client) lands in the DLQ.
        """
        arguments: dict[str, Any] = {"x-dead-letter-exchange": self.name(DEAD_LETTER_EXCHANGE)}
        arguments.update(self._queue_arguments)
        queue = await (channel or self.channel).declare_queue(
            self.name(suffix), durable=True, arguments=arguments
        )
        self.declared["queues"][queue.name] = arguments
        for exchange_suffix, pattern in bindings:
            exchange = await self.declare_exchange(exchange_suffix)
            await queue.bind(exchange, pattern)
            binding = (exchange.name, queue.name, pattern)
            if binding not in self.declared["bindings"]:
                self.declared["bindings"].append(binding)
        return queue

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        type: str | None = None,
    ) -> None:
        """Publish a persistent message and return once the broker confirmed it.

        Retries across reconnects for up to ``publish_timeout`` seconds; a retry can make a
        duplicate, which consumers drop by ``message_id``. Raises :class:`Unroutable` when no
        queue is bound for ``routing_key``: start the consumers (or declare the queues) first.
        """
        target = self._exchanges.get(self.name(exchange)) or await self.declare_exchange(exchange)
        # The frame's properties directly (aio-pika's Message would build the same ones).
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=2,  # persistent
            message_id=message_id,
            headers=dict(headers or {}),
            message_type=type,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout
        while True:
            try:
                # aiormq's own channel: its basic_publish takes ``wait`` (its abstract one not).
                channel = cast(aiormq.Channel, await self.channel.get_underlay_channel())
                await channel.basic_publish(
                    body,
                    exchange=target.name,
                    routing_key=routing_key,
                    properties=properties,
                    mandatory=True,
                    timeout=10,
                    # Queued for the connection's writer, in order, without waiting until it
                    # is written: the confirm below is what counts (a lost connection fails
                    # it too), and the channel's lock is free for the next publish at once.
                    wait=False,
                )
            except amqp_errors.PublishError as exc:
                raise Unroutable(
                    f"no queue is bound to {target.name!r} for routing key {routing_key!r}; "
                    "start the consuming services (or declare their queues) before publishing"
                ) from exc
            except Exception as exc:
                if not _transient(exc):
                    raise
                if loop.time() > deadline:
                    raise BusError(
                        f"publish to {target.name} failed for {self.publish_timeout:.0f} s: {exc}"
                    ) from exc
                self.stats.publish_retries += 1
                await asyncio.sleep(self.reconnect_interval)
                with _ignore_transient:
                    await asyncio.wait_for(self.channel.ready(), self.publish_timeout)  # type: ignore[attr-defined]
            else:
                self.stats.published += 1
                self.stats.count(routing_key)
                return

    async def subscribe(
        self,
        suffix: str,
        bindings: Iterable[tuple[str, str]],
        handler: Handler,
        *,
        prefetch: int | None = None,
        seen: IdStore | None = None,
        on_idle: IdleHook | None = None,
    ) -> Subscription:
        """Consume queue ``{prefix}.{suffix}`` (declared and bound here) with ``handler``.

        The queue gets its own channel, so its prefetch window and its redeliveries do not
        interfere with other subscriptions of the same service.
        """
        if self.connection is None:
            raise BusError("the bus is not started; use `async with Bus(url) as bus:`")
        channel = await self.connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch or self.prefetch)
        queue = await self.declare_queue(suffix, bindings, channel)
        subscription = Subscription(self, queue, channel, handler, seen or SeenIds(), on_idle)
        self.subscriptions.append(subscription)  # before start: close() must find it
        return await subscription.start()

    def idle(self) -> bool:
        """No subscription of this bus has a delivery waiting to be handled."""
        return all(s.idle for s in self.subscriptions)

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Park ``delivery`` in the DLQ with ``reason`` in its headers (confirmed)."""
        headers = dict(delivery.headers)
        headers[HEADER_REASON] = reason[:1000]
        headers[HEADER_QUEUE] = delivery.queue
        headers["x-mqlab-exchange"] = delivery.exchange
        await self.publish(
            DEAD_LETTER_EXCHANGE,
            delivery.routing_key or "unknown",
            delivery.body,
            message_id=delivery.message_id or f"dead-{time.time_ns()}",
            headers=headers,
            type=delivery.type,
        )
        self.stats.dead_lettered += 1

    async def dead_letters(self, limit: int = 1000) -> list[Delivery]:
        """Read (and ack) what sits in the DLQ, e.g. to show it or to count it in a test."""
        queue = await self.channel.declare_queue(
            self.name(DEAD_LETTER_QUEUE), durable=True, arguments=self._queue_arguments
        )
        found: list[Delivery] = []
        while len(found) < limit and (message := await queue.get(no_ack=False, fail=False)):
            found.append(Delivery.of(message, queue.name))
            await message.ack()
        return found

    async def wait_for_consumers(
        self,
        queues: Iterable[str],
        timeout: float = 60.0,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        """Wait until each queue (suffix) exists and has a consumer; say which one is missing.

        A publisher that starts before its consumers bound their queues would see its first
        messages dropped (or, with ``mandatory``, refused); the market service calls this first.
        ``on_wait(queue)`` is called once for each queue that has to be waited for.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.connection is None:
            raise BusError("the bus is not started; use `async with Bus(url) as bus:`")
        for suffix in queues:
            told = False
            while True:
                probe = await self.connection.channel(publisher_confirms=False)
                try:
                    queue = await probe.declare_queue(self.name(suffix), passive=True)
                    consumers = queue.declaration_result.consumer_count
                except amqp_errors.ChannelClosed:
                    consumers = 0
                finally:
                    with _ignore_transient:
                        await probe.close()
                if consumers:
                    break
                if on_wait is not None and not told:
                    on_wait(self.name(suffix))
                    told = True
                if loop.time() > deadline:
                    raise BusError(
                        f"no consumer on queue {self.name(suffix)!r} after {timeout:.0f} s; "
                        "start the service that reads it (see `python -m mqlab --help`)"
                    )
                await asyncio.sleep(0.1)

    async def delete(self) -> None:
        """Delete every queue and exchange this bus declared (tests; a pipeline keeps them)."""
        for subscription in self.subscriptions:
            await subscription.stop()
        self.subscriptions.clear()
        for name in self.declared["queues"]:
            with _ignore_transient:
                await self.channel.queue_delete(name)
        for name in self.declared["exchanges"]:
            with _ignore_transient:
                await self.channel.exchange_delete(name)


async def probe(url: str, timeout: float = 10.0) -> None:
    """Connect to ``url`` once and leave; :class:`BusError` says what is wrong and what to do.

    For a check before starting anything that leaves traces (state directories, services).
    """
    from mqlab.ha import probe_any  # any one node of a comma-separated list will do

    with connect_errors(url, unavailable=BusError, invalid=BusError):
        await probe_any(url, timeout=timeout)
