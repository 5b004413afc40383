from __future__ import annotations

import asyncio

import aio_pika
import pytest

from mqlab.patterns import rpc
from mqlab.patterns.rpc import RemoteError, RpcClient, RpcServer, RpcTimeout


async def test_demo_answers_reports_errors_and_times_out(connection) -> None:
    run = await rpc.demo(connection)
    replies = [d.body for d in run.log]
    assert replies[0] == "square(7) -> 49"
    assert replies[1].startswith("square(-1) -> RemoteError: ValueError")
    assert replies[2].startswith("square(12) -> RpcTimeout")
    # The late reply to square(12) and a stray reply are counted, not raised.
    assert run.counts == {"served": 3, "ignored replies": 2}


async def _double(body: bytes) -> bytes:
    return body * 2


@pytest.fixture
async def server_and_client(connection):
    channel = await connection.channel()
    server = RpcServer(channel, rpc.unique("t.rpc"), _double)
    await server.start()
    client = await RpcClient(channel).start()
    yield server, client
    await channel.close()


async def test_concurrent_calls_get_their_own_replies(server_and_client) -> None:
    server, client = server_and_client
    bodies = [f"{i}".encode() for i in range(20)]
    replies = await asyncio.gather(*(client.call(server.queue_name, b) for b in bodies))
    assert replies == [b * 2 for b in bodies]
    assert client.pending == {}


async def test_timeout_raises_and_forgets_the_call(connection) -> None:
    channel = await connection.channel()
    try:
        client = await RpcClient(channel).start()
        # Exclusive: nobody ever consumes it, so auto-delete would never fire; exclusive
        # goes with the connection and leaves nothing on a shared broker.
        queue = await channel.declare_queue(rpc.unique("t.rpc-nobody"), exclusive=True)
        with pytest.raises(RpcTimeout, match="no reply"):
            await client.call(queue.name, b"x", timeout=0.2)
        assert client.pending == {}
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await channel.close()


async def test_unknown_and_crashing_reply_handlers_are_contained(server_and_client) -> None:
    _, client = server_and_client

    def crashing(message, pending):  # the tutorial's pending[message.correlation_id]
        return pending[message.correlation_id or ""] is None

    stray = aio_pika.Message(b"?", correlation_id="nobody")
    for expected_ignored, handler in ((1, rpc.resolve_reply), (2, crashing)):
        client.on_reply = handler
        await client.channel.default_exchange.publish(stray, routing_key=client.reply_queue.name)
        for _ in range(300):
            if client.ignored >= expected_ignored:
                break
            await asyncio.sleep(0.01)
        assert client.ignored == expected_ignored
    assert len(client.errors) == 1 and isinstance(client.errors[0], KeyError)


async def test_remote_error_is_raised_at_once(connection) -> None:
    async def boom(body: bytes) -> bytes:
        raise ZeroDivisionError("no")

    channel = await connection.channel()
    try:
        server = RpcServer(channel, rpc.unique("t.rpc-boom"), boom)
        await server.start()
        client = await RpcClient(channel).start()
        with pytest.raises(RemoteError, match="ZeroDivisionError: no"):
            await client.call(server.queue_name, b"1", timeout=5)
    finally:
        await channel.close()
