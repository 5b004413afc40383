"""Conformance: durable exchanges, queues, bindings and persistent messages survive a restart.

The embedded broker is restarted on the same port over the same ``data_dir`` (and, in a
second test, killed with SIGKILL to show a confirmed message was on disk before its confirm).
RabbitMQ is restarted with ``rabbitmqctl stop_app``/``start_app`` only when
``MQLAB_RABBITMQ_RESTARTABLE=1`` (CI sets it): on a shared machine that restart would cut
everyone else's connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import aio_pika
import aiormq
import pytest
from aio_pika import DeliveryMode, ExchangeType, Message

from .helpers import (
    TIMEOUT,
    Scratch,
    free_port,
    get_n,
    host_port,
    message_count,
    start_cli_broker,
    unique,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

RESTARTABLE = os.environ.get("MQLAB_RABBITMQ_RESTARTABLE") == "1"
QUEUE_ARGUMENTS = {"x-message-ttl": 3_600_000, "x-max-length": 1000}


class Names:
    """The entities one durability scenario declares, named uniquely."""

    def __init__(self) -> None:
        self.durable_exchange = unique("dx")
        self.durable_queue = unique("dq")
        self.transient_exchange = unique("tx")
        self.transient_queue = unique("tq")

    def track(self, s: Scratch) -> None:
        s.track_queue(self.durable_queue)
        s.track_queue(self.transient_queue)
        s._exchanges += [self.durable_exchange, self.transient_exchange]


async def _populate(url: str, names: Names) -> aio_pika.abc.AbstractConnection:
    """Declare durable and transient things and leave messages in every state a restart meets.

    Returns the still-open connection: its one unacked message is in flight when the broker
    stops, and must be back (it is persistent and was never acked) after the restart.
    """
    connection = await aio_pika.connect(url, timeout=TIMEOUT)
    channel = await connection.channel(publisher_confirms=True)
    durable_x = await channel.declare_exchange(
        names.durable_exchange, ExchangeType.TOPIC, durable=True
    )
    durable_q = await channel.declare_queue(
        names.durable_queue, durable=True, arguments=QUEUE_ARGUMENTS
    )
    await durable_q.bind(durable_x, "tick.#")
    transient_x = await channel.declare_exchange(names.transient_exchange, ExchangeType.FANOUT)
    transient_q = await channel.declare_queue(names.transient_queue)
    await transient_q.bind(transient_x, "")
    persistent = DeliveryMode.PERSISTENT
    for body, mode in [
        (b"acked", persistent),
        (b"persistent", persistent),
        (b"transient", DeliveryMode.NOT_PERSISTENT),
        (b"unacked", persistent),
    ]:
        await durable_x.publish(Message(body, delivery_mode=mode), "tick.btc")
    await transient_x.publish(Message(b"in a transient queue", delivery_mode=persistent), "")
    messages = await get_n(durable_q, 4, no_ack=False)
    assert [m.body for m in messages] == [b"acked", b"persistent", b"transient", b"unacked"]
    await messages[0].ack()
    await messages[1].nack(requeue=True)
    await messages[2].nack(requeue=True)
    # Never delivered before the restart: it must come back with redelivered=False.
    await durable_x.publish(Message(b"undelivered", delivery_mode=persistent), "tick.btc")

    # basic.nack has no reply, so RabbitMQ may not have requeued yet when a declare-ok counts.
    async def three_ready() -> bool:  # and "unacked" still in flight
        return await message_count(channel, names.durable_queue) == 3

    await wait_until(three_ready)
    return connection


async def _verify(url: str, names: Names) -> None:
    async with Scratch(url) as s:
        names.track(s)
        channel = s.channel
        durable_x = await channel.declare_exchange(
            names.durable_exchange, ExchangeType.TOPIC, durable=True, passive=True
        )
        # The arguments survived too: the same ones are accepted, other ones are 406.
        durable_q = await channel.declare_queue(
            names.durable_queue, durable=True, arguments=QUEUE_ARGUMENTS
        )
        recovered = await get_n(durable_q, 3)
        assert sorted(m.body for m in recovered) == [b"persistent", b"unacked", b"undelivered"], (
            "persistent messages (ready or unacked at shutdown) survive; transient and acked don't"
        )
        # Delivered before the restart (requeued, or in flight) means redelivered after it.
        assert {m.body: m.redelivered for m in recovered} == {
            b"persistent": True,
            b"unacked": True,
            b"undelivered": False,
        }
        assert await durable_q.get(fail=False) is None
        # The binding survived: routing through the durable exchange still reaches the queue.
        confirming = await s.new_channel(publisher_confirms=True)
        await (await confirming.get_exchange(durable_x.name, ensure=False)).publish(
            Message(b"after"), "tick.eth"
        )
        assert [m.body for m in await get_n(durable_q, 1)] == [b"after"]
        for passive in (
            lambda c: c.declare_exchange(names.transient_exchange, passive=True),
            lambda c: c.declare_queue(names.transient_queue, passive=True),
        ):
            checker = await s.new_channel()
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await passive(checker)
        changed = await s.new_channel()
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
            await changed.declare_queue(names.durable_queue, durable=True)


async def _scenario(url: str, restart: Callable[[], Awaitable[str]]) -> None:
    names = Names()
    try:
        connection = await _populate(url, names)
    except BaseException:
        async with Scratch(url) as s:
            names.track(s)
        raise
    try:
        url = await restart()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), TIMEOUT)
    await _verify(url, names)


async def test_embedded_restart_with_data_dir(tmp_path: Path) -> None:
    from mqlab.broker import Broker

    broker = Broker(host="127.0.0.1", port=0, data_dir=str(tmp_path))
    await broker.start()
    url = broker.url
    try:

        async def restart() -> str:
            nonlocal broker
            await broker.stop()
            broker = Broker(host="127.0.0.1", port=host_port(url)[1], data_dir=str(tmp_path))
            await broker.start()
            assert broker.url == url
            return broker.url

        await _scenario(url, restart)
    finally:
        await broker.stop()


async def test_embedded_without_data_dir_keeps_nothing() -> None:
    """No data_dir: everything, durable or not, lives in memory only."""
    from mqlab.broker import Broker

    name = unique("dq")
    async with Broker(host="127.0.0.1", port=0) as broker:
        url = broker.url
        connection = await aio_pika.connect(url, timeout=TIMEOUT)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            queue = await channel.declare_queue(name, durable=True)
            await channel.default_exchange.publish(
                Message(b"x", delivery_mode=DeliveryMode.PERSISTENT), queue.name
            )
    async with Broker(host="127.0.0.1", port=host_port(url)[1]) as broker:
        connection = await aio_pika.connect(broker.url, timeout=TIMEOUT)
        async with connection:
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await channel.declare_queue(name, passive=True)


@pytest.mark.slow  # a broker process killed and restarted
async def test_embedded_confirmed_messages_survive_sigkill(tmp_path: Path) -> None:
    """A publisher confirm means "on disk": kill -9 right after the confirms, nothing is lost."""
    port, data_dir, log = free_port(), tmp_path / "data", tmp_path / "broker.log"
    url = f"amqp://guest:guest@127.0.0.1:{port}/"
    name = unique("crash")
    process = await start_cli_broker(port, log, data_dir)
    try:
        connection = await aio_pika.connect(url, timeout=TIMEOUT)
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(name, durable=True)
        bodies = [b"%03d" % i for i in range(200)]
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    Message(body, delivery_mode=DeliveryMode.PERSISTENT), queue.name
                )
                for body in bodies
            )
        )
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        with contextlib.suppress(Exception):  # the peer is gone; any outcome will do
            await asyncio.wait_for(connection.close(), TIMEOUT)
        process = await start_cli_broker(port, log, data_dir)
        connection = await aio_pika.connect(url, timeout=TIMEOUT)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, durable=True)
            assert [m.body for m in await get_n(queue, 200)] == bodies
    finally:
        process.kill()
        process.wait(10)


@pytest.mark.rabbitmq
@pytest.mark.skipif(
    not RESTARTABLE,
    reason="restarting the shared RabbitMQ needs MQLAB_RABBITMQ_RESTARTABLE=1 (set by .ci/run)",
)
async def test_rabbitmq_restart(rabbitmq_url: str) -> None:
    async def restart() -> str:
        for step in (["stop_app"], ["start_app"], ["await_startup", "--timeout", "60"]):
            process = await asyncio.create_subprocess_exec(
                "rabbitmqctl", *step, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            _, err = await asyncio.wait_for(process.communicate(), 90)
            assert process.returncode == 0, f"rabbitmqctl {step[0]} failed: {err.decode()}"
        return rabbitmq_url

    await _scenario(rabbitmq_url, restart)
