"""A queue (队列): an ordered buffer of messages handed round-robin to its consumers.

What happens to a message in a queue, in the order RabbitMQ does it:

* it is appended at the tail (of its priority's line in an ``x-max-priority`` queue, where
  higher priorities are served first); ``x-max-length`` / ``x-max-length-bytes`` then drop (or
  dead-letter) from the head, or refuse the new message when ``x-overflow=reject-publish``;
* it is delivered from the head to the next consumer whose prefetch window has room
  (consumers take turns: round-robin);
* once delivered it waits, *unacked*, on the consumer's channel; an ack removes it, a
  nack/reject with ``requeue=True`` (or a dead channel, or ``basic.recover``) puts it back
  in its original position, ahead of everything that arrived after it, with
  ``redelivered=True``; without requeue it is dead-lettered or dropped;
* with ``x-single-active-consumer`` only the oldest consumer receives; the next one takes
  over when it goes;
* a message whose TTL (``x-message-ttl`` or the ``expiration`` property, the smaller wins)
  ran out while waiting is expired when it reaches the head, and dead-lettered if the queue
  names an ``x-dead-letter-exchange``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mqlab.broker.arguments import QUEUE_ARGUMENTS, parse_arguments
from mqlab.broker.errors import ChannelException
from mqlab.broker.message import (
    FifoReady,
    Message,
    PriorityReady,
    QueuedMessage,
    parse_expiration,
)

if TYPE_CHECKING:
    import asyncio


__all__ = [
    "QUEUE_ARGUMENTS",
    "Consumer",
    "FifoReady",
    "Message",
    "PriorityReady",
    "Queue",
    "QueuedMessage",
    "parse_arguments",
    "parse_expiration",
]


class ConsumerChannel(Protocol):
    """What a queue needs from the channel a consumer lives on."""

    def can_deliver(self) -> bool: ...
    def deliver(self, consumer: Consumer, qm: QueuedMessage) -> None: ...
    def cancel_from_broker(self, consumer: Consumer) -> None: ...


class QueueHost(Protocol):
    """What a queue needs from the broker: time, the store, dead-lettering, auto-delete."""

    loop: asyncio.AbstractEventLoop

    def persist(self, queue: Queue, qm: QueuedMessage) -> None: ...
    def forget(self, qm: QueuedMessage) -> None: ...
    def can_page(self, qm: QueuedMessage) -> bool: ...
    def read_body(self, qm: QueuedMessage) -> bytes: ...
    def dead_letter(self, queue: Queue, qm: QueuedMessage, reason: str) -> None: ...
    def auto_delete(self, queue: Queue) -> None: ...


@dataclass(eq=False, slots=True)
class Consumer:
    """A subscription of one channel to one queue (``basic.consume``)."""

    tag: str
    channel: ConsumerChannel
    queue: Queue
    no_ack: bool = False
    exclusive: bool = False
    prefetch: int = 0  # per-consumer window from basic.qos(global=False); 0 = unlimited
    unacked: int = 0

    def ready(self) -> bool:
        """Room in the prefetch window and a channel able to send?"""
        if not self.no_ack and self.prefetch and self.unacked >= self.prefetch:
            return False
        return self.channel.can_deliver()


class Queue:
    """Messages waiting in order, the consumers taking turns, and the queue's own limits."""

    def __init__(
        self,
        host: QueueHost,
        name: str,
        *,
        durable: bool = False,
        exclusive_owner: object | None = None,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner
        self.auto_delete = auto_delete
        self.arguments = dict(arguments or {})
        known = parse_arguments(name, self.arguments)
        self.ttl: int | None = known.get("x-message-ttl")
        self.dlx: str | None = known.get("x-dead-letter-exchange")
        self.dlrk: str | None = known.get("x-dead-letter-routing-key")
        self.max_length: int | None = known.get("x-max-length")
        self.max_bytes: int | None = known.get("x-max-length-bytes")
        self.overflow: str = known["x-overflow"]
        self.expires: int | None = known.get("x-expires")  # ms unused before auto-delete
        self.type: str = known["x-queue-type"]
        self.max_priority: int | None = known.get("x-max-priority")
        self.single_active: bool = known.get("x-single-active-consumer", False)
        self.messages: FifoReady | PriorityReady = (
            FifoReady() if self.max_priority is None else PriorityReady(self.max_priority)
        )
        self.seq = 0  # arrival counter, see QueuedMessage.seq
        self.consumers: deque[Consumer] = deque()
        self.unacked = 0
        self.bytes = 0  # bodies of the ready messages
        self.paged_bytes = 0  # of which only in the store (see page_out)
        self.unacked_bytes = 0  # bodies delivered and not yet settled
        self.deleted = False
        self._had_consumer = False
        self._dispatching = False
        self._timer: asyncio.TimerHandle | None = None
        self._unused_timer: asyncio.TimerHandle | None = None
        self._last_used = 0.0
        if self.expires is not None:
            self.touch()

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={len(self.messages)} consumers={len(self.consumers)}>"

    @property
    def exclusive(self) -> bool:
        return self.exclusive_owner is not None

    # -- arrival ---------------------------------------------------------------------------

    def expiry_for(self, message: Message) -> float | None:
        """Absolute expiry time (loop clock) of a message entering now, or None."""
        ttl = self.ttl
        if message.ttl is not None:
            ttl = message.ttl if ttl is None else min(ttl, message.ttl)
        return None if ttl is None else self.host.loop.time() + ttl / 1000

    def put(self, message: Message) -> bool:
        """Append a message; False when ``x-overflow=reject-publish`` refuses it."""
        if self.overflow != "drop-head" and self._full(message.size):
            if self.overflow == "reject-publish-dlx":
                self.host.dead_letter(self, QueuedMessage(message), "rejected")
            return False
        qm = self.entry(message)
        if self.durable and message.persistent:
            self.host.persist(self, qm)
        self.messages.append(qm)
        self.bytes += message.size
        if self.overflow == "drop-head":
            while self._over():
                self._drop_head("maxlen")
        self.dispatch()
        if qm.expires_at is not None:
            self.expire()
        return True

    def entry(self, message: Message) -> QueuedMessage:
        """A new place in line for ``message``: next in order, at its (capped) priority."""
        self.seq += 1
        level = 0
        if self.max_priority is not None:
            level = min(message.priority, self.max_priority)
        return QueuedMessage(message, self.expiry_for(message), self.seq, level)

    def _full(self, size: int) -> bool:
        return (self.max_length is not None and len(self.messages) >= self.max_length) or (
            self.max_bytes is not None and self.bytes + size > self.max_bytes
        )

    def _over(self) -> bool:
        return bool(self.messages) and (
            (self.max_length is not None and len(self.messages) > self.max_length)
            or (self.max_bytes is not None and self.bytes > self.max_bytes)
        )

    def _drop_head(self, reason: str) -> None:
        qm = self.messages.popleft()
        self.bytes -= qm.message.size
        if qm.paged:
            self.page_in(qm)
        self.host.dead_letter(self, qm, reason)

    # -- departure -------------------------------------------------------------------------

    def dispatch(self) -> None:
        """Hand messages from the head to ready consumers, taking turns (round-robin)."""
        if self._dispatching:  # re-entered through dead-lettering; the outer loop goes on
            return
        self._dispatching = True
        try:
            messages, consumers = self.messages, self.consumers
            while messages and consumers:
                if self.single_active:  # only the oldest consumer receives
                    consumer = consumers[0]
                    if not consumer.ready():
                        return
                    qm = self.take()
                    if qm is None:
                        return
                    consumer.channel.deliver(consumer, qm)
                    continue
                for _ in range(len(consumers)):
                    consumer = consumers[0]
                    consumers.rotate(-1)
                    if consumer.ready():
                        break
                else:
                    return
                qm = self.take()
                if qm is None:
                    return
                consumer.channel.deliver(consumer, qm)
        finally:
            self._dispatching = False

    def take(self) -> QueuedMessage | None:
        """Pop the first live message (expiring the dead ones on the way), or None."""
        messages = self.messages
        now = None
        while messages:
            qm = messages.popleft()
            self.bytes -= qm.message.size
            if qm.paged:  # it leaves the queue: delivered or dead-lettered, both need the body
                self.page_in(qm)
            if qm.expires_at is not None:
                now = now or self.host.loop.time()
                if qm.expires_at <= now:
                    self.host.dead_letter(self, qm, "expired")
                    continue
            return qm
        return None

    def expire(self) -> None:
        """Expire messages at the head whose TTL ran out; re-arm the timer for the next."""
        messages = self.messages
        now = self.host.loop.time()
        while messages and messages[0].expires_at is not None and messages[0].expires_at <= now:
            self._drop_head("expired")
        head = messages[0].expires_at if messages and not self.deleted else None
        timer = self._timer
        if timer is not None and timer.when() != head:
            timer.cancel()
            self._timer = timer = None
        if timer is None and head is not None:
            self._timer = self.host.loop.call_at(head, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.expire()

    def requeue(self, qms: Iterable[QueuedMessage]) -> None:
        """Put unacked messages back in their original positions, marked redelivered."""
        if self.deleted:
            for qm in qms:
                self.host.forget(qm)
            return
        restore = self.messages.restore
        for qm in sorted(qms, key=_by_seq, reverse=True):  # newest first: see _restore
            qm.redelivered = True
            restore(qm)
            self.bytes += qm.message.size
        self.dispatch()
        if self.messages and self.messages[0].expires_at is not None:
            self.expire()

    def purge(self) -> int:
        """Drop every ready message (not the unacked ones); return how many."""
        count = len(self.messages)
        for qm in self.messages:
            self.host.forget(qm)
        self.messages.clear()
        self.bytes = self.paged_bytes = 0
        return count

    # -- paging: bodies that wait in the store instead of RAM --------------------------------

    def page_out(self, budget: int) -> int:
        """Drop the bodies of up to ``budget`` bytes of stored messages, newest first.

        Their rows are already committed, so the bodies are read back when the messages
        reach the head. The walk stops at the first message already paged: the head of the
        queue, the next to go out, stays in RAM. Returns the bytes freed.
        """
        freed = 0
        for qm in reversed(self.messages):
            if freed >= budget or qm.paged:
                break
            if not self.host.can_page(qm):
                continue
            qm.message = qm.message.without_body()
            qm.paged = True
            freed += qm.message.size
        self.paged_bytes += freed
        return freed

    def page_in(self, qm: QueuedMessage) -> None:
        """Read a paged message's body back from the store."""
        qm.message = qm.message.with_body(self.host.read_body(qm))
        qm.paged = False
        self.paged_bytes -= qm.message.size

    # -- x-expires: a queue nobody uses deletes itself -------------------------------------

    def touch(self) -> None:
        """Declared, read with basic.get or lost its last consumer: restart the x-expires clock."""
        if self.expires is None or self.deleted:
            return
        self._last_used = self.host.loop.time()
        if self._unused_timer is None:
            self._unused_timer = self.host.loop.call_later(self.expires / 1000, self._check_unused)

    def _check_unused(self) -> None:
        self._unused_timer = None
        if self.deleted or self.expires is None:
            return
        left = self._last_used + self.expires / 1000 - self.host.loop.time()
        if self.consumers:
            left = self.expires / 1000
        if left > 0:
            self._unused_timer = self.host.loop.call_later(left, self._check_unused)
        else:
            self.host.auto_delete(self)

    # -- consumers -------------------------------------------------------------------------

    def check_consumer(self, exclusive: bool) -> None:
        """403 when an exclusive consumer is involved, as in RabbitMQ (which also refuses an
        exclusive consumer on a single-active-consumer queue)."""
        if (exclusive and (self.consumers or self.single_active)) or any(
            c.exclusive for c in self.consumers
        ):
            raise ChannelException(403, f"queue '{self.name}' in vhost '/' in exclusive use")

    def add_consumer(self, consumer: Consumer) -> None:
        """Subscribe (after :meth:`check_consumer`) and start delivering."""
        self.consumers.append(consumer)
        self._had_consumer = True
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> None:
        """Unsubscribe; an auto_delete queue goes away with its last consumer."""
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return
        if self.auto_delete and self._had_consumer and not self.consumers:
            self.host.auto_delete(self)
        elif not self.consumers:
            self.touch()

    def close(self) -> None:
        """The queue is being deleted: stop timers, forget stored messages."""
        self.deleted = True
        for timer in (self._timer, self._unused_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._unused_timer = None
        self.purge()


def _by_seq(qm: QueuedMessage) -> int:
    return qm.seq
