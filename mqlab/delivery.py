"""What a bus handler is given and how it answers: one :class:`Delivery` (投递) in, return to
ack it or raise :class:`Reject` to dead-letter it; and how a subscription recognises a message
it already handled (:class:`SeenIds`, or any :class:`IdStore`), so a redelivery (重新投递) is
acked and skipped, never applied twice. :mod:`mqlab.bus` uses them and re-exports them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aio_pika.abc import AbstractIncomingMessage
from aiormq.abc import DeliveredMessage

__all__ = ["Delivery", "Handler", "IdStore", "IdleHook", "Reject", "SeenIds"]


class Reject(Exception):
    """Raise from a handler to dead-letter the message with ``reason``; the service carries on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """One message as a handler sees it (the aio-pika message stays behind the bus)."""

    body: bytes
    routing_key: str
    exchange: str
    queue: str
    message_id: str | None
    headers: Mapping[str, Any]
    redelivered: bool
    type: str | None = None
    received_ns: int = field(default_factory=time.time_ns)

    @classmethod
    def of(cls, message: DeliveredMessage | AbstractIncomingMessage, queue: str) -> Delivery:
        """A delivery as aiormq read it from the socket (or as aio-pika wrapped it)."""
        if isinstance(message, DeliveredMessage):
            properties = message.header.properties
        else:
            properties = message.properties
        return cls(
            body=message.body,
            routing_key=message.routing_key or "",
            exchange=message.exchange or "",
            queue=queue,
            message_id=properties.message_id,
            headers=dict(properties.headers or {}),
            redelivered=bool(message.redelivered),
            type=properties.message_type,
        )


#: A handler gets one delivery; returning acks it, raising dead-letters it.
Handler = Callable[[Delivery], Awaitable[None]]
#: Called when a subscription's inbox ran dry after a delivery (a service flushes batches).
IdleHook = Callable[[], Awaitable[None]]


class IdStore(Protocol):
    """Where a subscription remembers which message ids it already handled."""

    def __contains__(self, message_id: object) -> bool: ...
    def add(self, message_id: str) -> None: ...


class SeenIds:
    """An in-memory, bounded set of handled message ids (oldest forgotten first).

    Enough for duplicates that come from a retried publish or a redelivery, which arrive soon
    after the original. A service that must survive its own restart passes a store that lives
    on disk instead (see :mod:`mqlab.services`).
    """

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, message_id: str) -> None:
        self._ids[message_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
