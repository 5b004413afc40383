"""A message (消息) as the broker holds it, and the ready line of a queue it waits in.

* :class:`Message`: what was published (body, properties, exchange, routing key), and
  :func:`parse_expiration` for its ``expiration`` property.
* :class:`QueuedMessage`: one message's place in one queue (its ``seq``, priority level,
  delivery count, store id): a message routed to three queues has three.
* :class:`FifoReady` and :class:`PriorityReady`: the ready messages of a plain queue (one line,
  by arrival) and of an ``x-max-priority`` queue (one line per priority, highest first); a
  requeued message goes back where it was.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pamqp.header import ContentHeader

from mqlab.broker.errors import ChannelException

if TYPE_CHECKING:
    from pamqp.commands import Basic

__all__ = [
    "MAX_EXPIRY_MS",
    "FifoReady",
    "Message",
    "PriorityReady",
    "QueuedMessage",
    "parse_expiration",
]


#: The longest TTL RabbitMQ takes, for a message's ``expiration`` and for ``x-message-ttl`` and
#: ``x-expires``: ten years in milliseconds (``rabbit_misc:check_expiry``).
MAX_EXPIRY_MS = 315_360_000_000

_INTEGER = re.compile(r"[+-]?[0-9]+")  # what Erlang's string:to_integer reads


def parse_expiration(value: str | None) -> int | None:
    """The ``expiration`` property (milliseconds as a string) as an int; 406 if malformed.

    As RabbitMQ reads it: a signed decimal integer, refused with its words when there is
    none, something is left after it, or it is negative or over :data:`MAX_EXPIRY_MS`.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    text = str(value)
    number = _INTEGER.match(text)
    why = ""
    if number is None:
        why = "no_integer"
    elif number.end() < len(text):
        why = f'{{leftover_string,"{text[number.end() :]}"}}'
    elif (ms := int(number.group())) < 0:
        why = f"{{value_negative,{ms}}}"
    elif ms > MAX_EXPIRY_MS:
        why = f"{{value_too_large,{ms}}}"
    if why:
        raise ChannelException(406, f"invalid expiration '{text}': {why}")
    return ms


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
