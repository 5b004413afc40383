"""Load: many connections and channels at once, and 100k messages queued in one queue.

The 100k messages are published through raw pipelined frames (pamqp-marshalled, written in
batches, confirms read concurrently), so the broker, not aio-pika, sets the pace. Memory per
queued message is measured on an embedded broker in a process of its own (its RSS, via
psutil), and for RabbitMQ from ``rabbitmqctl list_queues memory`` when that is usable.
Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path

import aio_pika
import pamqp.frame
import psutil
import pytest
from aio_pika import Message
from pamqp import commands
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from .helpers import (
    TIMEOUT,
    RawConnection,
    Scratch,
    collect,
    free_port,
    get_n,
    message_count,
    start_cli_broker,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CONNECTIONS, CHANNELS = 50, 5
MESSAGES, BATCH, BODY_SIZE = 100_000, 2_000, 100
# Generous: a queued 100-byte message should cost well under this much broker memory.
MAX_BYTES_PER_MESSAGE = 4096


async def test_many_connections_and_channels(amqp_url: str) -> None:
    async with Scratch(amqp_url) as s:
        queue = await s.queue()
        gate = asyncio.Semaphore(10)  # connect ten at a time, like a fleet of services starting

        async def client(number: int) -> aio_pika.abc.AbstractConnection:
            async with gate:
                connection = await s.connect()
            channels = [await connection.channel(publisher_confirms=True) for _ in range(CHANNELS)]
            for index, channel in enumerate(channels):
                passive = await channel.declare_queue(queue.name, passive=True)
                assert passive.name == queue.name
                body = b"%d/%d" % (number, index)
                await channel.default_exchange.publish(Message(body), queue.name)
            return connection

        connections = await asyncio.wait_for(
            asyncio.gather(*(client(n) for n in range(CONNECTIONS))), 120
        )
        assert all(not c.is_closed for c in connections)
        total = CONNECTIONS * CHANNELS
        assert await message_count(s.channel, queue.name) == total
        received = await collect(queue, total, no_ack=True, timeout=60)
        want = {b"%d/%d" % (n, i) for n in range(CONNECTIONS) for i in range(CHANNELS)}
        assert {m.body for m in received} == want
        print(f"\nload: {CONNECTIONS} connections x {CHANNELS} channels = {total} channels open")
        await asyncio.gather(*(c.close() for c in connections))


async def _publish_pipelined(url: str, queue_name: str, messages: int = MESSAGES) -> float:
    """Publish ``messages`` with confirms, never waiting for one before sending the next.

    Returns the seconds from the first byte sent to the last confirm received.
    """
    raw = await RawConnection.open(url)
    try:
        raw.send(commands.Confirm.Select(), channel=1)
        await raw.expect(commands.Confirm.SelectOk, channel=1)
        confirmed = 0

        async def read_confirms() -> None:
            nonlocal confirmed
            while confirmed < messages:
                got = await raw.recv(timeout=60)
                assert got is not None, "broker hung up during the load"
                frame = got[1]
                assert isinstance(frame, commands.Basic.Ack), f"expected a confirm, got {frame!r}"
                confirmed = (
                    frame.delivery_tag if frame.multiple else max(confirmed, frame.delivery_tag)
                )

        def batch(start: int) -> bytes:
            frames = []
            for number in range(start, start + BATCH):
                body = (b"%08d" % number).ljust(BODY_SIZE, b".")
                frames += [
                    pamqp.frame.marshal(commands.Basic.Publish(routing_key=queue_name), 1),
                    pamqp.frame.marshal(ContentHeader(body_size=BODY_SIZE), 1),
                    pamqp.frame.marshal(ContentBody(body), 1),
                ]
            return b"".join(frames)

        reader = asyncio.create_task(read_confirms())
        started = time.perf_counter()
        for start in range(0, messages, BATCH):
            raw.send_bytes(batch(start))
            await raw.writer.drain()
        await asyncio.wait_for(reader, 90)
        return time.perf_counter() - started
    finally:
        await raw.close()


def _rabbitmq_queue_memory(name: str) -> int | None:
    """Bytes RabbitMQ reports for one queue, if rabbitmqctl is usable here."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        out = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name", "memory"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        for line in out.splitlines():
            fields = line.split()
            if fields and fields[0] == name:
                return int(fields[1])
    return None


async def test_100k_queued_messages(amqp_url: str, broker_kind: str) -> None:
    async with Scratch(amqp_url) as s:
        queue = await s.queue()
        seconds = await _publish_pipelined(amqp_url, queue.name)
        assert await message_count(s.channel, queue.name) == MESSAGES
        # A full queue still serves in order.
        head = await get_n(queue, 5)
        assert [m.body[:8] for m in head] == [b"%08d" % i for i in range(5)]
        purged = await asyncio.wait_for(queue.purge(), TIMEOUT * 6)
        assert purged.message_count == MESSAGES - 5
        assert await message_count(s.channel, queue.name) == 0
        print(
            f"\nload[{broker_kind}]: {MESSAGES} x {BODY_SIZE} B queued with confirms in "
            f"{seconds:.1f} s ({MESSAGES / seconds:,.0f} msg/s, raw pipelined publisher)"
        )


async def test_embedded_memory_per_queued_message(tmp_path: Path) -> None:
    """RSS of a broker process of its own (``python -m mqlab broker``), before and after."""
    port = free_port()
    url = f"amqp://guest:guest@127.0.0.1:{port}/"
    process = await start_cli_broker(port, tmp_path / "broker.log")
    try:
        broker = psutil.Process(process.pid)
        async with Scratch(url) as s:
            queue = await s.queue()
            # Warm up connection buffers and caches with a few messages, not with a full queue:
            # freed memory stays in Python's allocator and would hide the next fill.
            await _publish_pipelined(url, queue.name, BATCH)
            await queue.purge()
            await asyncio.sleep(0.5)
            rss_empty = broker.memory_info().rss
            await _publish_pipelined(url, queue.name)
            assert await message_count(s.channel, queue.name) == MESSAGES
            rss_full = broker.memory_info().rss
        per_message = (rss_full - rss_empty) / MESSAGES
        print(
            f"\nload[embedded]: broker RSS {rss_empty / 1e6:.1f} MB empty, "
            f"{rss_full / 1e6:.1f} MB with {MESSAGES} x {BODY_SIZE} B queued "
            f"= {per_message:,.0f} B per queued message"
        )
        assert per_message < MAX_BYTES_PER_MESSAGE, f"{per_message:.0f} B per queued message"
    finally:
        process.kill()
        process.wait(10)


async def test_rabbitmq_memory_per_queued_message(rabbitmq_url: str) -> None:
    """For comparison: what RabbitMQ itself reports for the queue (rabbitmqctl, needs root)."""
    async with Scratch(rabbitmq_url) as s:
        queue = await s.queue()
        empty = await asyncio.to_thread(_rabbitmq_queue_memory, queue.name)
        if empty is None:
            pytest.skip("rabbitmqctl list_queues is not usable here (needs root)")
        await _publish_pipelined(rabbitmq_url, queue.name)
        full = await asyncio.to_thread(_rabbitmq_queue_memory, queue.name)
        assert full is not None and full > empty
        print(
            f"\nload[rabbitmq]: queue memory {empty / 1e6:.2f} MB empty, {full / 1e6:.1f} MB "
            f"full = {(full - empty) / MESSAGES:,.0f} B per queued message (rabbitmqctl)"
        )
        await queue.purge()
