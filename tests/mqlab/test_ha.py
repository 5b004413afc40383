"""The bus over several node URLs (failover) and with quorum queues, on both brokers."""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid

import pytest
from aio_pika.robust_connection import RobustConnection

from mqlab.bus import Bus, BusError, Delivery, probe
from mqlab.connection import mask_url
from mqlab.faults import FaultProxy
from mqlab.ha import (
    ENV_QUEUE_TYPE,
    FailoverConnection,
    add_queue_type_argument,
    apply_queue_type,
    queue_arguments,
    resolve_queue_type,
    split_urls,
)


def _prefix() -> str:
    return f"t-ha-{uuid.uuid4().hex[:8]}"


def test_split_urls_and_mask_every_password() -> None:
    one = "amqp://u:secret@h1:5672/"
    assert split_urls(one) == [one]
    both = f"{one}, amqp://u:secret@h2:5672/"
    assert split_urls(both) == [one, "amqp://u:secret@h2:5672/"]
    assert "secret" not in mask_url(both.replace(" ", ""))
    with pytest.raises(ValueError, match="empty"):
        split_urls(" , ")


def test_queue_type_option_env_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_QUEUE_TYPE, raising=False)
    assert resolve_queue_type() == "classic"
    assert queue_arguments("classic") == {}
    assert queue_arguments("quorum") == {"x-queue-type": "quorum"}
    monkeypatch.setenv(ENV_QUEUE_TYPE, "quorum")
    assert resolve_queue_type() == "quorum"
    assert resolve_queue_type("classic") == "classic"
    monkeypatch.setenv(ENV_QUEUE_TYPE, "mirrored")
    with pytest.raises(ValueError, match=r"unknown queue type 'mirrored' \(from \$MQLAB"):
        resolve_queue_type()
    parser = argparse.ArgumentParser()
    add_queue_type_argument(parser)
    assert apply_queue_type(parser.parse_args(["--queue-type", "quorum"])) == "quorum"
    assert os.environ[ENV_QUEUE_TYPE] == "quorum"  # what the pipeline's child services inherit
    with pytest.raises(SystemExit):
        parser.parse_args(["--queue-type", "mirrored"])


def test_aio_pika_still_has_the_hook_failover_overrides() -> None:
    # FailoverConnection overrides this private method; if aio-pika renames it, failover
    # would silently stop working, so fail here instead.
    assert hasattr(RobustConnection, "_RobustConnection__connect_transport")
    assert "_RobustConnection__connect_transport" in FailoverConnection.__dict__


async def test_probe_and_start_skip_a_dead_node(amqp_url: str) -> None:
    dead = "amqp://guest:guest@127.0.0.1:1/"
    await probe(f"{dead},{amqp_url}")
    with pytest.raises(BusError, match="cannot reach"):
        await probe(f"{dead},{dead}")
    async with Bus(f"{dead},{amqp_url}", prefix=_prefix()) as bus:
        assert isinstance(bus.connection, FailoverConnection)
        assert bus.connection.connected_index == 1  # whichever node it tried first
        await bus.delete()


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
async def test_fails_over_to_the_next_node_with_nothing_lost_or_doubled(
    amqp_url: str, queue_type: str
) -> None:
    """Two "nodes" (proxies to one broker); the one in use dies mid-stream and stays dead.

    The bus must move to the other, and every message must be handled exactly once.
    """
    prefix, total = _prefix(), 200
    handled: list[int] = []

    async def handler(delivery: Delivery) -> None:
        handled.append(int(delivery.body))

    async with FaultProxy(amqp_url) as first, FaultProxy(amqp_url) as second:
        url = f"{first.url},{second.url}"
        async with Bus(url, prefix=prefix, reconnect_interval=0.1, queue_type=queue_type) as bus:
            assert isinstance(bus.connection, FailoverConnection)
            on = bus.connection.connected_index  # a random node of the two
            assert on in (0, 1)
            victim = (first, second)[on]
            assert bus.declared["queues"][f"{prefix}.dlq"] == queue_arguments(queue_type)
            await bus.subscribe("q", [("events", "#")], handler)
            for i in range(total):
                await bus.publish("events", "k", f"{i}".encode(), message_id=f"m{i}")
                if i == total // 3:
                    victim.refuse(600)  # cut its links; it is gone for good: no reconnect
                    assert victim.drops > 0
            for _ in range(600):
                if len(set(handled)) >= total:
                    break
                await asyncio.sleep(0.05)
            connection = bus.connection
            await bus.delete()
    assert connection.connected_index == 1 - on, "the bus did not move to the other node"
    assert connection.failovers >= 1
    assert sorted(handled) == list(range(total)), "a message was lost or applied twice"
