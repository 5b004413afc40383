"""The bus on a cluster (集群): a list of node URLs with failover, and quorum queues (仲裁队列).

**Several URLs.** ``--url`` (and ``$MQLAB_AMQP_URL``) may name several nodes of one cluster,
comma-separated: ``amqp://u:p@h1:5672/,amqp://u:p@h2:5672/``. Each client starts at a random
node of the list, so a pipeline's services spread over the cluster. aio-pika's
``connect_robust`` reconnects to the one URL it was given, so when that node dies, it retries a
dead address forever. :class:`FailoverConnection` is a ``RobustConnection`` that, on every
(re)connect attempt, tries the nodes in turn, starting with the one after the node it lost.
Everything else stays aio-pika's: after the reconnect it reopens channels, redeclares exchanges,
queues and bindings and restarts the consumers, exactly as for one URL. We hook the one place it
opens the socket rather than write our own reconnect loop around ``aio_pika.connect``, because
that loop would have to redo all that restoring, which aio-pika already does well.

**Quorum queues.** ``queue_type="quorum"`` (``--queue-type quorum``, ``$MQLAB_QUEUE_TYPE``)
declares every bus queue with ``x-queue-type: quorum``: a Raft-replicated queue with a leader
(主节点) on one node and followers on the others. The leader confirms a publish only once a
majority of members wrote it, so a confirmed message survives the loss of any one node of
three. Classic stays the default: on a single broker a quorum queue buys nothing.

**Why confirms and acks keep their meaning across a leader change.** A publish whose confirm
did not arrive before the connection dropped is published again by :meth:`mqlab.bus.Bus.publish`;
if the first copy did make it, the consumer drops the second by ``message_id``. A delivery whose
ack was lost with the connection (or with the leader) is redelivered to the consumer by the new
leader, and the same id check (the service journal, across restarts) makes it a no-op. So the
rules are unchanged: at-least-once on the wire, exactly-once in effect.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from aio_pika.robust_connection import RobustConnection
from yarl import URL

__all__ = [
    "ENV_QUEUE_TYPE",
    "QUEUE_TYPES",
    "FailoverConnection",
    "add_queue_type_argument",
    "apply_queue_type",
    "connect",
    "join_urls",
    "probe_any",
    "queue_arguments",
    "resolve_queue_type",
    "split_urls",
]

#: Environment variable that picks the queue type when no option does (services inherit it).
ENV_QUEUE_TYPE = "MQLAB_QUEUE_TYPE"
QUEUE_TYPES = ("classic", "quorum")


def split_urls(url: str) -> list[str]:
    """The node URLs in a comma-separated ``--url`` (one URL gives a list of one)."""
    urls = [part.strip() for part in url.split(",") if part.strip()]
    if not urls:
        raise ValueError("the AMQP URL is empty; expected amqp://user:password@host:port/vhost")
    return urls


def join_urls(urls: list[str]) -> str:
    """The one-string form of several node URLs (what ``--url`` takes)."""
    return ",".join(urls)


def resolve_queue_type(queue_type: str | None = None) -> str:
    """``queue_type``, else ``$MQLAB_QUEUE_TYPE``, else ``classic``; ValueError if unknown."""
    chosen = queue_type or os.environ.get(ENV_QUEUE_TYPE) or "classic"
    if chosen not in QUEUE_TYPES:
        source = "the option" if queue_type else f"${ENV_QUEUE_TYPE}"
        raise ValueError(
            f"unknown queue type {chosen!r} (from {source}); choose one of {', '.join(QUEUE_TYPES)}"
        )
    return chosen


def add_queue_type_argument(parser: argparse.ArgumentParser) -> None:
    """``--queue-type classic|quorum``, for the pipeline and every service."""
    parser.add_argument(
        "--queue-type",
        choices=QUEUE_TYPES,
        help="type of every queue the bus declares: classic (default) or quorum (replicated "
        f"over a cluster's nodes; see docs/setup.md) (default: ${ENV_QUEUE_TYPE}, else classic)",
    )


def apply_queue_type(args: argparse.Namespace) -> str:
    """Make ``args.queue_type`` the process's default (ValueError if unknown); returns it.

    It goes into ``$MQLAB_QUEUE_TYPE``, so every :class:`mqlab.bus.Bus` of this process and
    every service the pipeline starts as a child process declares the same queue type: two
    services that disagree would have their queue declarations refused by the broker.
    """
    chosen = resolve_queue_type(getattr(args, "queue_type", None))
    os.environ[ENV_QUEUE_TYPE] = chosen
    return chosen


def queue_arguments(queue_type: str) -> dict[str, Any]:
    """The ``queue.declare`` arguments that make a queue of ``queue_type``.

    Classic adds nothing, so queues declared before this option existed stay equivalent (a
    redeclare with different arguments is refused with PRECONDITION_FAILED).
    """
    return {"x-queue-type": "quorum"} if queue_type == "quorum" else {}


class FailoverConnection(RobustConnection):
    """A robust connection over several node URLs: each attempt tries them in turn.

    It overrides ``RobustConnection``'s private ``__connect_transport`` (the one method that
    opens the socket, called for the first connect and for every reconnect); a test checks
    that aio-pika still has it, so an upgrade that renames it fails loudly, not silently.
    """

    def __init__(self, urls: list[str], start: int | None = None, **kwargs: Any) -> None:
        if not urls:
            raise ValueError("FailoverConnection needs at least one URL")
        # A random first node unless told: the services of one pipeline then spread over
        # the cluster, and a node's death moves only its own clients, not all of them.
        self.node_index = random.randrange(len(urls)) if start is None else start % len(urls)
        super().__init__(URL(urls[self.node_index]), **kwargs)
        self.urls = [URL(u) for u in urls]
        #: The node the next attempt starts with (node_index), and the one the connection
        #: is (or was last) on.
        self.connected_index: int | None = None
        #: How many times the connection moved to another node (a reconnect to the same one
        #: does not count).
        self.failovers = 0

    async def _RobustConnection__connect_transport(self) -> None:
        parent = RobustConnection._RobustConnection__connect_transport  # type: ignore[attr-defined]
        last: BaseException | None = None
        start = self.node_index  # fixed now: a failed attempt's close callback moves it
        for step in range(len(self.urls)):
            index = (start + step) % len(self.urls)
            self.url = self.urls[index]
            try:
                await parent(self)
            except CONNECTION_EXCEPTIONS as exc:
                last = exc
                continue
            if self.connected_index is not None and index != self.connected_index:
                self.failovers += 1
            self.node_index = self.connected_index = index
            return
        assert last is not None
        raise last

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # The node we were on went away: the next attempt starts with the next node, so a
        # dead host (which may time out rather than refuse) is tried last.
        if not (self._close_called or self.is_closed) and self.connected_index is not None:
            self.node_index = (self.connected_index + 1) % len(self.urls)
        await super()._on_connection_close(closing)


async def connect(url: str, start: int | None = None, **kwargs: Any) -> AbstractRobustConnection:
    """``aio_pika.connect_robust`` for one URL; a :class:`FailoverConnection` for several,
    starting at node ``start`` (default: a random one)."""
    urls = split_urls(url)
    if len(urls) == 1:
        return await aio_pika.connect_robust(urls[0], **kwargs)
    timeout = kwargs.pop("timeout", None)
    connection = FailoverConnection(urls, start=start, **kwargs)
    await connection.connect(timeout=timeout)
    return connection


async def probe_any(url: str, timeout: float = 10.0) -> str:
    """Connect once to the first node of ``url`` that answers and leave; returns that URL.

    Raises the last node's error when none answers.
    """
    last: BaseException | None = None
    for one in split_urls(url):
        try:
            connection = await aio_pika.connect(one, timeout=timeout)
        except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
            last = exc
            continue
        await connection.close()
        return one
    assert last is not None
    raise last
