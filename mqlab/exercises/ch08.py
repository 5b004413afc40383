"""Chapter 08 checks: read an aio-pika delivery the aioamqp way; publish so a restart loses nothing.

- :func:`check_envelope`: ``envelope_of(message)`` rebuilds aioamqp's envelope from an aio-pika
  message; checked on a first delivery and on a redelivery.
- :func:`check_survives_restart`: ``await publish(channel, queue_name, body)`` must leave the
  message in place across a broker restart (a private embedded broker is restarted).

The checks are coroutines; a notebook submits an answer with
``submit(check_envelope, envelope_of)`` (:func:`mqlab.exercises.submit`), which shows the
verdict and the hint instead of raising.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from mqlab import aioamqp_map
from mqlab.exercises import ExerciseError, Verdict, expect, passed, unanswered
from mqlab.patterns import unique

__all__ = ["check_envelope", "check_survives_restart"]

EnvelopeOf = Callable[[AbstractIncomingMessage], dict[str, Any]]
Publish = Callable[[AbstractChannel, str, bytes], Awaitable[None]]


async def _connect(url: str | None) -> AbstractRobustConnection:
    import mqlab

    return await mqlab.connect(url)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except NotImplementedError:
        raise unanswered() from None


async def check_envelope(envelope_of: EnvelopeOf, url: str | None = None) -> Verdict:
    """``envelope_of(message)`` must return aioamqp's five envelope fields with their values."""
    connection = await _connect(url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(unique("ex08.market"), "direct", auto_delete=True)
        queue = await channel.declare_queue(unique("ex08.envelope"), exclusive=True)
        await queue.bind(exchange, "kline.binance.BTCUSDT.1m")
        got: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await queue.consume(got.put)
        await exchange.publish(aio_pika.Message(b"bar"), routing_key="kline.binance.BTCUSDT.1m")
        for attempt_no in (1, 2):
            message = await asyncio.wait_for(got.get(), 10)
            truth = aioamqp_map.envelope(message)
            try:
                answer = _call(envelope_of, message)
            except AttributeError as exc:
                raise ExerciseError(
                    f"envelope_of raised AttributeError: {exc}",
                    "aio-pika renamed some fields; look them up in aioamqp_map.table('envelope')",
                ) from None
            expect(
                isinstance(answer, dict) and set(answer) == set(truth),
                f"envelope_of returned {answer!r}; expected a dict with keys {sorted(truth)}",
                "use aioamqp's names as the keys",
            )
            wrong = {k: (answer[k], v) for k, v in truth.items() if answer[k] != v}
            expect(
                not wrong,
                f"delivery {attempt_no}: wrong values {{field: (yours, actual)}}: {wrong}",
                "is_redeliver is True on the second delivery: read it from the message",
            )
            if attempt_no == 1:
                await message.nack(requeue=True)  # comes back as a redelivery
            else:
                await message.ack()
    return passed("check_envelope", "first delivery and redelivery")


async def check_survives_restart(publish: Publish) -> Verdict:
    """After ``await publish(channel, "orders", body)`` the message must survive a restart."""
    from mqlab.broker import BrokerThread

    body = b"order BTCUSDT buy 0.1"
    with tempfile.TemporaryDirectory(prefix="ex08-restart-") as data_dir:
        with BrokerThread(port=0, data_dir=Path(data_dir)) as broker:
            connection = await aio_pika.connect(broker.url)
            async with connection:
                channel = await connection.channel()
                try:
                    await publish(channel, "orders", body)
                except NotImplementedError:
                    raise unanswered() from None
        with BrokerThread(port=0, data_dir=Path(data_dir)) as broker:
            connection = await aio_pika.connect(broker.url)
            async with connection:
                channel = await connection.channel()
                try:
                    queue = await channel.get_queue("orders")
                except aio_pika.exceptions.ChannelClosed:
                    raise ExerciseError(
                        "after the restart there is no queue 'orders'",
                        "declare it with durable=True before publishing (a transient queue "
                        "dies with the broker)",
                    ) from None
                message = await queue.get(fail=False, no_ack=True)
    expect(
        message is not None,
        "the durable queue came back empty: the message was lost in the restart",
        "publish it with delivery_mode=aio_pika.DeliveryMode.PERSISTENT, to the queue by name "
        "through channel.default_exchange",
    )
    assert message is not None
    expect(
        message.body == body,
        f"found {message.body!r} in 'orders', expected {body!r}",
        "publish the body you were given, unchanged",
    )
    return passed("check_survives_restart", "durable queue + persistent message")
