"""Declare and record: :class:`TopologyRecorder` declares through aio-pika and writes each
declaration into a :class:`~mqlab.topology.graph.Topology`.

:meth:`TopologyRecorder.verify` then asks the broker, with passive declares, whether each
exchange and queue really exists (and how many messages each queue holds): a
:class:`Verification`. AMQP 0-9-1 has no passive *bind*, so bindings are recorded as declared;
on the embedded broker, :meth:`~mqlab.topology.graph.Topology.from_broker` reads them from the
broker itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractQueue,
    ExchangeType,
)

from mqlab.topology.graph import (
    Binding,
    ExchangeSpec,
    QueueSpec,
    Topology,
    short_name,
)

__all__ = ["TopologyRecorder", "Verification"]


@dataclass
class Verification:
    """What passive declares found: existence of each name, and each queue's counts."""

    exchanges: dict[str, bool] = field(default_factory=dict)
    queues: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.exchanges.values()) and all(v is not None for v in self.queues.values())

    def __str__(self) -> str:
        lines = [
            f"exchange {short_name(n)!r}: {'ok' if v else 'MISSING'}"
            for n, v in self.exchanges.items()
        ]
        for name, counts in self.queues.items():
            state = "MISSING" if counts is None else f"ok, {counts[0]} ready, {counts[1]} consumers"
            lines.append(f"queue    {short_name(name)!r}: {state}")
        return "\n".join(lines)


