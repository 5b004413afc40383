"""Dead-letter exchanges (死信交换机): poison messages are parked with a reason, never dropped.

A *poison message* fails every time it is handled (say, a price of ``"abc"``). Requeueing it
loops forever; rejecting it without requeue, which is what aio-pika's ``message.process()``
does when the handler raises, **deletes it** unless its queue names a dead-letter exchange
(``x-dead-letter-exchange``). Two ways to keep it, both shown by :func:`demo`:

* **broker-side**: the queue has a DLX; on reject the broker moves the message there and adds an
  ``x-death`` header saying *what* happened (``rejected``, ``expired``...) and where;
* **application-side** (:func:`handle_or_dead_letter`): the consumer publishes a copy to the
  DLX with the exception text in :data:`REASON_HEADER`, saying *why*, and acks the original
  only after the broker has confirmed the copy. If that fails it rejects, so the broker-side DLX
  still catches the message.

:func:`x_death` decodes the broker's ``x-death`` header for printing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    ExchangeType,
)

from mqlab.patterns._common import Delivery, DeliveryLog, PatternRun, text, unique
from mqlab.topology import DEFAULT_EXCHANGE, TopologyRecorder, short_name

__all__ = [
    "ORIGIN_HEADER",
    "REASON_HEADER",
    "Mode",
    "death_reason",
    "declare_with_dead_letters",
    "demo",
    "handle_or_dead_letter",
    "parse_order",
    "x_death",
]

log = logging.getLogger(__name__)

#: Why the application gave up on a message: ``"ExceptionType: text"``.
REASON_HEADER = "x-mqlab-error"
#: The routing key the message originally had.
ORIGIN_HEADER = "x-mqlab-original-routing-key"

Handler = Callable[[AbstractIncomingMessage], Awaitable[Any]]
Mode = Literal["process, no DLX", "process, DLX", "guarded, DLX"]


async def declare_with_dead_letters(
    rec: TopologyRecorder, name: str, *, durable: bool = False
) -> tuple[AbstractQueue, AbstractExchange, AbstractQueue]:
    """A work queue whose rejected messages go to a fanout DLX and its dead-letter queue."""
    dlx = await rec.exchange(f"{name}.dlx", ExchangeType.FANOUT, durable=durable)
    dead = await rec.queue(f"{name}.dead", durable=durable)
    await rec.bind(dead, dlx)
    queue = await rec.queue(name, durable=durable, arguments={"x-dead-letter-exchange": dlx.name})
    return queue, dlx, dead


def death_reason(message: AbstractIncomingMessage) -> str:
    """Why a dead-lettered message died: the application's reason, else the broker's x-death."""
    headers = message.headers or {}
    if REASON_HEADER in headers:
        return f"{_str(headers[REASON_HEADER])} (dead-lettered by the consumer)"
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        d = deaths[0]
        queue = short_name(_str(d.get("queue")))
        return f"x-death: {_str(d.get('reason'))} in queue {queue} (count {_str(d.get('count'))})"
    return "no reason recorded"


def x_death(message: AbstractIncomingMessage) -> list[dict[str, Any]]:
    """The broker's ``x-death`` header, one dict per (queue, reason), with bytes decoded.

    RabbitMQ (and the embedded broker) add it when they dead-letter a message: ``reason``
    (``rejected``, ``expired``, ``maxlen``...), ``queue``, ``exchange``, ``routing-keys``,
    ``count`` and ``time``. Empty when the message was never dead-lettered by a broker.
    """
    deaths = (message.headers or {}).get("x-death")
    if not isinstance(deaths, list):
        return []
    return [{str(k): _decoded(v) for k, v in d.items()} for d in deaths if isinstance(d, dict)]


def _decoded(value: Any) -> Any:
    if isinstance(value, list):
        return [_decoded(v) for v in value]
    return _str(value) if isinstance(value, bytes | bytearray) else value


def _str(value: object) -> str:
    # Header strings may arrive as bytes (AMQP long strings are raw bytes on the wire).
    return value.decode(errors="replace") if isinstance(value, bytes | bytearray) else str(value)


async def handle_or_dead_letter(
    message: AbstractIncomingMessage, handler: Handler, dead_letters: AbstractExchange
) -> bool:
    """Run ``handler``; on failure park a copy, with the reason, in ``dead_letters``.

    ``dead_letters`` must belong to a channel with publisher confirms (aio-pika's default), so
    the original is acked only once the copy is safe. Returns True if the handler succeeded.
    """
    try:
        await handler(message)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("poison message %r: %s", message.message_id or message.delivery_tag, reason)
        headers = {
            **(message.headers or {}),
            REASON_HEADER: reason,
            ORIGIN_HEADER: message.routing_key or "",
        }
        copy = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=message.delivery_mode,
            message_id=message.message_id,
            timestamp=message.timestamp,
            type=message.type,
        )
        try:
            result = await dead_letters.publish(copy, routing_key=message.routing_key or "")
            if isinstance(result, aiormq.abc.DeliveredMessage):
                raise RuntimeError("the dead-letter exchange has no queue bound")
        except Exception:
            log.exception("could not dead-letter %r; rejecting it instead", message.delivery_tag)
            await message.reject(requeue=False)  # the queue's own DLX, if any, still catches it
        else:
            await message.ack()
        return False
    await message.ack()
    return True


async def parse_order(message: AbstractIncomingMessage) -> Decimal:
    """A strict handler: the body must be ``SYMBOL PRICE`` with a positive decimal price."""
    symbol, _, price = text(message.body).partition(" ")
    try:
        value = Decimal(price)
    except InvalidOperation:
        raise ValueError(f"price {price!r} of {symbol!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"price {price!r} of {symbol!r} must be positive")
    return value


async def demo(
    connection: AbstractConnection,
    mode: Mode = "guarded, DLX",
    orders: tuple[str, ...] = ("BTCUSDT 42000.5", "ETHUSDT abc", "SOLUSDT -3", "BNBUSDT 310"),
    *,
    timeout: float = 5.0,
) -> PatternRun:
    """Feed orders (two of them poison) through a consumer in ``mode``; count what became of each.

    ``"process, no DLX"`` is the pitfall: ``message.process()`` rejects the poison and it is gone.
    """
    entries = DeliveryLog()
    deaths: dict[str, list[dict[str, Any]]] = {}  # body -> the broker's x-death header
    async with TopologyRecorder(connection) as rec:
        name = unique("ch09.orders")
        if mode == "process, no DLX":
            queue = await rec.queue(name)
            dlx = dead = None
        else:
            queue, dlx, dead = await declare_with_dead_letters(rec, name)
            rec.consumer("dead-letter inspector", dead)

            async def inspect(message: AbstractIncomingMessage) -> None:
                note = death_reason(message)
                entries.record(Delivery("dead-letter inspector", text(message.body), note=note))
                deaths[text(message.body)] = x_death(message)
                await message.ack()

            await dead.consume(inspect)
            if mode == "guarded, DLX":  # the handler itself publishes the failed order's copy
                rec.producer("order handler: failed orders", dlx, queue.name)
        rec.producer("strategy", DEFAULT_EXCHANGE, queue.name)
        rec.consumer("order handler", queue)
        handled = succeeded = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal handled, succeeded
            arrived = time.perf_counter()  # the entry is recorded after the work: stamp it now
            ok, note = True, "ok"
            if mode == "guarded, DLX":
                assert dlx is not None
                ok = await handle_or_dead_letter(message, parse_order, dlx)
                note = "ok" if ok else "failed, parked with its reason"
            else:
                try:
                    async with message.process():  # rejects WITHOUT requeue on an exception
                        await parse_order(message)
                except ValueError as exc:
                    ok, note = False, f"failed ({exc}); process() rejected it"
            entries.record(Delivery("order handler", text(message.body), note=note, at=arrived))
            handled += 1
            succeeded += ok

        await queue.consume(on_message)
        for order in orders:
            await rec.channel.default_exchange.publish(
                aio_pika.Message(order.encode()), routing_key=queue.name
            )
        await entries.wait_until(lambda: handled == len(orders), timeout, "orders not all handled")
        failed = len(orders) - succeeded
        parked = 0
        if dead is not None:
            await entries.wait_until(
                lambda: sum(d.consumer != "order handler" for d in entries) >= failed,
                timeout,
                "poison messages never reached the dead-letter queue",
            )
            parked = sum(d.consumer != "order handler" for d in entries)
        left = (await rec.verify()).queues[queue.name]
    in_queue = left[0] if left else 0
    counts = {
        "published": len(orders),
        "handled ok": succeeded,
        "dead-lettered": parked,
        "still queued": in_queue,
        "LOST": len(orders) - succeeded - parked - in_queue,
    }
    return PatternRun(entries, rec.topology, counts, {"x-death": deaths})
