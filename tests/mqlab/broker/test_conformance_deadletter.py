"""Conformance: TTL (queue and per message), dead-letter exchanges, x-death, x-max-length."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import pytest
from aio_pika import Message
from aio_pika.abc import AbstractIncomingMessage

from .helpers import Scratch, get_n, message_count, wait_until

pytestmark = pytest.mark.timeout(60)


async def _dead_letter_setup(
    s: Scratch, **source_arguments: Any
) -> tuple[aio_pika.abc.AbstractQueue, aio_pika.abc.AbstractQueue, str]:
    """A source queue dead-lettering into a fanout DLX, and the queue behind that DLX."""
    dlx = await s.exchange(aio_pika.ExchangeType.FANOUT)
    dead = await s.queue()
    await dead.bind(dlx, routing_key="")
    source = await s.queue(arguments={"x-dead-letter-exchange": dlx.name, **source_arguments})
    return source, dead, dlx.name


def _death(message: AbstractIncomingMessage) -> dict[str, Any]:
    deaths = message.headers.get("x-death")
    assert isinstance(deaths, list) and deaths, f"no x-death header in {message.headers}"
    return deaths[0]


async def test_queue_ttl_dead_letters_with_x_death(scratch: Scratch) -> None:
    source, dead, dlx = await _dead_letter_setup(scratch, **{"x-message-ttl": 100})
    await scratch.publish(source.name, Message(b"stale", headers={"mine": "kept"}))
    [message] = await get_n(dead, 1)
    assert message.body == b"stale"
    assert (message.exchange, message.routing_key) == (dlx, source.name)
    assert message.headers["mine"] == "kept"
    death = _death(message)
    assert death["queue"] == source.name
    assert death["reason"] == "expired"
    assert death["count"] == 1
    assert death["exchange"] == ""
    assert death["routing-keys"] == [source.name]
    assert await message_count(scratch.channel, source.name) == 0


async def test_per_message_expiration_dead_letters(scratch: Scratch) -> None:
    source, dead, _ = await _dead_letter_setup(scratch)
    await scratch.publish(source.name, Message(b"short", expiration=0.1), Message(b"long"))
    [message] = await get_n(dead, 1)
    assert message.body == b"short"
    death = _death(message)
    assert (death["reason"], death["original-expiration"]) == ("expired", "100")
    # The dead-lettered copy must not expire again: RabbitMQ drops its expiration.
    assert message.expiration is None
    [alive] = await get_n(source, 1)
    assert alive.body == b"long"


async def test_expired_without_dlx_is_dropped(scratch: Scratch) -> None:
    queue = await scratch.queue(arguments={"x-message-ttl": 50})
    await scratch.publish(queue.name, Message(b"1"), Message(b"2"))

    async def empty() -> bool:
        return await message_count(scratch.channel, queue.name) == 0

    await wait_until(empty)
    assert await queue.get(fail=False) is None


async def test_expired_per_message_is_never_delivered(scratch: Scratch) -> None:
    queue = await scratch.queue()
    await scratch.publish(queue.name, Message(b"old", expiration=0.05), Message(b"new"))
    await asyncio.sleep(0.3)
    [message] = await get_n(queue, 1)
    assert message.body == b"new"
    assert await queue.get(fail=False) is None


async def test_dead_letter_routing_key_override(scratch: Scratch) -> None:
    dlx = await scratch.exchange(aio_pika.ExchangeType.DIRECT)
    dead = await scratch.queue()
    await dead.bind(dlx, routing_key="dead.tick")
    source = await scratch.queue(
        arguments={
            "x-dead-letter-exchange": dlx.name,
            "x-dead-letter-routing-key": "dead.tick",
            "x-message-ttl": 50,
        }
    )
    await scratch.publish(source.name, Message(b"late"))
    [message] = await get_n(dead, 1)
    assert (message.body, message.routing_key) == (b"late", "dead.tick")
    assert _death(message)["routing-keys"] == [source.name]


async def test_dead_letter_to_default_exchange(scratch: Scratch) -> None:
    """x-dead-letter-exchange "" plus a routing key: dead letters go straight to a queue."""
    dead = await scratch.queue()
    source = await scratch.queue(
        arguments={
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": dead.name,
            "x-message-ttl": 50,
        }
    )
    await scratch.publish(source.name, Message(b"x"))
    [message] = await get_n(dead, 1)
    assert (message.body, _death(message)["queue"]) == (b"x", source.name)


@pytest.mark.parametrize("how", ["reject", "nack"])
async def test_rejected_without_requeue_is_dead_lettered(scratch: Scratch, how: str) -> None:
    source, dead, _ = await _dead_letter_setup(scratch)
    await scratch.publish(source.name, Message(b"bad order"))
    [message] = await get_n(source, 1, no_ack=False)
    await getattr(message, how)(requeue=False)
    [dead_letter] = await get_n(dead, 1)
    assert dead_letter.body == b"bad order"
    death = _death(dead_letter)
    assert (death["reason"], death["queue"], death["count"]) == ("rejected", source.name, 1)


async def test_requeued_message_is_not_dead_lettered(scratch: Scratch) -> None:
    source, dead, _ = await _dead_letter_setup(scratch)
    await scratch.publish(source.name, Message(b"retry"))
    [message] = await get_n(source, 1, no_ack=False)
    await message.reject(requeue=True)
    [again] = await get_n(source, 1)
    assert again.redelivered
    assert await message_count(scratch.channel, dead.name) == 0


async def test_max_length_drops_from_the_head(scratch: Scratch) -> None:
    queue = await scratch.queue(arguments={"x-max-length": 3})
    await scratch.publish(queue.name, *(Message(b"%d" % i) for i in range(5)))
    assert await message_count(scratch.channel, queue.name) == 3
    assert [m.body for m in await get_n(queue, 3)] == [b"2", b"3", b"4"]


async def test_max_length_overflow_is_dead_lettered_as_maxlen(scratch: Scratch) -> None:
    source, dead, _ = await _dead_letter_setup(scratch, **{"x-max-length": 2})
    await scratch.publish(source.name, *(Message(b"%d" % i) for i in range(5)))
    dropped = await get_n(dead, 3)
    assert [m.body for m in dropped] == [b"0", b"1", b"2"]
    assert {_death(m)["reason"] for m in dropped} == {"maxlen"}
    assert [m.body for m in await get_n(source, 2)] == [b"3", b"4"]


async def test_max_length_zero_keeps_nothing(scratch: Scratch) -> None:
    queue = await scratch.queue(arguments={"x-max-length": 0})
    await scratch.publish(queue.name, Message(b"x"))
    assert await message_count(scratch.channel, queue.name) == 0
