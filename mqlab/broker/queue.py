"""A queue (队列): an ordered buffer of messages handed round-robin to its consumers.

What happens to a message in a queue, in the order RabbitMQ does it:

* it is appended at the tail; ``x-max-length`` / ``x-max-length-bytes`` then drop (or
  dead-letter) from the head, or refuse the new message when ``x-overflow=reject-publish``;
* it is delivered from the head to the next consumer whose prefetch window has room
  (consumers take turns: round-robin);
* once delivered it waits, *unacked*, on the consumer's channel; an ack removes it, a
  nack/reject with ``requeue=True`` (or a dead channel) puts it back at the head with
  ``redelivered=True``; without requeue it is dead-lettered or dropped;
* a message whose TTL (``x-message-ttl`` or the ``expiration`` property, the smaller wins)
  ran out while waiting is expired when it reaches the head, and dead-lettered if the queue
  names an ``x-dead-letter-exchange``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pamqp.header import ContentHeader

from mqlab.broker.errors import ChannelException

if TYPE_CHECKING:
    import asyncio

    from pamqp.commands import Basic

__all__ = [
    "QUEUE_ARGUMENTS",
    "Consumer",
    "Message",
    "Queue",
    "QueuedMessage",
    "parse_arguments",
    "parse_expiration",
]


def parse_expiration(value: str | None) -> int | None:
    """The ``expiration`` property (milliseconds as a string) as an int; 406 if malformed."""
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not str(value).isdigit():
        raise ChannelException(406, f"invalid expiration '{value}': {{error,no_integer}}")
    return int(value)


class Message:
    """One published message, shared by every queue it was routed to.

    ``header`` is the encoded content-header payload as received: it is re-sent unchanged on
    delivery, and decoded again (by pamqp) only when someone asks for :attr:`properties`,
    e.g. to dead-letter the message. Keeping the bytes instead of the decoded properties
    halves the memory a queued message costs.
    """

    __slots__ = ("body", "exchange", "header", "persistent", "routing_key", "ttl")

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        properties: Basic.Properties,
        header: bytes,
        body: bytes,
        ttl: int | None = None,
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.header = header
        self.body = body
        self.ttl = ttl  # per-message TTL in ms, from the ``expiration`` property
        self.persistent = properties.delivery_mode == 2

    @property
    def properties(self) -> Basic.Properties:
        """The message properties, decoded from :attr:`header` by pamqp."""
        content = ContentHeader()
        content.unmarshal(self.header)
        return content.properties


class QueuedMessage:
    """A message's copy in one queue: its redelivered flag, expiry time and store row."""

    __slots__ = ("expires_at", "message", "redelivered", "store_id")

    def __init__(self, message: Message, expires_at: float | None = None) -> None:
        self.message = message
        self.redelivered = False
        self.expires_at = expires_at
        self.store_id: int | None = None


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


# Arguments RabbitMQ compares when a queue is declared again (with their default).
QUEUE_ARGUMENTS: dict[str, Any] = {
    "x-message-ttl": None,
    "x-expires": None,
    "x-dead-letter-exchange": None,
    "x-dead-letter-routing-key": None,
    "x-max-length": None,
    "x-max-length-bytes": None,
    "x-overflow": None,
    "x-queue-type": "classic",
}
_OVERFLOW = ("drop-head", "reject-publish", "reject-publish-dlx")


def parse_arguments(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Validate queue arguments like RabbitMQ (406 on a bad value); return the known ones."""

    def bad(key: str, why: str) -> ChannelException:
        return ChannelException(406, f"invalid arg '{key}' for queue '{name}' in vhost '/': {why}")

    out: dict[str, Any] = {}
    for key in ("x-message-ttl", "x-max-length", "x-max-length-bytes", "x-expires"):
        if key in args:
            value = args[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(key, f"{{unacceptable_type,{value!r}}}")
            if value < (1 if key == "x-expires" else 0):
                raise bad(key, f"{{value_negative,{value}}}")
            out[key] = value
    for key in ("x-dead-letter-exchange", "x-dead-letter-routing-key"):
        if key in args:
            value = args[key]
            if isinstance(value, bytes):
                value = value.decode()
            if not isinstance(value, str):
                raise bad(key, f"{{unacceptable_type,{value!r}}}")
            out[key] = value
    if "x-dead-letter-routing-key" in out and "x-dead-letter-exchange" not in out:
        raise bad("x-dead-letter-routing-key", "x-dead-letter-exchange is required")
    overflow = args.get("x-overflow", "drop-head")
    if overflow not in _OVERFLOW:
        raise bad("x-overflow", f"{{unacceptable_value,{overflow!r}}}")
    out["x-overflow"] = overflow
    if "x-max-priority" in args:  # refuse loudly rather than silently deliver in FIFO order
        raise bad("x-max-priority", "priority queues are not implemented by the embedded broker")
    kind = args.get("x-queue-type", "classic")
    if kind != "classic":
        raise bad("x-queue-type", f"the embedded broker has only classic queues, not {kind!r}")
    return out


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
        self.messages: deque[QueuedMessage] = deque()
        self.consumers: deque[Consumer] = deque()
        self.unacked = 0
        self.bytes = 0
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
        if self.overflow != "drop-head" and self._full(len(message.body)):
            if self.overflow == "reject-publish-dlx":
                self.host.dead_letter(self, QueuedMessage(message), "rejected")
            return False
        qm = QueuedMessage(message, self.expiry_for(message))
        if self.durable and message.persistent:
            self.host.persist(self, qm)
        self.messages.append(qm)
        self.bytes += len(message.body)
        if self.overflow == "drop-head":
            while self._over():
                self._drop_head("maxlen")
        self.dispatch()
        if qm.expires_at is not None:
            self.expire()
        return True

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
        self.bytes -= len(qm.message.body)
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
            self.bytes -= len(qm.message.body)
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
        """Put unacked messages back at the head, in their original order, as redelivered."""
        if self.deleted:
            for qm in qms:
                self.host.forget(qm)
            return
        back = list(qms)
        for qm in reversed(back):
            qm.redelivered = True
            self.messages.appendleft(qm)
            self.bytes += len(qm.message.body)
        self.dispatch()
        if self.messages and self.messages[0].expires_at is not None:
            self.expire()

    def purge(self) -> int:
        """Drop every ready message (not the unacked ones); return how many."""
        count = len(self.messages)
        for qm in self.messages:
            self.host.forget(qm)
        self.messages.clear()
        self.bytes = 0
        return count

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
        """403 when an exclusive consumer is involved, as in RabbitMQ."""
        if (exclusive and self.consumers) or any(c.exclusive for c in self.consumers):
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