class TopologyRecorder:
    """Declares through aio-pika on its own channel and records every declaration.

    Use as ``async with TopologyRecorder(connection) as rec:``; on exit everything it declared
    is deleted (pass ``keep=True`` to leave it on the broker).
    """

    def __init__(self, connection: AbstractConnection, *, keep: bool = False) -> None:
        self.connection = connection
        self.keep = keep
        self.topology = Topology(vhost=_vhost(connection))
        self._channel: AbstractChannel | None = None

    @property
    def channel(self) -> AbstractChannel:
        if self._channel is None:
            raise RuntimeError(
                "use `async with TopologyRecorder(conn) as rec:` or await rec.open()"
            )
        return self._channel

    async def open(self) -> TopologyRecorder:
        self._channel = await self.connection.channel()
        return self

    async def __aenter__(self) -> TopologyRecorder:
        return await self.open()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Close first: that cancels our consumers, so deleting a queue cancels nobody's.
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        if not self.keep:
            await self.delete_all()

    async def exchange(
        self,
        name: str,
        type: ExchangeType | str = ExchangeType.DIRECT,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> AbstractExchange:
        """``exchange_declare`` and record it."""
        exchange = await self.channel.declare_exchange(
            name, type, durable=durable, auto_delete=auto_delete, arguments=arguments
        )
        kind = type.value if isinstance(type, ExchangeType) else str(type)
        self.topology.exchanges[name] = ExchangeSpec(
            name, kind, durable, auto_delete, dict(arguments or {})
        )
        return exchange

    async def queue(
        self,
        name: str = "",
        *,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> AbstractQueue:
        """``queue_declare`` and record it (when ``name`` is '', under the name it was given).

        An unnamed queue is named by the broker (``amq.gen-…``), or, on a robust channel, by
        aio-pika itself (``amq_<uuid>``, so the queue can be declared again after a reconnect).
        """
        queue = await self.channel.declare_queue(
            name or None,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=arguments,
        )
        self.topology.queues[queue.name] = QueueSpec(
            queue.name, durable, exclusive, auto_delete, dict(arguments or {})
        )
        return queue

    def record_queue(self, queue: AbstractQueue) -> None:
        """Record a queue declared elsewhere (e.g. on another channel)."""
        self.topology.queues[queue.name] = QueueSpec(
            queue.name,
            bool(queue.durable),
            bool(queue.exclusive),
            bool(queue.auto_delete),
            dict(queue.arguments or {}),
        )

    async def bind(
        self, queue: AbstractQueue | str, exchange: AbstractExchange | str, routing_key: str = ""
    ) -> None:
        """``queue_bind`` and record it."""
        if isinstance(queue, str):
            queue = await self.channel.get_queue(queue, ensure=False)
        x = exchange if isinstance(exchange, str) else exchange.name
        await queue.bind(x, routing_key)
        self.topology.bindings.append(Binding(x, queue.name, routing_key))

    def producer(
        self,
        name: str,
        exchange: AbstractExchange | str,
        routing_key: str | Sequence[str] | None = None,
    ) -> None:
        """Note that ``name`` publishes to ``exchange`` with ``routing_key`` (one or several).

        For the drawing only: the keys label the producer's arrow into the exchange.
        """
        x = exchange if isinstance(exchange, str) else exchange.name
        key = (
            routing_key
            if routing_key is None or isinstance(routing_key, str)
            else tuple(routing_key)
        )
        self.topology.producers[name] = (x, key)

    def consumer(self, name: str, queue: AbstractQueue | str) -> None:
        """Note that ``name`` consumes from ``queue`` (for the drawing only)."""
        self.topology.consumers[name] = queue if isinstance(queue, str) else queue.name

    async def verify(self) -> Verification:
        """Passively declare every recorded exchange and queue; record queue depths."""
        result = Verification()
        for name in self.topology.exchanges:
            result.exchanges[name] = await self._passive(lambda ch, n=name: ch.get_exchange(n))
        for name in self.topology.queues:
            found: list[tuple[int, int]] = []

            async def probe(
                ch: AbstractChannel, n: str = name, found: list[tuple[int, int]] = found
            ) -> None:
                ok = (await ch.get_queue(n)).declaration_result
                found.append((int(ok.message_count or 0), int(ok.consumer_count or 0)))

            result.queues[name] = found[0] if await self._passive(probe) else None
            if found:
                self.topology.ready[name] = found[0][0]
        return result

    async def live(self) -> Topology:
        """What the broker really holds of what was recorded, read back from the broker.

        On the process's embedded broker (``mqlab.connect()`` without ``MQLAB_AMQP_URL``) this
        is the broker's own snapshot, bindings included. On RabbitMQ, passive declares confirm
        each exchange and queue and give queue depths; bindings stay as recorded, because AMQP
        cannot list them (the management UI can: http://127.0.0.1:15672).
        """
        found = await self.verify()
        mine = self.topology
        broker = _embedded_serving(self.connection)
        if broker is not None:
            snap = Topology.from_broker(broker)
            exchanges = {n: snap.exchanges[n] for n in mine.exchanges if n in snap.exchanges}
            queues = {n: snap.queues[n] for n in mine.queues if n in snap.queues}
            bindings = snap.bindings
            ready = {n: snap.ready[n] for n in queues if n in snap.ready}
            source = "live, from the embedded broker"
        else:
            exchanges = {n: e for n, e in mine.exchanges.items() if found.exchanges.get(n)}
            queues = {n: q for n, q in mine.queues.items() if found.queues.get(n) is not None}
            bindings, ready = mine.bindings, dict(mine.ready)
            source = "live: exchanges and queues verified on the broker"
        kept = [b for b in bindings if b.exchange in exchanges and b.queue in queues]
        return Topology(
            exchanges,
            queues,
            kept,
            dict(mine.producers),
            dict(mine.consumers),
            ready,
            source,
            mine.vhost,
        )

    async def _passive(self, action: Any) -> bool:
        # A failed passive declare closes its channel (404), so each probe gets a fresh one.
        channel = await self.connection.channel()
        try:
            await action(channel)
        except aio_pika.exceptions.ChannelClosed:
            return False
        finally:
            if not channel.is_closed:
                await channel.close()
        return True

    async def delete_all(self) -> None:
        """Delete every recorded queue and exchange (ignoring those already gone)."""
        for name in self.topology.queues:
            await self._passive(lambda ch, n=name: ch.queue_delete(n))
        for name in self.topology.exchanges:
            await self._passive(lambda ch, n=name: ch.exchange_delete(n))


def _vhost(connection: AbstractConnection) -> str:
    """The virtual host in the connection's URL (``/`` when the path is empty or ``/``)."""
    path = getattr(getattr(connection, "url", None), "path", "/") or "/"
    return path[1:] or "/"


def _embedded_serving(connection: AbstractConnection) -> Any | None:
    """The process's embedded broker if ``connection`` goes to it, else None."""
    from mqlab import connection as mq

    if os.environ.get(mq.ENV_URL):
        return None  # a real broker was asked for; don't start an embedded one to compare
    broker = mq.embedded_broker()
    url = getattr(connection, "url", None)
    if url is None or urlsplit(broker.url).port != getattr(url, "port", None):
        return None
    return broker
