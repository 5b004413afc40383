"""The memory high watermark: publishers are blocked past it and unblocked once consumers drain.

Embedded only. RabbitMQ does the same with its ``vm_memory_high_watermark`` (default 0.4 of
RAM): "When the memory alarm is set, connections that publish are blocked ... clients that
support the connection.blocked extension are notified" (https://www.rabbitmq.com/memory.html,
https://www.rabbitmq.com/connection-blocked.html). The shared RabbitMQ on this machine cannot
have its watermark lowered for a test without blocking everyone else's publishers, so only the
embedded broker is driven past its limit here; docs/architecture.md says so.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aio_pika
import psutil
import pytest
from pamqp import commands

from .helpers import RawConnection, free_port, start_cli_broker, unique

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

LIMIT = 16 * 2**20  # --memory-limit for the broker under test
MARGIN = 24 * 2**20  # RSS may exceed "empty + limit" by this much: see the assertion
BODY = b"m" * 4096
BATCH = 64


async def _poll(raw: RawConnection, kind: type, timeout: float = 0.005) -> bool:
    """True if a ``kind`` frame arrives within ``timeout`` (other frames are skipped)."""
    try:
        while True:
            got = await raw.recv(timeout)
            assert got is not None, "the broker hung up on the publisher"
            if isinstance(got[1], kind):
                return True
    except TimeoutError:
        return False


async def _consume_acking(queue: aio_pika.abc.AbstractQueue, n: int, timeout: float) -> list[bytes]:
    """The bodies, once ``n`` messages came (acked); the consumer goes on until its channel
    closes, and keeps adding to the list it returned."""
    got: list[bytes] = []
    enough = asyncio.Event()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        got.append(message.body)
        await message.ack()
        if len(got) >= n:
            enough.set()

    await queue.consume(on_message)
    await asyncio.wait_for(enough.wait(), timeout)
    return got


async def test_publisher_is_blocked_past_the_limit_and_unblocked_after_draining(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"amqp://guest:guest@127.0.0.1:{port}/"
    process = await start_cli_broker(
        port, tmp_path / "broker.log", None, "--memory-limit", f"{LIMIT >> 20}MiB"
    )
    try:
        broker = psutil.Process(process.pid)
        queue = unique("mem")
        publisher = await RawConnection.open(url, capabilities={"connection.blocked": True})
        publisher.send(commands.Queue.Declare(queue=queue), channel=1)
        await publisher.expect(commands.Queue.DeclareOk, channel=1)
        await asyncio.sleep(0.3)
        rss_empty = broker.memory_info().rss

        sent, blocked = 0, False
        while sent < 4 * LIMIT // len(BODY):  # far past the limit: the alarm must fire before
            for _ in range(BATCH):
                publisher.publish(BODY, routing_key=queue)
            sent += BATCH
            await asyncio.wait_for(publisher.writer.drain(), 10)
            if await _poll(publisher, commands.Connection.Blocked):
                blocked = True
                break
        assert blocked, f"no connection.blocked after {sent} x {len(BODY)} B"
        await asyncio.sleep(0.3)  # what was in flight lands
        rss_blocked = broker.memory_info().rss
        # The margin covers what arrives between two checks of the watermark (every 50 ms),
        # the kernel-to-Python read buffers, and allocator slack.
        print(
            f"\nmemory: RSS {rss_empty / 2**20:.1f} MiB empty, {rss_blocked / 2**20:.1f} MiB "
            f"when blocked after {sent} x {len(BODY)} B; limit {LIMIT >> 20} MiB"
        )
        assert rss_blocked < rss_empty + LIMIT + MARGIN

        # A consumer on its own connection is not blocked: it drains the queue.
        consumer = await aio_pika.connect(url, timeout=10)
        async with consumer:
            channel = await consumer.channel()
            await channel.set_qos(prefetch_count=500)
            taken = await _consume_acking(await channel.get_queue(queue), sent // 2, 30)
            unblocked = False
            for _ in range(400):
                if await _poll(publisher, commands.Connection.Unblocked, 0.05):
                    unblocked = True
                    break
            assert unblocked, f"no connection.unblocked after the consumer took {len(taken)}"
            # The publisher is heard again: a declare on it is answered.
            publisher.send(commands.Queue.Declare(queue=queue, passive=True), channel=1)
            ok = await publisher.expect(commands.Queue.DeclareOk, channel=1, timeout=10)
            assert ok.queue == queue
            await channel.queue_delete(queue)
        await publisher.close()
    finally:
        process.kill()
        process.wait(10)


async def test_memory_used_counts_ready_and_unacked_messages() -> None:
    """The estimate the watermark compares: grows with messages held, falls when acked."""
    from mqlab.broker import Broker
    from mqlab.broker.server import MESSAGE_OVERHEAD

    async with Broker(host="127.0.0.1", port=0) as broker:
        before = broker.memory_used()
        connection = await aio_pika.connect(broker.url, timeout=10)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            queue = await channel.declare_queue(exclusive=True)
            for _ in range(10):
                await channel.default_exchange.publish(aio_pika.Message(BODY), queue.name)
            held = broker.memory_used() - before
            assert held >= 10 * (len(BODY) + MESSAGE_OVERHEAD)
            message = await queue.get(no_ack=False)
            assert message is not None
            assert broker.memory_used() - before >= held - 64  # unacked still counts
            await message.ack()
            await asyncio.sleep(0.05)
            assert broker.memory_used() - before <= held - len(BODY)


async def _publish_persistent(url: str, queue: str, count: int) -> None:
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True)
        for start in range(0, count, 200):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(
                            b"%06d" % i + BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                        ),
                        queue,
                    )
                    for i in range(start, min(start + 200, count))
                )
            )


async def _drain(url: str, queue: str, count: int) -> list[bytes]:
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=200)
        q = await channel.declare_queue(queue, durable=True)
        got = await _consume_acking(q, count, 60)
        await q.delete(if_unused=False, if_empty=False)
    return got


async def test_with_a_data_dir_bodies_wait_on_disk_instead_of_blocking(tmp_path: Path) -> None:
    """Persistent messages past half the limit leave RAM (paged out), so the publisher is not
    blocked; they come back intact and in order. A restart loads none of the bodies."""
    from mqlab.broker import Broker

    count, limit = 2000, 2 * 2**20  # ~8 MiB of bodies against a 2 MiB limit
    expected = [b"%06d" % i + BODY for i in range(count)]
    queue = unique("paged")
    broker = Broker(host="127.0.0.1", port=0, data_dir=tmp_path, memory_limit=limit)
    await broker.start()
    try:
        await _publish_persistent(broker.url, queue, count)
        await asyncio.sleep(0.2)  # a watermark check or two
        q = broker.vhost.queues[queue]
        assert not broker.alarm
        assert q.paged_bytes > count * len(BODY) // 2, "most bodies should be on disk only"
        assert broker.memory_used() <= limit
        port = broker.port
        await broker.stop()
        broker = Broker(host="127.0.0.1", port=port, data_dir=tmp_path, memory_limit=limit)
        await broker.start()
        q = broker.vhost.queues[queue]
        assert len(q.messages) == count and q.paged_bytes == q.bytes, "restart left bodies on disk"
        assert await _drain(broker.url, queue, count) == expected
    finally:
        await broker.stop()
