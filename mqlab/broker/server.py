"""The broker itself (消息代理): the TCP listener, its connections, the memory high watermark
and the once-per-turn output flush.

:class:`Broker` listens; each client gets a :class:`~mqlab.broker.connection.Connection`
(handshake, frames in and out, heartbeats). Replies are appended to each connection's output
list; the broker writes every connection's output once per event-loop turn, after committing
the store, so publisher confirms follow the fsync. Past ``memory_limit`` bytes of messages held,
publishers are blocked (RabbitMQ's ``vm_memory_high_watermark``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from mqlab.broker.connection import Connection, TraceHook
from mqlab.broker.store import Store
from mqlab.broker.vhost import Topology, VirtualHost

__all__ = ["Broker", "Connection", "TraceHook"]

log = logging.getLogger("mqlab.broker")

#: Default memory high watermark: bytes of messages held before publishers are blocked.
DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024
#: Estimated bytes a queued message costs beyond its body (objects, header, deque slot).
MESSAGE_OVERHEAD = 400
MEMORY_CHECK_INTERVAL = 0.05  # s
#: With a data dir, bodies of stored messages are paged out past this share of the limit...
PAGE_OUT_AT = 0.5
#: ... down to this share.
PAGE_OUT_TO = 0.4


class Broker:
    """An embedded AMQP 0-9-1 broker (one vhost ``/``) serving aio-pika over TCP.

    >>> async with Broker(port=0) as broker:          # doctest: +SKIP
    ...     conn = await aio_pika.connect_robust(broker.url)

    ``data_dir`` makes durable exchanges/queues/bindings and persistent messages survive a
    restart; without it everything lives in memory. ``trace`` is called for every frame
    (see :mod:`mqlab.broker.frametrace`).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5672,
        data_dir: str | Path | None = None,
        users: Mapping[str, str] | None = None,
        trace: TraceHook | None = None,
        *,
        heartbeat: int = 60,
        frame_max: int = 131072,
        channel_max: int = 2047,
        handshake_timeout: float = 10.0,
        max_message_size: int = 128 * 1024 * 1024,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        login_delay: float = 3.0,
        loopback_users: Collection[str] = ("guest",),
    ) -> None:
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.users = dict(users) if users is not None else {"guest": "guest"}
        self.trace = trace
        self.heartbeat = heartbeat
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.handshake_timeout = handshake_timeout
        self.max_message_size = max_message_size  # RabbitMQ 3.10's default: 128 MiB
        self.memory_limit = memory_limit  # bytes of messages held; None: no limit
        self.login_delay = login_delay  # s before a refused login is answered
        self.loopback_users = frozenset(loopback_users)  # may log in from loopback only
        self.alarm = False  # over memory_limit: publishers are blocked
        self._memory_timer: asyncio.TimerHandle | None = None
        self.connections: set[Connection] = set()
        self.connection_ids = itertools.count(1)
        self.decoded: dict[bytes, Any] = {}  # raw frame -> pamqp object (see Connection._parse)
        self.store: Store | None = None
        self._server: asyncio.Server | None = None
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.vhost: VirtualHost = None  # type: ignore[assignment]

    @property
    def url(self) -> str:
        """``amqp://user:password@host:port/`` of the first configured user."""
        user, password = next(iter(self.users.items()))
        return f"amqp://{user}:{password}@{self.host}:{self.port}/"

    @property
    def display_url(self) -> str:
        """:attr:`url` with the password masked (but guest's, which everyone knows): for logs."""
        user, password = next(iter(self.users.items()))
        if (user, password) != ("guest", "guest"):
            password = "****"
        return f"amqp://{user}:{password}@{self.host}:{self.port}/"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> Broker:
        if self._server is not None:
            return self
        self.loop = asyncio.get_running_loop()
        self.store = Store(self.data_dir) if self.data_dir is not None else None
        if self.store is not None:
            self.store.on_dirty = self._request_flush
        self.vhost = VirtualHost(self.loop, self.store)
        self._server = await self.loop.create_server(
            lambda: Connection(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mqlab broker listening on %s", self.display_url)
        if self.memory_limit is not None:
            self._memory_timer = self.loop.call_later(MEMORY_CHECK_INTERVAL, self._check_memory)
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._memory_timer is not None:
            self._memory_timer.cancel()
            self._memory_timer = None
        for conn in list(self.connections):
            conn.close()
        self._flush_all()
        await asyncio.sleep(0)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await server.wait_closed()
        if self.store is not None:
            self.store.close()
            self.store = None

    async def __aenter__(self) -> Broker:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def topology(self) -> Topology:
        """Exchanges, queues (ready/unacked/consumers) and bindings right now."""
        return self.vhost.topology()

    # -- memory high watermark -------------------------------------------------------------

    def memory_used(self) -> int:
        """Bytes the broker holds for messages: an estimate, see :data:`MESSAGE_OVERHEAD`.

        Ready and unacked bodies, a fixed overhead per message, and replies not yet written
        to slow sockets. It counts what the broker holds, not the process RSS, because the
        broker often shares its process (a Jupyter kernel, a test run) with much else.
        """
        used = 0
        for q in self.vhost.queues.values():
            held = q.bytes - q.paged_bytes + q.unacked_bytes
            used += held + MESSAGE_OVERHEAD * (len(q.messages) + q.unacked)
        for conn in self.connections:
            if conn.transport is not None:
                used += conn.transport.get_write_buffer_size()
        return used

    def _check_memory(self) -> None:
        """Raise or clear the memory alarm (RabbitMQ's vm_memory_high_watermark)."""
        self._memory_timer = None
        if self._server is None or self.memory_limit is None:
            return
        used = self.memory_used()
        if self.store is not None and used > self.memory_limit * PAGE_OUT_AT:
            # With a data dir, stored bodies leave RAM before publishers are blocked.
            used -= self.vhost.page_out(int(used - self.memory_limit * PAGE_OUT_TO))
        if not self.alarm and used > self.memory_limit:
            self.alarm = True
            log.warning(
                "memory alarm: %d MiB held > limit %d MiB; blocking publishers",
                used >> 20,
                self.memory_limit >> 20,
            )
            for conn in list(self.connections):
                conn.block()
        elif self.alarm and used <= self.memory_limit:
            self.alarm = False
            log.warning("memory alarm cleared: %d MiB held; unblocking publishers", used >> 20)
            for conn in list(self.connections):
                conn.unblock()
        self._memory_timer = self.loop.call_later(MEMORY_CHECK_INTERVAL, self._check_memory)

    # -- output batching -------------------------------------------------------------------

    def schedule_flush(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_all)

    def _request_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_all)

    def _flush_all(self) -> None:
        self._flush_scheduled = False
        if self.store is not None:
            self.store.commit()  # fsync before any confirm of this turn goes out
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            conn.flush()
