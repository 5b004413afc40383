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
from collections.abc import Iterable, Iterator, Mapping
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
    "FifoReady",
    "Message",
    "PriorityReady",
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

    __slots__ = (
        "body",
        "exchange",
        "header",
        "persistent",
        "priority",
        "routing_key",
        "size",
        "ttl",
    )

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
        self.size = len(body)  # stays right when the body is paged out to the store
        self.ttl = ttl  # per-message TTL in ms, from the ``expiration`` property
        self.persistent = properties.delivery_mode == 2
        self.priority = properties.priority or 0

    def without_body(self) -> Message:
        """A copy without the body, for a queue entry whose body waits in the store."""
        stub = Message.__new__(Message)
        for name in Message.__slots__:
            setattr(stub, name, getattr(self, name))
        stub.body = b""
        return stub

    def with_body(self, body: bytes) -> Message:
        """A copy with ``body`` (read back from the store) in place."""
        full = Message.__new__(Message)
        for name in Message.__slots__:
            setattr(full, name, getattr(self, name))
        full.body = body
        return full

    @property
    def properties(self) -> Basic.Properties:
        """The message properties, decoded from :attr:`header` by pamqp."""
        content = ContentHeader()
        content.unmarshal(self.header)
        return content.properties


class QueuedMessage:
    """A message's copy in one queue: its place in line, redelivered flag, expiry, store row.

    ``seq`` is the order of arrival in the queue: a requeued message goes back in front of
    every message with a larger one, so the queue reads in publish order again.
    """

    __slots__ = ("expires_at", "level", "message", "paged", "redelivered", "seq", "store_id")

    def __init__(
        self, message: Message, expires_at: float | None = None, seq: int = 0, level: int = 0
    ) -> None:
        self.message = message
        self.redelivered = False
        self.expires_at = expires_at
        self.seq = seq
        self.level = level  # priority, capped at the queue's x-max-priority
        self.store_id: int | None = None
        self.paged = False  # body only in the store (message is a body-less copy)


class FifoReady(deque[QueuedMessage]):
    """The ready messages of a plain queue: one line, in order of arrival."""

    def restore(self, qm: QueuedMessage) -> None:
        """Put a requeued message back where it was (by ``seq``)."""
        _restore(self, qm)


def _restore(line: deque[QueuedMessage], qm: QueuedMessage) -> None:
    # The usual case, a requeue of the oldest messages, costs one appendleft: callers restore
    # a batch newest first, so each one goes in front of the one restored before it.
    if not line or qm.seq < line[0].seq:
        line.appendleft(qm)
        return
    for i, other in enumerate(line):
        if other.seq > qm.seq:
            line.insert(i, qm)
            return
    line.append(qm)


class PriorityReady:
    """The ready messages of an ``x-max-priority`` queue: one line per priority, highest first.

    It offers the part of the deque interface that :class:`Queue` uses.
    """

    def __init__(self, max_priority: int) -> None:
        self.lines = [deque[QueuedMessage]() for _ in range(max_priority + 1)]
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[QueuedMessage]:
        for line in reversed(self.lines):
            yield from line

    def __getitem__(self, index: int) -> QueuedMessage:
        if index != 0:
            raise IndexError("only the head of a priority queue can be looked at")
        for line in reversed(self.lines):
            if line:
                return line[0]
        raise IndexError("empty queue")

    def append(self, qm: QueuedMessage) -> None:
        self.lines[qm.level].append(qm)
        self.count += 1

    def __reversed__(self) -> Iterator[QueuedMessage]:
        for line in self.lines:
            yield from reversed(line)

    def popleft(self) -> QueuedMessage:
        for line in reversed(self.lines):
            if line:
                self.count -= 1
                return line.popleft()
        raise IndexError("pop from an empty queue")

    def restore(self, qm: QueuedMessage) -> None:
        _restore(self.lines[qm.level], qm)
        self.count += 1

    def clear(self) -> None:
        for line in self.lines:
            line.clear()
        self.count = 0


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
    "x-max-priority": None,
    "x-single-active-consumer": None,
}
QUEUE_TYPES = ("classic", "quorum")
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
    kind = args.get("x-queue-type", "classic")
    if isinstance(kind, bytes):
        kind = kind.decode(errors="replace")
    if kind == "stream":  # RabbitMQ has them; their offset-based consuming is another protocol
        raise bad("x-queue-type", '"stream queues are not supported by the embedded broker"')
    if kind not in QUEUE_TYPES:
        raise bad("x-queue-type", f"\"unsupported queue type '{kind}'\"")
    out["x-queue-type"] = kind
    if "x-max-priority" in args:
        value = args["x-max-priority"]
        if kind == "quorum":
            raise ChannelException(
                406,
                f"invalid arg 'x-max-priority' for queue '{name}' in vhost '/' of queue type "
                "rabbit_quorum_queue",
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("x-max-priority", f'"expected integer, got {_amqp_type(value)}"')
        if value < 0:
            raise bad("x-max-priority", f"{{value_negative,{value}}}")
        if value > 255:
            raise bad("x-max-priority", f"{{max_value_exceeded,{value}}}")
        out["x-max-priority"] = value
    if "x-single-active-consumer" in args:
        value = args["x-single-active-consumer"]
        if not isinstance(value, bool):
            raise bad("x-single-active-consumer", f"{{unacceptable_type,{_amqp_type(value)}}}")
        out["x-single-active-consumer"] = value
    return out


def _amqp_type(value: Any) -> str:
    """RabbitMQ's name for the field-table type pamqp encodes ``value`` as."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        for bits, name in ((8, "byte"), (16, "short"), (32, "signedint")):
            if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                return name
        return "long"
    names = {str: "longstr", bytes: "longstr", float: "float", dict: "table", list: "array"}
    return names.get(type(value), type(value).__name__)


def inequivalent(kind: str, name: str, arg: str, new: Any, old: Any) -> ChannelException:
    """406 for a redeclare whose ``arg`` differs, worded as RabbitMQ words it.

    ``new``/``old`` are None when the argument is absent; RabbitMQ then shows the other side
    with its type: "received none but current is the value 'quorum' of type 'longstr'".
    """

    def show(value: Any) -> str:
        return "true" if value is True else "false" if value is False else str(value)

    sides: tuple[str, ...]
    if new is not None and old is not None:
        sides = f"'{show(new)}'", f"'{show(old)}'"
    else:
        sides = tuple(
            "none" if v is None else f"the value '{show(v)}' of type '{_amqp_type(v)}'"
            for v in (new, old)
        )
    return ChannelException(
        406,
        f"inequivalent arg '{arg}' for {kind} '{name}' in vhost '/': "
        f"received {sides[0]} but current is {sides[1]}",
    )


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
