"""One AMQP channel (信道): the methods a client sends on it, and what the broker answers.

A channel owns its consumers, the messages delivered to them but not yet acked (keyed by
delivery tag), its prefetch limits, in confirm mode the publish sequence number, and in
tx mode the publishes and acks held until ``tx.commit``. Content (a publish's header and
body frames) is reassembled here. Each handler either answers with the matching ``*Ok``
method or raises a ChannelException / ConnectionException.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pamqp import commands as spec

from mqlab.broker.errors import ChannelException, ConnectionException
from mqlab.broker.frames import unchecked
from mqlab.broker.message import Message, QueuedMessage, parse_expiration
from mqlab.broker.queue import Consumer, Queue
from mqlab.routing import Binding

if TYPE_CHECKING:
    from pamqp.base import Frame
    from pamqp.header import ContentHeader

    from mqlab.broker.exchange import Exchange
    from mqlab.broker.vhost import VirtualHost

__all__ = ["Channel", "ChannelOwner"]


class BrokerSettings(Protocol):
    """What a channel reads of the broker: the body size cap and the memory alarm."""

    @property
    def max_message_size(self) -> int: ...
    @property
    def alarm(self) -> bool: ...


class ChannelOwner(Protocol):
    """What a channel needs of its connection (:class:`mqlab.broker.connection.Connection`): a
    Protocol, so the channel and the server do not import each other."""

    OUT_LIMIT: int
    user: str
    out: list[bytes]
    paused: bool
    throttled: bool
    published: bool

    @property
    def broker(self) -> BrokerSettings: ...
    @property
    def vhost(self) -> VirtualHost: ...
    def block(self) -> None: ...
    def send(self, channel: int, method: Any) -> None: ...
    def send_content(self, channel: int, method: Any, message: Message) -> None: ...
    def confirm_pending(self, ch: Channel) -> None: ...
    def forget_channel(self, number: int) -> None: ...


#: What the channel remembers about a delivery until it is settled.
Unacked = tuple[Queue, QueuedMessage, Consumer | None]


class Channel:
    """Per-channel state and the handlers of every channel-level method."""

    def __init__(self, conn: ChannelOwner, number: int) -> None:
        self.conn = conn
        self.vhost = conn.vhost
        self.number = number
        self.closed = False  # torn down; waiting for Channel.CloseOk or already gone
        self.active = True  # channel.flow
        self.consumers: dict[str, Consumer] = {}
        self.unacked: OrderedDict[int, Unacked] = OrderedDict()
        self.delivery_tag = 0
        self.prefetch = 0  # basic.qos global=False: for consumers created afterwards
        self.global_prefetch = 0  # basic.qos global=True: for the whole channel
        self.confirm = False
        # tx.select mode: publishes held until commit, and settled deliveries to apply then
        self.tx: list[tuple[Exchange, Message, Any, bool]] | None = None
        self.tx_settled: list[tuple[str, bool, list[tuple[int, Unacked]]]] = []
        self.publish_seq = 0
        self.confirm_upto = 0  # highest publish seq ready to be acked
        self.confirm_count = 0  # how many since the last Basic.Ack was written
        self.last_queue = ""
        self._publish: tuple[spec.Basic.Publish, Exchange] | None = None
        self._header: ContentHeader | None = None
        self._payload = b""
        self._parts: list[bytes] = []
        self._remaining = 0

    # -- frames in -------------------------------------------------------------------------

    def on_method(self, method: Frame) -> None:
        if self._publish is not None:
            raise self._not_content()
        handler = _HANDLERS.get(type(method))
        if handler is None:
            raise ConnectionException(503, f"unexpected method {method.name} on a channel")
        handler(self, method)

    def _not_content(self) -> ConnectionException:
        error = ConnectionException(
            505, "expected content header for class 60, got non content header frame instead"
        )
        if self._publish is not None:  # RabbitMQ names the publish still waiting for it
            error.method = self._publish[0]
        return error

    def on_header(self, header: ContentHeader, payload: bytes) -> None:
        if self._publish is None or self._header is not None:
            raise ConnectionException(505, "expected method frame, got non method frame instead")
        limit = self.conn.broker.max_message_size
        if header.body_size > limit:
            # RabbitMQ's words; it says them once the body is in, we as soon as the size is
            # announced, so an oversized body is never held in memory (the rest is dropped
            # while the channel closes).
            self._publish = None
            raise ChannelException(
                406,
                f"message size {header.body_size} is larger than configured max size {limit}",
            )
        self._header = header
        self._payload = payload
        self._remaining = header.body_size
        if header.body_size == 0:
            self._complete(b"")

    def on_body(self, data: bytes) -> None:
        if self._header is None:
            if self._publish is not None:
                raise self._not_content()
            raise ConnectionException(505, "expected method frame, got non method frame instead")
        remaining = self._remaining - len(data)
        if remaining < 0:
            raise ConnectionException(505, "content body is longer than announced")
        if remaining == 0 and not self._parts:
            self._complete(data)
            return
        self._parts.append(data)
        self._remaining = remaining
        if remaining == 0:
            body = b"".join(self._parts)
            self._parts = []
            self._complete(body)

    def _complete(self, body: bytes) -> None:
        method, ex = self._publish  # type: ignore[misc]
        header = self._header
        assert header is not None
        self._publish = self._header = None
        props = header.properties
        if props.user_id is not None and props.user_id != self.conn.user:
            raise ChannelException(
                406,
                f"user_id property set to '{props.user_id}' but authenticated user was "
                f"'{self.conn.user}'",
            )
        message = Message(
            ex.name,
            method.routing_key,
            props,
            self._payload,
            body,
            parse_expiration(props.expiration) if props.expiration is not None else None,
        )
        if self.tx is not None:  # held until tx.commit
            self.tx.append((ex, message, props.headers, method.mandatory))
            return
        self._route(ex, message, props.headers, method.mandatory)

    def _route(self, ex: Exchange, message: Message, headers: Any, mandatory: bool) -> None:
        routed, refused = self.vhost.publish(ex, message, headers)
        if not routed and mandatory:
            self.conn.send_content(
                self.number,
                unchecked(spec.Basic.Return, 312, "NO_ROUTE", ex.name, message.routing_key),
                message,
            )
        if self.confirm:
            self.publish_seq += 1
            if refused:
                self.emit_confirms()
                self.conn.send(self.number, spec.Basic.Nack(self.publish_seq))
            else:
                self.confirm_upto = self.publish_seq
                self.confirm_count += 1
                self.conn.confirm_pending(self)

    def emit_confirms(self) -> None:
        """Write one Basic.Ack covering every publish confirmed since the last one."""
        if self.confirm_count:
            multiple = self.confirm_count > 1
            self.confirm_count = 0
            self.conn.send(self.number, spec.Basic.Ack(self.confirm_upto, multiple))

    # -- delivery --------------------------------------------------------------------------

    def can_deliver(self) -> bool:
        conn = self.conn
        if len(conn.out) >= conn.OUT_LIMIT:  # enough for this turn; resume after the write
            conn.throttled = True
            return False
        return (
            self.active
            and not self.closed
            and not conn.paused
            and (not self.global_prefetch or len(self.unacked) < self.global_prefetch)
        )

    def deliver(self, consumer: Consumer, qm: QueuedMessage) -> None:
        tag = self.delivery_tag + 1
        msg = qm.message
        method = unchecked(
            spec.Basic.Deliver, consumer.tag, tag, qm.redelivered, msg.exchange, msg.routing_key
        )
        self._hand_over(method, tag, consumer.queue, qm, consumer, consumer.no_ack)

    def _hand_over(
        self,
        method: Frame,
        tag: int,
        queue: Queue,
        qm: QueuedMessage,
        consumer: Consumer | None,
        no_ack: bool,
    ) -> None:
        """Send ``qm`` with ``method`` (Deliver or GetOk) as delivery ``tag``, then book it.

        Frames first, bookkeeping after: if a frame could not be built, the message must still
        be in the broker's hands, not forgotten (no_ack) or counted as delivered.
        """
        try:
            self.conn.send_content(self.number, method, qm.message)
        except Exception:
            queue.requeue([qm])
            raise
        self.delivery_tag = tag
        if no_ack:
            self.vhost.forget(qm)
        else:
            self.unacked[tag] = (queue, qm, consumer)
            if consumer is not None:
                consumer.unacked += 1
            queue.unacked += 1
            queue.unacked_bytes += qm.message.size
        if qm.store_id is not None:
            self.vhost.delivered(qm)

    def cancel_from_broker(self, consumer: Consumer) -> None:
        """The queue was deleted: tell the client its consumer is gone."""
        if self.consumers.pop(consumer.tag, None) is not None and not self.closed:
            self.conn.send(self.number, unchecked(spec.Basic.Cancel, consumer.tag, nowait=True))

    def _settle(self, tag: int, multiple: bool) -> list[tuple[int, Unacked]]:
        """Take delivery tags out of the unacked set (406 for an unknown tag)."""
        unacked = self.unacked
        if multiple:
            if tag == 0:
                items = list(unacked.items())
                unacked.clear()
            else:
                items = []
                while unacked and next(iter(unacked)) <= tag:
                    items.append(unacked.popitem(last=False))
            if not items and tag != 0:
                raise ChannelException(406, f"unknown delivery tag {tag}")
        else:
            entry = unacked.pop(tag, None)
            if entry is None:
                raise ChannelException(406, f"unknown delivery tag {tag}")
            items = [(tag, entry)]
        for _, (queue, qm, consumer) in items:
            queue.unacked -= 1
            queue.unacked_bytes -= qm.message.size
            if consumer is not None:
                consumer.unacked -= 1
        return items

    def _apply(self, action: str, requeue: bool, entries: list[Unacked]) -> None:
        """Carry out an ack, or a nack/reject (requeue, else dead-letter or drop)."""
        if action == "ack":
            forget = self.vhost.forget
            for _, qm, _ in entries:
                forget(qm)
        elif requeue:
            self._requeue(entries)
        else:
            for queue, qm, _ in entries:
                self.vhost.dead_letter(queue, qm, "rejected")
        self._after_settle(entries)

    def _settle_and_apply(self, action: str, tag: int, multiple: bool, requeue: bool) -> None:
        items = self._settle(tag, multiple)
        if self.tx is not None:  # applied at tx.commit
            self.tx_settled.append((action, requeue, items))
        else:
            self._apply(action, requeue, [entry for _, entry in items])

    def _after_settle(self, entries: list[Unacked]) -> None:
        queues = {id(q): q for q, _, _ in entries}
        if self.global_prefetch:
            queues.update((id(c.queue), c.queue) for c in self.consumers.values())
        for q in queues.values():
            q.dispatch()

    def _requeue(self, entries: list[Unacked]) -> None:
        groups: dict[int, tuple[Queue, list[QueuedMessage]]] = {}
        for queue, qm, _ in entries:
            groups.setdefault(id(queue), (queue, []))[1].append(qm)
        for queue, qms in groups.values():
            queue.requeue(qms)

    def teardown(self) -> None:
        """The channel is closing: requeue what it holds unacked, drop its consumers."""
        if self.closed:
            return
        self.closed = True
        held = [item for _, _, items in self.tx_settled for item in items]  # uncommitted acks
        self.tx, self.tx_settled = None, []
        for queue, qm, consumer in self.unacked.values():
            queue.unacked -= 1
            queue.unacked_bytes -= qm.message.size
            if consumer is not None:
                consumer.unacked -= 1
        ordered = sorted([*self.unacked.items(), *held], key=lambda item: item[0])
        self.unacked.clear()
        self._requeue([entry for _, entry in ordered])
        consumers = list(self.consumers.values())
        self.consumers.clear()
        for consumer in consumers:
            consumer.queue.remove_consumer(consumer)
        self._publish = self._header = None
        self._parts = []

    def _queue_name(self, name: str) -> str:
        # An empty queue name means "the last queue declared on this channel" (AMQP 0-9-1).
        if not name:
            if not self.last_queue:
                raise ChannelException(404, "no previously declared queue")
            return self.last_queue
        return name

    # -- channel ---------------------------------------------------------------------------

    def channel_close(self, m: spec.Channel.Close) -> None:
        self.teardown()
        self.conn.send(self.number, spec.Channel.CloseOk())
        self.conn.forget_channel(self.number)

    def channel_flow(self, m: spec.Channel.Flow) -> None:
        self.active = bool(m.active)
        self.conn.send(self.number, spec.Channel.FlowOk(self.active))
        if self.active:
            for c in list(self.consumers.values()):
                c.queue.dispatch()

    def channel_open(self, m: spec.Channel.Open) -> None:
        raise ConnectionException(504, "second 'channel.open' seen")

    # -- exchange --------------------------------------------------------------------------

    def exchange_declare(self, m: spec.Exchange.Declare) -> None:
        self.vhost.declare_exchange(
            m.exchange,
            m.exchange_type,
            passive=m.passive,
            durable=m.durable,
            auto_delete=m.auto_delete,
            internal=m.internal,
            arguments=m.arguments,
        )
        if not m.nowait:
            self.conn.send(self.number, spec.Exchange.DeclareOk())

    def exchange_delete(self, m: spec.Exchange.Delete) -> None:
        self.vhost.delete_exchange(m.exchange, if_unused=m.if_unused)
        if not m.nowait:
            self.conn.send(self.number, spec.Exchange.DeleteOk())

    def exchange_bind(self, m: spec.Exchange.Bind) -> None:
        binding = Binding(m.source, m.destination, m.routing_key, m.arguments or {}, True)
        self.vhost.bind(binding, self.conn)
        if not m.nowait:
            self.conn.send(self.number, spec.Exchange.BindOk())

    def exchange_unbind(self, m: spec.Exchange.Unbind) -> None:
        binding = Binding(m.source, m.destination, m.routing_key, m.arguments or {}, True)
        self.vhost.unbind(binding, self.conn)
        if not m.nowait:
            self.conn.send(self.number, spec.Exchange.UnbindOk())

    # -- queue -----------------------------------------------------------------------------

    def queue_declare(self, m: spec.Queue.Declare) -> None:
        q = self.vhost.declare_queue(
            m.queue,  # a passive '' is looked up as '' (404): the shortcut is not for declares
            self.conn,
            passive=m.passive,
            durable=m.durable,
            exclusive=m.exclusive,
            auto_delete=m.auto_delete,
            arguments=m.arguments,
        )
        self.last_queue = q.name
        if not m.nowait:
            self.conn.send(
                self.number,
                unchecked(spec.Queue.DeclareOk, q.name, len(q.messages), len(q.consumers)),
            )

    def queue_bind(self, m: spec.Queue.Bind) -> None:
        queue = self._queue_name(m.queue)
        key = m.routing_key if (m.queue or m.routing_key) else queue
        self.vhost.bind(Binding(m.exchange, queue, key, m.arguments or {}), self.conn)
        if not m.nowait:
            self.conn.send(self.number, spec.Queue.BindOk())

    def queue_unbind(self, m: spec.Queue.Unbind) -> None:
        queue = self._queue_name(m.queue)
        self.vhost.unbind(Binding(m.exchange, queue, m.routing_key, m.arguments or {}), self.conn)
        self.conn.send(self.number, spec.Queue.UnbindOk())

    def queue_purge(self, m: spec.Queue.Purge) -> None:
        count = self.vhost.purge_queue(self._queue_name(m.queue), self.conn)
        if not m.nowait:
            self.conn.send(self.number, spec.Queue.PurgeOk(count))

    def queue_delete(self, m: spec.Queue.Delete) -> None:
        count = self.vhost.delete_queue(
            self._queue_name(m.queue), self.conn, if_unused=m.if_unused, if_empty=m.if_empty
        )
        if not m.nowait:
            self.conn.send(self.number, spec.Queue.DeleteOk(count))

    # -- basic -----------------------------------------------------------------------------

    def basic_qos(self, m: spec.Basic.Qos) -> None:
        if m.prefetch_size:
            raise ConnectionException(540, f"prefetch_size!=0 ({m.prefetch_size})")
        if m.global_:
            self.global_prefetch = m.prefetch_count
        else:
            self.prefetch = m.prefetch_count
        self.conn.send(self.number, spec.Basic.QosOk())
        for c in list(self.consumers.values()):
            c.queue.dispatch()

    def basic_consume(self, m: spec.Basic.Consume) -> None:
        queue = self.vhost.queue(self._queue_name(m.queue), self.conn)
        tag = m.consumer_tag or "amq.ctag-" + secrets.token_urlsafe(16)
        if tag in self.consumers:
            raise ConnectionException(530, f"attempt to reuse consumer tag '{tag}'")
        queue.check_consumer(m.exclusive)
        consumer = Consumer(tag, self, queue, m.no_ack, m.exclusive, self.prefetch)
        self.consumers[tag] = consumer
        if not m.nowait:
            self.conn.send(self.number, unchecked(spec.Basic.ConsumeOk, tag))
        queue.add_consumer(consumer)

    def basic_cancel(self, m: spec.Basic.Cancel) -> None:
        consumer = self.consumers.pop(m.consumer_tag or "", None)
        if consumer is not None:
            consumer.queue.remove_consumer(consumer)
        if not m.nowait:
            self.conn.send(self.number, unchecked(spec.Basic.CancelOk, m.consumer_tag))

    def basic_publish(self, m: spec.Basic.Publish) -> None:
        if m.immediate:
            raise ConnectionException(540, "immediate=true")
        ex = self.vhost.exchange(m.exchange)
        conn = self.conn
        if not conn.published:
            conn.published = True
            if conn.broker.alarm:  # a new publisher during a memory alarm
                conn.block()
        if ex.internal:
            raise ChannelException(
                403, f"cannot publish to internal exchange '{ex.name}' in vhost '/'"
            )
        self._publish = (m, ex)

    def basic_get(self, m: spec.Basic.Get) -> None:
        queue = self.vhost.queue(self._queue_name(m.queue), self.conn)
        queue.touch()
        qm = queue.take()
        if qm is None:
            self.conn.send(self.number, spec.Basic.GetEmpty())
            return
        tag = self.delivery_tag + 1
        msg = qm.message
        method = unchecked(
            spec.Basic.GetOk,
            tag,
            qm.redelivered,
            msg.exchange,
            msg.routing_key,
            len(queue.messages),
        )
        self._hand_over(method, tag, queue, qm, None, m.no_ack)

    def basic_ack(self, m: spec.Basic.Ack) -> None:
        self._settle_and_apply("ack", m.delivery_tag or 0, m.multiple, False)

    def basic_reject(self, m: spec.Basic.Reject) -> None:
        self._settle_and_apply("reject", m.delivery_tag or 0, False, m.requeue)

    def basic_nack(self, m: spec.Basic.Nack) -> None:
        self._settle_and_apply("nack", m.delivery_tag or 0, m.multiple, m.requeue)

    def basic_recover(self, m: spec.Basic.Recover | spec.Basic.RecoverAsync) -> None:
        if not m.requeue:
            raise ConnectionException(540, "requeue=false")
        self._requeue([entry for _, entry in self._settle(0, True)])
        if isinstance(m, spec.Basic.Recover):
            self.conn.send(self.number, spec.Basic.RecoverOk())

    # -- confirm / tx ----------------------------------------------------------------------

    def confirm_select(self, m: spec.Confirm.Select) -> None:
        if self.tx is not None:
            raise ChannelException(406, "cannot switch from tx to confirm mode")
        self.confirm = True
        if not m.nowait:
            self.conn.send(self.number, spec.Confirm.SelectOk())

    def ignore(self, m: Frame) -> None:
        """Answers to methods the broker sent (e.g. CancelOk after our Basic.Cancel)."""

    def tx_select(self, m: spec.Tx.Select) -> None:
        if self.confirm:
            raise ChannelException(406, "cannot switch from confirm to tx mode")
        if self.tx is None:
            self.tx = []
        self.conn.send(self.number, spec.Tx.SelectOk())

    def tx_commit(self, m: spec.Tx.Commit) -> None:
        """Publish the held messages and apply the held acks/nacks/rejects, in order."""
        if self.tx is None:
            raise ChannelException(406, "channel is not transactional")
        publishes, settled = self.tx, self.tx_settled
        self.tx, self.tx_settled = [], []
        for ex, message, headers, mandatory in publishes:
            self._route(ex, message, headers, mandatory)
        for action, requeue, entries in settled:
            self._apply(action, requeue, [entry for _, entry in entries])
        self.conn.send(self.number, spec.Tx.CommitOk())

    def tx_rollback(self, m: spec.Tx.Rollback) -> None:
        """Forget the held messages; settled deliveries become unacked again."""
        if self.tx is None:
            raise ChannelException(406, "channel is not transactional")
        restored = [item for _, _, entries in self.tx_settled for item in entries]
        self.tx, self.tx_settled = [], []
        for _, (queue, qm, consumer) in restored:
            queue.unacked += 1
            queue.unacked_bytes += qm.message.size
            if consumer is not None:
                consumer.unacked += 1
        self.unacked = OrderedDict(sorted([*self.unacked.items(), *restored]))
        self.conn.send(self.number, spec.Tx.RollbackOk())


_HANDLERS: dict[type, Callable[[Channel, Any], None]] = {
    spec.Basic.Publish: Channel.basic_publish,
    spec.Basic.Ack: Channel.basic_ack,
    spec.Basic.Nack: Channel.basic_nack,
    spec.Basic.Reject: Channel.basic_reject,
    spec.Basic.Get: Channel.basic_get,
    spec.Basic.Consume: Channel.basic_consume,
    spec.Basic.Cancel: Channel.basic_cancel,
    spec.Basic.CancelOk: Channel.ignore,
    spec.Channel.FlowOk: Channel.ignore,
    spec.Basic.Qos: Channel.basic_qos,
    spec.Basic.Recover: Channel.basic_recover,
    spec.Basic.RecoverAsync: Channel.basic_recover,
    spec.Channel.Close: Channel.channel_close,
    spec.Channel.Flow: Channel.channel_flow,
    spec.Channel.Open: Channel.channel_open,
    spec.Confirm.Select: Channel.confirm_select,
    spec.Exchange.Declare: Channel.exchange_declare,
    spec.Exchange.Delete: Channel.exchange_delete,
    spec.Exchange.Bind: Channel.exchange_bind,
    spec.Exchange.Unbind: Channel.exchange_unbind,
    spec.Queue.Declare: Channel.queue_declare,
    spec.Queue.Bind: Channel.queue_bind,
    spec.Queue.Unbind: Channel.queue_unbind,
    spec.Queue.Purge: Channel.queue_purge,
    spec.Queue.Delete: Channel.queue_delete,
    spec.Tx.Select: Channel.tx_select,
    spec.Tx.Commit: Channel.tx_commit,
    spec.Tx.Rollback: Channel.tx_rollback,
}
