"""Durability and persistence (持久化): what survives a broker restart.

Two separate switches, and a message survives a restart only with **both** on:

* a **durable** queue (``durable=True`` at declaration) is itself recreated after a restart;
* a **persistent** message (``delivery_mode=2``) is written to disk, so it is still in that
  queue afterwards. A persistent message in a transient queue dies with its queue.

Durability is fixed when the queue is declared: declaring it again with another ``durable``
value is refused (406 PRECONDITION_FAILED). aioquant declared ``auto_delete`` queues and
transient messages, so a restart lost every event in flight.

We cannot restart a RabbitMQ someone else uses, so :func:`restart_demo` starts a private
embedded broker with a data directory, restarts it, and looks.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, DeliveryMode
from aio_pika.exceptions import ChannelClosed

from mqlab.patterns._common import Delivery, DeliveryLog, PatternRun, text, unique
from mqlab.topology import DEFAULT_EXCHANGE, TopologyRecorder

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Survival",
    "demo",
    "persistent",
    "redeclare_refused",
    "restart_demo",
    "survival_table",
]


def persistent(body: str | bytes, **properties: object) -> aio_pika.Message:
    """A message the broker writes to disk (``delivery_mode=2``)."""
    data = body.encode() if isinstance(body, str) else body
    return aio_pika.Message(data, delivery_mode=DeliveryMode.PERSISTENT, **properties)  # type: ignore[arg-type]


async def redeclare_refused(connection: AbstractConnection, queue_name: str, durable: bool) -> str:
    """Declare ``queue_name`` again with ``durable``; return the broker's refusal ('' if none)."""
    channel = await connection.channel()
    try:
        await channel.declare_queue(queue_name, durable=durable)
    except ChannelClosed as exc:  # the refusal closes the channel
        return str(exc)
    await channel.close()
    return ""


async def demo(connection: AbstractConnection) -> PatternRun:
    """A durable queue and a persistent message, read back; and a refused re-declaration."""
    log = DeliveryLog()
    async with TopologyRecorder(connection) as rec:
        queue = await rec.queue(unique("ch09.durable"), durable=True)
        rec.producer("producer", DEFAULT_EXCHANGE, queue.name)
        rec.consumer("consumer", queue)
        for message in (persistent("fill #1"), aio_pika.Message(b"quote #2")):
            await rec.channel.default_exchange.publish(message, routing_key=queue.name)
        for _ in range(2):
            got = await _get(rec.channel, queue.name)
            mode = DeliveryMode(got.delivery_mode or 1)
            log.record(
                Delivery(
                    "consumer", text(got.body), note=f"delivery_mode={mode.value} ({mode.name})"
                )
            )
            await got.ack()
        refusal = await redeclare_refused(connection, queue.name, durable=False)
        log.record(
            Delivery("broker", "declare the queue again, durable=False", note=refusal or "accepted")
        )
    return PatternRun(log, rec.topology)


async def _get(channel: AbstractChannel, queue_name: str) -> aio_pika.abc.AbstractIncomingMessage:
    queue = await channel.get_queue(queue_name, ensure=False)
    for _ in range(200):
        message = await queue.get(fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no message in {queue_name!r} after 2 s")


@dataclass(frozen=True)
class Survival:
    """One combination, and whether it made it through the restart."""

    queue: str  # "durable" or "transient"
    message: str  # "persistent" or "transient"
    before: bool
    after: bool


async def restart_demo(data_dir: str | Path | None = None) -> list[Survival]:
    """Publish the four combinations to a private embedded broker, restart it, and look."""
    from mqlab.broker import BrokerThread

    combos = [(q, m) for q in ("durable", "transient") for m in ("persistent", "transient")]
    with tempfile.TemporaryDirectory(prefix="mqlab-durability-") as tmp:
        where = Path(data_dir or tmp)
        with BrokerThread(host="127.0.0.1", port=0, data_dir=where) as broker:
            connection = await aio_pika.connect(broker.url)  # short-lived: no reconnects wanted
            async with connection:
                channel = await connection.channel()
                for kind in ("durable", "transient"):
                    await channel.declare_queue(f"{kind}-queue", durable=kind == "durable")
                for q, m in combos:
                    body = f"{m} message".encode()
                    mode = (
                        DeliveryMode.PERSISTENT
                        if m == "persistent"
                        else DeliveryMode.NOT_PERSISTENT
                    )
                    message = aio_pika.Message(body, delivery_mode=mode)
                    await channel.default_exchange.publish(message, routing_key=f"{q}-queue")
                before = {
                    q: await _bodies(channel, f"{q}-queue", keep=True)
                    for q in ("durable", "transient")
                }
        with BrokerThread(host="127.0.0.1", port=0, data_dir=where) as broker:
            connection = await aio_pika.connect(broker.url)
            async with connection:
                after = {
                    q: await _bodies(connection, f"{q}-queue") for q in ("durable", "transient")
                }
    return [
        Survival(q, m, f"{m} message" in before[q], f"{m} message" in after[q]) for q, m in combos
    ]


async def _bodies(
    where: AbstractChannel | AbstractConnection, queue_name: str, *, keep: bool = False
) -> list[str]:
    """Bodies in a queue ([] if the queue is gone); ``keep`` leaves them there (requeue)."""
    channel = where if isinstance(where, AbstractChannel) else await where.channel()
    try:
        queue = await channel.get_queue(queue_name)
    except ChannelClosed:
        return []
    out, held = [], []
    while (message := await queue.get(fail=False)) is not None:
        out.append(text(message.body))
        held.append(message)
    for message in held:
        await (message.nack(requeue=True) if keep else message.ack())
    return out


def survival_table(rows: list[Survival]) -> pd.DataFrame:
    """The :func:`restart_demo` result as a table."""
    import pandas as pd

    return pd.DataFrame([r.__dict__ for r in rows])
