"""The broker's state: exchanges, queues and bindings of the one virtual host ``/``.

Every operation a client can ask for (declare, bind, publish, delete...) is a method here,
raising :class:`~mqlab.broker.errors.ChannelException` with RabbitMQ's code and wording when
it must be refused. Nothing here touches sockets; :mod:`.channel` turns frames into calls.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pamqp import commands, header

from mqlab.broker.arguments import QUEUE_ARGUMENTS, amqp_type, inequivalent
from mqlab.broker.errors import ChannelException, ConnectionException
from mqlab.broker.exchange import PREDECLARED, Exchange
from mqlab.broker.frames import header_payload
from mqlab.broker.message import Message, QueuedMessage
from mqlab.broker.queue import Queue
from mqlab.routing import EXCHANGE_TYPES, Binding

if TYPE_CHECKING:
    import asyncio

    from mqlab.broker.store import Store

__all__ = [
    "BindingInfo",
    "ExchangeInfo",
    "QueueInfo",
    "Topology",
    "VirtualHost",
]


@dataclass(frozen=True)
class ExchangeInfo:
    name: str
    type: str
    durable: bool
    auto_delete: bool
    internal: bool
    arguments: dict[str, Any]


@dataclass(frozen=True)
class QueueInfo:
    name: str
    messages: int  # ready, waiting for a consumer
    unacked: int  # delivered, waiting for an ack
    consumers: int
    durable: bool
    exclusive: bool
    auto_delete: bool
    arguments: dict[str, Any]
    type: str = "classic"  # x-queue-type: "classic" or "quorum"


@dataclass(frozen=True)
class BindingInfo:
    source: str
    destination: str
    destination_type: str  # "queue" or "exchange"
    routing_key: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Topology:
    """A snapshot of the broker, e.g. ``pandas.DataFrame(topology.queues)``."""

    exchanges: list[ExchangeInfo] = field(default_factory=list)
    queues: list[QueueInfo] = field(default_factory=list)
    bindings: list[BindingInfo] = field(default_factory=list)

    def queue(self, name: str) -> QueueInfo:
        """The queue called ``name`` (KeyError if there is none)."""
        for q in self.queues:
            if q.name == name:
                return q
        raise KeyError(name)


def _same_properties(kind: str, name: str, *properties: tuple[str, Any, Any]) -> None:
    """406 for the first (property, requested, current) a redeclare would change."""
    for prop, new, old in properties:
        if new != old:
            raise inequivalent(kind, name, prop, new, old)


def _server_name(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(16)


class VirtualHost:
    """Exchanges, queues and bindings, with the rules RabbitMQ applies to each operation."""

    name = "/"

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Store | None = None) -> None:
        self.loop = loop
        self.store = store
        self.exchanges: dict[str, Exchange] = {
            name: Exchange(name, kind, durable=True) for name, kind in PREDECLARED.items()
        }
        self.queues: dict[str, Queue] = {}
        if store is not None:
            store.load_into(self)

    # -- exchanges -------------------------------------------------------------------------

    def exchange(self, name: str) -> Exchange:
        """The exchange called ``name``; 404 if there is none."""
        ex = self.exchanges.get(name)
        if ex is None:
            raise ChannelException(404, f"no exchange '{name}' in vhost '/'")
        return ex

    def declare_exchange(
        self,
        name: str,
        kind: str,
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> Exchange:
        # RabbitMQ's order: the type, then the default exchange (passive too), then the rest
        if not passive and kind not in EXCHANGE_TYPES:
            raise ConnectionException(503, f"unknown exchange type '{kind}'")
        if name == "":
            raise ChannelException(403, "operation not permitted on the default exchange")
        ex = self.exchanges.get(name)
        if passive:
            if ex is None:
                raise ChannelException(404, f"no exchange '{name}' in vhost '/'")
            return ex
        if ex is not None:
            _same_properties(
                "exchange",
                name,
                ("type", kind, ex.type),
                ("durable", bool(durable), bool(ex.durable)),
                ("auto_delete", bool(auto_delete), bool(ex.auto_delete)),
                ("internal", bool(internal), bool(ex.internal)),
            )
            # RabbitMQ compares one exchange argument on a redeclare: the alternate exchange.
            new_ae = (arguments or {}).get("alternate-exchange")
            old_ae = ex.arguments.get("alternate-exchange")
            if new_ae != old_ae:
                raise inequivalent("exchange", name, "alternate-exchange", new_ae, old_ae)
            return ex
        if name.startswith("amq."):
            raise ChannelException(403, f"exchange name '{name}' contains reserved prefix 'amq.*'")
        ae = (arguments or {}).get("alternate-exchange", "")  # absent, or a name
        if not isinstance(ae, str):
            raise ChannelException(
                406,
                f"invalid type '{amqp_type(ae)}' for arg 'alternate-exchange' in exchange "
                f"'{name}' in vhost '/'",
            )
        ex = Exchange(name, kind, durable, auto_delete, internal, dict(arguments or {}))
        self.exchanges[name] = ex
        if durable and self.store is not None:
            self.store.save_exchange(ex)
        return ex

    def delete_exchange(self, name: str, *, if_unused: bool = False) -> None:
        if name == "":
            raise ChannelException(403, "operation not permitted on the default exchange")
        if name in PREDECLARED:
            raise ChannelException(
                403, f"deletion of system exchange '{name}' in vhost '/' not allowed"
            )
        ex = self.exchanges.get(name)
        if ex is None:
            return  # deleting what is not there succeeds, as in RabbitMQ 3.x
        incoming = [
            (e, b)
            for e in self.exchanges.values()
            for b in e.bindings.values()
            if b.to_exchange and b.destination == name
        ]
        if if_unused and (ex.bindings or incoming):
            raise ChannelException(406, f"exchange '{name}' in vhost '/' in use")
        for e, b in incoming:
            self._drop_binding(e, b)
        for b in list(ex.bindings.values()):
            self._drop_binding(ex, b, auto_delete=False)
        del self.exchanges[name]
        if ex.durable and self.store is not None:
            self.store.delete_exchange(name)

    # -- queues ----------------------------------------------------------------------------

    def queue(self, name: str, owner: object | None = None) -> Queue:
        """The queue called ``name``; 404 if missing, 405 if another connection owns it."""
        q = self.queues.get(name)
        if q is None:
            raise ChannelException(404, f"no queue '{name}' in vhost '/'")
        if q.exclusive_owner is not None and q.exclusive_owner is not owner:
            raise ChannelException(405, self._locked(name))
        return q

    @staticmethod
    def _locked(name: str) -> str:
        return (
            f"cannot obtain exclusive access to locked queue '{name}' in vhost '/'. It could "
            "be originally declared on another connection or the exclusive property value "
            "does not match that of the original declaration."
        )

    def declare_queue(
        self,
        name: str,
        owner: object,
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> Queue:
        if passive:
            return self.queue(name, owner)
        arguments = dict(arguments or {})
        if not name:
            name = _server_name("amq.gen-")
        elif name.startswith("amq."):
            raise ChannelException(403, f"queue name '{name}' contains reserved prefix 'amq.*'")
        if arguments.get("x-queue-type") == "quorum":
            # Quorum queues are replicated logs: RabbitMQ refuses the properties they cannot have.
            for prop, refused in (
                ("non-durable", not durable),
                ("exclusive-owner", exclusive),
                ("auto-delete", auto_delete),
            ):
                if refused:
                    raise ChannelException(
                        406, f"invalid property '{prop}' for queue '{name}' in vhost '/'"
                    )
        q = self.queues.get(name)
        if q is not None:
            if (q.exclusive_owner is not None and q.exclusive_owner is not owner) or (
                exclusive != q.exclusive
            ):
                raise ChannelException(405, self._locked(name))
            self._check_equivalent(q, durable, auto_delete, arguments)
            q.touch()
            return q
        q = Queue(
            self,
            name,
            durable=durable,
            exclusive_owner=owner if exclusive else None,
            auto_delete=auto_delete,
            arguments=arguments,
        )
        self.queues[name] = q
        if durable and not exclusive and self.store is not None:
            self.store.save_queue(q)
        return q

    @staticmethod
    def _check_equivalent(
        q: Queue, durable: bool, auto_delete: bool, arguments: Mapping[str, Any]
    ) -> None:
        _same_properties(
            "queue",
            q.name,
            ("durable", bool(durable), bool(q.durable)),
            ("auto_delete", bool(auto_delete), bool(q.auto_delete)),
        )
        for arg, default in QUEUE_ARGUMENTS.items():
            given, current = arguments.get(arg), q.arguments.get(arg)
            if (default if given is None else given) != (default if current is None else current):
                raise inequivalent("queue", q.name, arg, given, current)

    def delete_queue(
        self, name: str, owner: object, *, if_unused: bool = False, if_empty: bool = False
    ) -> int:
        """Delete a queue; returns how many ready messages went with it."""
        q = self.queues.get(name)
        if q is None:
            return 0  # idempotent, as in RabbitMQ 3.x
        self.queue(name, owner)  # 405 when exclusively owned by someone else
        if if_unused and q.consumers:
            raise ChannelException(406, f"queue '{name}' in vhost '/' in use")
        if if_empty and q.messages:
            raise ChannelException(406, f"queue '{name}' in vhost '/' not empty")
        return self.remove_queue(q)

    def remove_queue(self, q: Queue) -> int:
        """Unconditionally delete ``q``: cancel its consumers, drop its bindings."""
        if self.queues.get(q.name) is not q:
            return 0
        del self.queues[q.name]
        count = len(q.messages)
        for consumer in list(q.consumers):
            consumer.channel.cancel_from_broker(consumer)
        q.consumers.clear()
        for ex in list(self.exchanges.values()):
            for b in [
                b for b in ex.bindings.values() if not b.to_exchange and b.destination == q.name
            ]:
                self._drop_binding(ex, b)
        q.close()
        if q.durable and self.store is not None:
            self.store.delete_queue(q.name)
        return count

    def auto_delete(self, queue: Queue) -> None:
        self.remove_queue(queue)

    def purge_queue(self, name: str, owner: object) -> int:
        return self.queue(name, owner).purge()

    def drop_owner(self, owner: object) -> None:
        """A connection closed: its exclusive queues go with it."""
        for q in [q for q in self.queues.values() if q.exclusive_owner is owner]:
            self.remove_queue(q)

    # -- bindings --------------------------------------------------------------------------

    @staticmethod
    def _not_the_default_exchange(binding: Binding) -> None:
        if binding.source == "" or (binding.to_exchange and binding.destination == ""):
            raise ChannelException(403, "operation not permitted on the default exchange")

    def bind(self, binding: Binding, owner: object) -> None:
        """Add ``binding`` (once: an identical one is already there); 404/405 as RabbitMQ."""
        self._not_the_default_exchange(binding)
        if binding.to_exchange:
            durable = self.exchange(binding.destination).durable
        else:
            q = self.queue(binding.destination, owner)
            durable = q.durable and not q.exclusive
        ex = self.exchange(binding.source)
        if binding.key not in ex.bindings:
            ex.bind(binding)
            if durable and ex.durable and self.store is not None:
                self.store.save_binding(binding)

    def unbind(self, binding: Binding, owner: object) -> None:
        """Remove ``binding`` if it is there."""
        self._not_the_default_exchange(binding)
        # Unbinding is idempotent in RabbitMQ: a binding whose queue or exchange is already
        # gone (an auto-delete exchange that left with its last queue...) answers Unbind-Ok.
        if not binding.to_exchange and binding.destination in self.queues:
            self.queue(binding.destination, owner)  # 405 if another connection owns it
        ex = self.exchanges.get(binding.source)
        if ex is None:
            return
        found = ex.bindings.get(binding.key)
        if found is not None:
            self._drop_binding(ex, found)

    def _drop_binding(self, ex: Exchange, binding: Binding, *, auto_delete: bool = True) -> None:
        ex.unbind(binding)
        if self.store is not None:
            self.store.delete_binding(binding)
        if auto_delete and ex.auto_delete and not ex.bindings and ex.name in self.exchanges:
            self.delete_exchange(ex.name)

    # -- messages --------------------------------------------------------------------------

    def destinations(
        self, ex: Exchange, routing_key: str, headers: Mapping[str, Any] | None
    ) -> list[Queue]:
        """Queues a message reaches from ``ex``, following exchange-to-exchange bindings."""
        if ex.is_default:
            q = self.queues.get(routing_key)
            return [] if q is None else [q]
        found: dict[str, Queue] = {}
        seen = {ex.name}
        pending = [ex]
        while pending:
            current = pending.pop()
            matched = current.route(routing_key, headers)
            if not matched and current.alternate is not None:
                # Nothing matched: RabbitMQ hands the message to the alternate exchange.
                alt = self.exchanges.get(current.alternate)
                if alt is not None and alt.name not in seen:
                    seen.add(alt.name)
                    pending.append(alt)
            for b in matched:
                if b.to_exchange:
                    nxt = self.exchanges.get(b.destination)
                    if nxt is not None and nxt.name not in seen:
                        seen.add(nxt.name)
                        pending.append(nxt)
                else:
                    q = self.queues.get(b.destination)
                    if q is not None:
                        found[q.name] = q
        return list(found.values())

    def publish(
        self, ex: Exchange, message: Message, headers: Mapping[str, Any] | None = None
    ) -> tuple[int, bool]:
        """Route (by key, or ``headers`` for a headers exchange) and enqueue.

        Returns (how many queues it reached, whether a queue refused it).
        """
        queues = self.destinations(ex, message.routing_key, headers)
        refused = False
        for q in queues:
            if not q.put(message):
                refused = True
        return len(queues), refused

    def persist(self, queue: Queue, qm: QueuedMessage) -> None:
        if self.store is not None:
            qm.store_id = self.store.add_message(queue.name, qm.message)

    def delivered(self, qm: QueuedMessage) -> None:
        """A stored message went out for the first time (see Store.mark_delivered)."""
        if qm.store_id is not None and not qm.redelivered and self.store is not None:
            self.store.mark_delivered(qm.store_id)

    def can_page(self, qm: QueuedMessage) -> bool:
        """Is the message's row committed, so its body may leave RAM?"""
        return (
            qm.store_id is not None and self.store is not None and self.store.committed(qm.store_id)
        )

    def read_body(self, qm: QueuedMessage) -> bytes:
        assert self.store is not None and qm.store_id is not None
        return self.store.read_body(qm.store_id)

    def page_out(self, budget: int) -> int:
        """Page out up to ``budget`` bytes of bodies, the fullest durable queues first."""
        freed = 0
        queues = sorted(self.queues.values(), key=lambda q: q.bytes - q.paged_bytes, reverse=True)
        for q in queues:
            if freed >= budget:
                break
            if q.durable and q.bytes > q.paged_bytes:
                freed += q.page_out(budget - freed)
        return freed

    def forget(self, qm: QueuedMessage) -> None:
        if qm.store_id is not None and self.store is not None:
            self.store.remove_message(qm.store_id)
            qm.store_id = None

    def dead_letter(self, queue: Queue, qm: QueuedMessage, reason: str) -> None:
        """Republish a rejected, expired or overflowing message to the queue's DLX."""
        self.forget(qm)
        if queue.dlx is None:
            return
        ex = self.exchanges.get(queue.dlx)
        if ex is None:
            return
        old = qm.message
        props = old.properties
        headers = dict(props.headers or {})
        previous = headers.get("x-death")
        deaths: list[Any] = list(previous) if isinstance(previous, list) else []
        routing_key = queue.dlrk if queue.dlrk is not None else old.routing_key
        entry = next(
            (d for d in deaths if d.get("queue") == queue.name and d.get("reason") == reason),
            None,
        )
        if entry is not None:
            deaths.remove(entry)
            entry = dict(entry, count=int(entry.get("count", 1)) + 1)
        else:
            entry = {
                "count": 1,
                "reason": reason,
                "queue": queue.name,
                "time": datetime.now(UTC).replace(microsecond=0),
                "exchange": old.exchange,
                "routing-keys": [old.routing_key],
            }
            if props.expiration:
                entry["original-expiration"] = props.expiration
        deaths.insert(0, entry)
        headers["x-death"] = deaths
        headers.setdefault("x-first-death-exchange", old.exchange)
        headers.setdefault("x-first-death-queue", queue.name)
        headers.setdefault("x-first-death-reason", reason)
        values = {k: getattr(props, k) for k in props.__slots__}
        values.update(headers=headers, expiration=None)
        new_props = commands.Basic.Properties(**values)
        payload = header_payload(header.ContentHeader(0, len(old.body), new_props))
        message = Message(ex.name, routing_key, new_props, payload, old.body)
        targets = self.destinations(ex, routing_key, headers)
        if all(d.get("reason") != "rejected" for d in deaths):
            # A cycle nobody ever rejected (e.g. TTL back into itself) is dropped, as RabbitMQ does.
            visited = {d.get("queue") for d in deaths}
            targets = [q for q in targets if q.name not in visited]
        for q in targets:
            q.put(message)

    # -- inspection ------------------------------------------------------------------------

    def topology(self) -> Topology:
        """A snapshot of exchanges, queues (with counts) and bindings."""
        return Topology(
            exchanges=[
                ExchangeInfo(
                    e.name, e.type, e.durable, e.auto_delete, e.internal, dict(e.arguments)
                )
                for e in self.exchanges.values()
            ],
            queues=[
                QueueInfo(
                    q.name,
                    len(q.messages),
                    q.unacked,
                    len(q.consumers),
                    q.durable,
                    q.exclusive,
                    q.auto_delete,
                    dict(q.arguments),
                    q.type,
                )
                for q in self.queues.values()
            ],
            bindings=[
                BindingInfo(
                    b.source,
                    b.destination,
                    "exchange" if b.to_exchange else "queue",
                    b.routing_key,
                    dict(b.arguments),
                )
                for e in self.exchanges.values()
                for b in e.bindings.values()
            ],
        )
