"""Every aioamqp name the seed chapter uses, and where it lives in aio-pika, as data.

aioquant talked to RabbitMQ through aioamqp (last release 2022); we use aio-pika, which is
maintained. The two differ in shape more than in substance:

* aioamqp hands a consumer callback four arguments, ``(channel, body, envelope, properties)``;
  aio-pika hands it one :class:`aio_pika.IncomingMessage` that carries all of them as attributes;
* aioamqp methods take names (``queue_bind(queue_name, exchange_name, ...)``); aio-pika returns
  objects from declarations and calls methods on them (``queue.bind(exchange, ...)``).

:data:`MAPPING` is the table (render it with :func:`table`); :func:`read` reads any envelope or
properties field from an aio-pika message by its aioamqp name, and :func:`envelope` /
:func:`properties` rebuild aioamqp's two objects as dicts. ``tests/mqlab/test_aioamqp_map.py``
publishes a message with every property set and checks each row against the broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from aio_pika.abc import AbstractIncomingMessage

__all__ = [
    "ENVELOPE_FIELDS",
    "MAPPING",
    "PROPERTIES_FIELDS",
    "Row",
    "envelope",
    "properties",
    "read",
    "table",
]

#: The envelope fields the seed lists, in its order.
ENVELOPE_FIELDS = ("consumer_tag", "delivery_tag", "exchange_name", "routing_key", "is_redeliver")
#: The properties fields the seed lists, in its order.
PROPERTIES_FIELDS = (
    "content_type",
    "content_encoding",
    "headers",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "message_type",
    "user_id",
    "app_id",
    "cluster_id",
)


@dataclass(frozen=True)
class Row:
    """One aioamqp name and its aio-pika counterpart."""

    kind: str  # "connection", "channel", "method", "callback", "envelope", "properties"
    aioamqp: str
    aio_pika: str
    note: str = ""
    #: for envelope and properties rows: the attribute of ``IncomingMessage`` holding the value
    attribute: str | None = None


_METHODS = (
    Row("connection",
        "transport, protocol = await aioamqp.connect(host, port, login, password, virtualhost)",
        'connection = await aio_pika.connect_robust("amqp://login:password@host:port/vhost")',
        "one URL; the protocol object becomes the connection; robust = reconnects and "
        "redeclares by itself (use it for anything long-running)"),
    Row("connection", "await protocol.close(); transport.close()", "await connection.close()",
        "or `async with connection:`"),
    Row("channel", "channel = await protocol.channel()", "channel = await connection.channel()",
        "publisher confirms are on by default (aioamqp: `await channel.confirm_select()`)"),
    Row("method",
        "await channel.queue_declare(queue_name, passive, durable, exclusive, auto_delete, "
        "no_wait, arguments, timeout)",
        "queue = await channel.declare_queue(name, passive=, durable=, exclusive=, auto_delete=, "
        "arguments=, timeout=)",
        "returns a Queue object instead of a dict; counts in queue.declaration_result"),
    Row("method", "await channel.exchange_declare(exchange_name, type_name, passive, durable, "
        "auto_delete, no_wait, arguments, timeout)",
        "exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=, "
        "auto_delete=, arguments=)",
        "the type is an enum (or its string); returns an Exchange object"),
    Row("method", "await channel.queue_bind(queue_name, exchange_name, routing_key)",
        "await queue.bind(exchange, routing_key)", "exchange may be the object or its name"),
    Row("method", "await channel.publish(payload, exchange_name, routing_key, properties={...})",
        "await exchange.publish(aio_pika.Message(body, **properties), routing_key)",
        "default exchange: channel.default_exchange; on a confirm channel it returns after the "
        "broker's ack; aio-pika 10 publishes mandatory=True by default"),
    Row("method", "await channel.basic_consume(callback, queue_name=name)",
        "await queue.consume(callback)",
        "or `async with queue.iterator() as it: async for m in it`"),
    Row("method", "await channel.basic_qos(prefetch_count=1)",
        "await channel.set_qos(prefetch_count=1)"),
    Row("method", "await channel.basic_client_ack(envelope.delivery_tag)", "await message.ack()"),
    Row("method", "await channel.basic_reject(envelope.delivery_tag, requeue=False)",
        "await message.reject(requeue=False)",
        "or message.nack(); `async with message.process():` acks, or rejects WITHOUT requeue "
        "when the block raises"),
    Row("callback", "async def callback(channel, body, envelope, properties)",
        "async def callback(message: aio_pika.abc.AbstractIncomingMessage)",
        "one argument carries everything below"),
    Row("callback", "channel (callback argument)", "message.channel",
        "the low-level aiormq channel"),
    Row("callback", "body (callback argument)", "message.body", "bytes in both"),
)  # fmt: skip


def _field(kind: str, name: str, attribute: str | None = None, note: str = "") -> Row:
    """An envelope or properties row: aioamqp's ``kind.name`` is aio-pika's
    ``message.attribute`` (the same name unless given)."""
    attribute = attribute or name
    return Row(kind, f"{kind}.{name}", f"message.{attribute}", note, attribute)


_ENVELOPE = (
    _field("envelope", "consumer_tag"),
    _field("envelope", "delivery_tag", note="message.ack() uses it for you"),
    _field("envelope", "exchange_name", "exchange", "renamed"),
    _field("envelope", "routing_key"),
    _field("envelope", "is_redeliver", "redelivered", "renamed"),
)

_PROPERTIES = (
    _field("properties", "content_type"),
    _field("properties", "content_encoding"),
    _field("properties", "headers", note="a dict"),
    _field("properties", "delivery_mode", note="an enum: DeliveryMode.PERSISTENT == 2"),
    _field("properties", "priority"),
    _field("properties", "correlation_id"),
    _field("properties", "reply_to"),
    _field(
        "properties",
        "expiration",
        note="milliseconds as a string on the wire; aio-pika gives seconds as a float",
    ),
    _field("properties", "message_id"),
    _field("properties", "timestamp", note="a datetime"),
    _field("properties", "message_type", "type", "renamed; set it with Message(type=...)"),
    _field(
        "properties",
        "user_id",
        note="RabbitMQ refuses a user_id other than the connection's login",
    ),
    _field("properties", "app_id"),
    _field(
        "properties",
        "cluster_id",
        note="deprecated in AMQP 0-9-1: pamqp refuses to send a value, so it is always empty",
    ),
)

#: The whole mapping, in the seed's order: connection, channel, methods, callback, fields.
MAPPING: tuple[Row, ...] = _METHODS + _ENVELOPE + _PROPERTIES

_BY_NAME = {row.aioamqp: row for row in _ENVELOPE + _PROPERTIES}


def read(message: AbstractIncomingMessage, aioamqp_name: str) -> Any:
    """The value aioamqp called ``aioamqp_name`` (e.g. ``"envelope.is_redeliver"``)."""
    row = _BY_NAME.get(aioamqp_name)
    if row is None or row.attribute is None:
        known = ", ".join(sorted(_BY_NAME))
        raise KeyError(
            f"{aioamqp_name!r} is not an aioamqp envelope/properties field; one of: {known}"
        )
    return getattr(message, row.attribute)


def envelope(message: AbstractIncomingMessage) -> dict[str, Any]:
    """aioamqp's envelope, rebuilt as a dict from an aio-pika message."""
    return {name: read(message, f"envelope.{name}") for name in ENVELOPE_FIELDS}


def properties(message: AbstractIncomingMessage) -> dict[str, Any]:
    """aioamqp's properties, rebuilt as a dict from an aio-pika message."""
    return {name: read(message, f"properties.{name}") for name in PROPERTIES_FIELDS}


def table(kind: str | None = None) -> pd.DataFrame:
    """The mapping as a table (optionally only one ``kind`` of row)."""
    import pandas as pd

    rows = [r for r in MAPPING if kind is None or r.kind == kind]
    frame = pd.DataFrame(
        [(r.kind, r.aioamqp, r.aio_pika, r.note) for r in rows],
        columns=["kind", "aioamqp", "aio-pika", "note"],
    )
    return frame
