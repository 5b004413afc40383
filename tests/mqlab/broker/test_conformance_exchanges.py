"""Conformance: exchange declare/delete and routing through every exchange type."""

from __future__ import annotations

import uuid

import aio_pika
import aiormq
import pytest
from aio_pika import ExchangeType, Message

from .helpers import Scratch, get_n, message_count

pytestmark = pytest.mark.timeout(60)

# (binding pattern, routing key) -> does it match. '*' is exactly one word, '#' zero or more.
TOPIC_CASES: dict[str, list[str]] = {
    "a.b.c": ["a.b.c"],
    "a.*.c": ["a.b.c"],
    "a.*": ["a.b", "a.c"],
    "*": ["a", "b", "c"],
    "#": ["", "a", "b", "a.b", "a.b.c", "a.c", "a.x.y.c", "b.c", "c"],
    "a.#": ["a", "a.b", "a.b.c", "a.c", "a.x.y.c"],
    "#.c": ["a.b.c", "a.c", "a.x.y.c", "b.c", "c"],
    "a.#.c": ["a.b.c", "a.c", "a.x.y.c"],
    "*.b.*": ["a.b.c"],
    "*.*": ["a.b", "a.c", "b.c"],
}
TOPIC_KEYS = ["", "a", "b", "a.b", "a.b.c", "a.c", "a.x.y.c", "b.c", "c"]


async def _route(
    s: Scratch,
    exchange: aio_pika.abc.AbstractExchange,
    bindings: dict[str, list[dict]],
    messages: list[tuple[str, dict]],
) -> dict[str, list[str]]:
    """Bind one queue per label, publish (routing_key, headers) pairs, report who got what.

    Each message's body is its index, so the result lists the indexes each queue received.
    """
    queues = {}
    for label, binds in bindings.items():
        queue = await s.queue()
        for bind in binds:
            await queue.bind(exchange, **bind)
        queues[label] = queue
    channel = await s.new_channel(publisher_confirms=True)
    target = await channel.get_exchange(exchange.name, ensure=False)
    for index, (key, headers) in enumerate(messages):
        await target.publish(Message(str(index).encode(), headers=headers), routing_key=key)
    # Confirmed publishes are routed; every queue is now final.
    got = {}
    for label, queue in queues.items():
        count = await message_count(s.channel, queue.name)
        got[label] = sorted(m.body.decode() for m in await get_n(queue, count))
    return got


async def test_default_exchange_routes_by_queue_name(scratch: Scratch) -> None:
    first, second = await scratch.queue(), await scratch.queue()
    await scratch.channel.default_exchange.publish(Message(b"1"), first.name)
    await scratch.channel.default_exchange.publish(Message(b"2"), second.name)
    await scratch.channel.default_exchange.publish(Message(b"3"), f"{first.name}-nobody")
    [one] = await get_n(first, 1)
    [two] = await get_n(second, 1)
    assert (one.body, one.exchange, one.routing_key) == (b"1", "", first.name)
    assert two.body == b"2"
    assert await message_count(scratch.channel, first.name) == 0


@pytest.mark.parametrize(
    ("name", "type_", "bind", "key", "headers"),
    [
        ("amq.direct", "direct", {"routing_key": "k"}, "k", None),
        ("amq.fanout", "fanout", {}, "anything", None),
        ("amq.topic", "topic", {"routing_key": "k.*"}, "k.x", None),
        ("amq.headers", "headers", {"arguments": {"h": "v"}}, "", {"h": "v"}),
        ("amq.match", "headers", {"arguments": {"h": "v"}}, "", {"h": "v"}),
    ],
)
async def test_predeclared_amq_exchanges(
    scratch: Scratch, name: str, type_: str, bind: dict, key: str, headers: dict | None
) -> None:
    exchange = await scratch.channel.declare_exchange(name, type_, durable=True, passive=True)
    # Redeclaring with the same type and durability is also fine.
    await scratch.channel.declare_exchange(name, type_, durable=True)
    queue = await scratch.queue(exclusive=True)
    bind = {**bind}
    if bind.get("routing_key") == "k":
        bind["routing_key"] = key = f"k-{uuid.uuid4().hex}"  # amq.direct is shared
    await queue.bind(exchange, **bind)
    token = uuid.uuid4().hex.encode()
    await exchange.publish(Message(token, headers=headers), routing_key=key)
    [message] = await get_n(queue, 1)
    assert (message.body, message.exchange) == (token, name)


async def test_direct_routes_on_exact_key(scratch: Scratch) -> None:
    exchange = await scratch.exchange(ExchangeType.DIRECT)
    got = await _route(
        scratch,
        exchange,
        {"ab": [{"routing_key": "a"}, {"routing_key": "b"}], "b": [{"routing_key": "b"}]},
        [("a", {}), ("b", {}), ("c", {}), ("A", {}), ("a.b", {})],
    )
    assert got == {"ab": ["0", "1"], "b": ["1"]}


async def test_direct_same_queue_bound_twice_gets_one_copy(scratch: Scratch) -> None:
    exchange = await scratch.exchange(ExchangeType.TOPIC)
    got = await _route(
        scratch, exchange, {"q": [{"routing_key": "a.*"}, {"routing_key": "#"}]}, [("a.b", {})]
    )
    assert got == {"q": ["0"]}


async def test_fanout_ignores_routing_key(scratch: Scratch) -> None:
    exchange = await scratch.exchange(ExchangeType.FANOUT)
    got = await _route(
        scratch,
        exchange,
        {"one": [{"routing_key": "x"}], "two": [{}]},
        [("x", {}), ("", {}), ("other", {})],
    )
    assert got == {"one": ["0", "1", "2"], "two": ["0", "1", "2"]}


async def test_topic_wildcards(scratch: Scratch) -> None:
    exchange = await scratch.exchange(ExchangeType.TOPIC)
    got = await _route(
        scratch,
        exchange,
        {pattern: [{"routing_key": pattern}] for pattern in TOPIC_CASES},
        [(key, {}) for key in TOPIC_KEYS],
    )
    want = {
        pattern: sorted(str(TOPIC_KEYS.index(k)) for k in keys)
        for pattern, keys in TOPIC_CASES.items()
    }
    named = {p: sorted(TOPIC_KEYS[int(i)] for i in idx) for p, idx in got.items()}
    assert got == want, f"pattern -> keys routed: {named}"


async def test_headers_match_all_and_any(scratch: Scratch) -> None:
    exchange = await scratch.exchange(ExchangeType.HEADERS)
    want = {"ccy": "BTC", "side": "buy"}
    got = await _route(
        scratch,
        exchange,
        {
            "all": [{"arguments": {"x-match": "all", **want}}],
            "any": [{"arguments": {"x-match": "any", **want}}],
            "default-is-all": [{"arguments": want}],
        },
        [
            ("", {"ccy": "BTC", "side": "buy"}),  # 0: both
            ("", {"ccy": "BTC", "side": "sell"}),  # 1: one matches, one differs
            ("", {"ccy": "BTC"}),  # 2: one present
            ("", {}),  # 3: none
            ("ignored", {"ccy": "BTC", "side": "buy", "extra": "1"}),  # 4: superset
            ("", {"side": "buy"}),  # 5: the other one
            ("", {"ccy": "ETH", "side": "sell"}),  # 6: neither value
        ],
    )
    assert got == {
        "all": ["0", "4"],
        "any": ["0", "1", "2", "4", "5"],
        "default-is-all": ["0", "4"],
    }


async def test_unbind_stops_routing(scratch: Scratch) -> None:
    exchange = await scratch.exchange(ExchangeType.DIRECT)
    queue = await scratch.queue()
    await queue.bind(exchange, "k")
    await queue.bind(exchange, "j")
    await queue.unbind(exchange, "k")
    channel = await scratch.new_channel(publisher_confirms=True)
    target = await channel.get_exchange(exchange.name, ensure=False)
    await target.publish(Message(b"k"), "k")
    await target.publish(Message(b"j"), "j")
    [message] = await get_n(queue, 1)
    assert message.body == b"j"
    assert await message_count(scratch.channel, queue.name) == 0


async def test_passive_declare(scratch: Scratch) -> None:
    name = scratch.xname()
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await scratch.channel.declare_exchange(name, passive=True)
    channel = await scratch.new_channel()
    await channel.declare_exchange(name, ExchangeType.TOPIC)
    # Passive checks existence only, so even a different type is accepted.
    await channel.declare_exchange(name, ExchangeType.TOPIC, passive=True)
    await channel.declare_exchange(name, ExchangeType.FANOUT, passive=True)


@pytest.mark.parametrize(
    "other",
    [{"type": ExchangeType.FANOUT}, {"durable": True}, {"auto_delete": True}],
    ids=["type", "durable", "auto_delete"],
)
async def test_redeclare_with_other_properties_is_406(scratch: Scratch, other: dict) -> None:
    name = scratch.xname()
    await scratch.channel.declare_exchange(name, ExchangeType.DIRECT)
    await scratch.channel.declare_exchange(name, ExchangeType.DIRECT)  # identical: fine
    kwargs = {"type": ExchangeType.DIRECT, **other}
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await scratch.channel.declare_exchange(name, **kwargs)
    assert scratch.channel.is_closed


@pytest.mark.parametrize(
    "operation",
    [
        "passive declare",
        "declare",
        "delete",
        "queue.bind",
        "queue.unbind",
        "exchange.bind source",
        "exchange.bind destination",
    ],
)
async def test_the_default_exchange_cannot_be_touched(amqp_url: str, operation: str) -> None:
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = (await channel.queue_declare(exclusive=True)).queue
        touch = {
            "passive declare": lambda: channel.exchange_declare("", passive=True),
            "declare": lambda: channel.exchange_declare("", exchange_type="direct"),
            "delete": lambda: channel.exchange_delete(""),
            "queue.bind": lambda: channel.queue_bind(queue, "", routing_key="k"),
            "queue.unbind": lambda: channel.queue_unbind(queue, "", routing_key="k"),
            "exchange.bind source": lambda: channel.exchange_bind("amq.direct", "", "k"),
            "exchange.bind destination": lambda: channel.exchange_bind("", "amq.direct", "k"),
        }[operation]
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as info:
            await touch()
        assert "operation not permitted on the default exchange" in str(info.value)
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"alternate-exchange": 5}, "invalid type 'byte' for arg 'alternate-exchange'"),
        ({"alternate-exchange": [1]}, "invalid type 'array' for arg 'alternate-exchange'"),
        ({"alternate-exchange": None}, "invalid type 'void' for arg 'alternate-exchange'"),
    ],
)
async def test_alternate_exchange_must_be_a_name(
    scratch: Scratch, arguments: dict, says: str
) -> None:
    name = scratch.xname()
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as info:
        await scratch.channel.declare_exchange(name, arguments=arguments)
    assert f"{says} in exchange '{name}' in vhost '/'" in str(info.value)


async def test_system_exchanges_cannot_be_deleted(scratch: Scratch) -> None:
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as info:
        await scratch.channel.exchange_delete("amq.direct")
    assert "deletion of system exchange 'amq.direct' in vhost '/' not allowed" in str(info.value)


async def test_reserved_amq_prefix_is_403(scratch: Scratch) -> None:
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
        await scratch.channel.declare_exchange(f"amq.mqlab-{uuid.uuid4().hex}")


async def test_delete_and_if_unused(scratch: Scratch) -> None:
    exchange = await scratch.exchange(ExchangeType.FANOUT)
    queue = await scratch.queue()
    await queue.bind(exchange, routing_key="")
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
        await exchange.delete(if_unused=True)
    channel = await scratch.new_channel()
    await (await channel.get_underlay_channel()).queue_unbind(
        queue.name, exchange.name, routing_key=""
    )
    await (await channel.get_underlay_channel()).exchange_delete(exchange.name, if_unused=True)
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await channel.declare_exchange(exchange.name, passive=True)


async def test_delete_drops_bindings(scratch: Scratch) -> None:
    """A re-created exchange starts with no bindings: the old ones went with it."""
    exchange = await scratch.exchange(ExchangeType.FANOUT)
    queue = await scratch.queue()
    await queue.bind(exchange)
    await exchange.delete()
    again = await scratch.channel.declare_exchange(exchange.name, ExchangeType.FANOUT)
    channel = await scratch.new_channel(publisher_confirms=True)
    target = await channel.get_exchange(again.name, ensure=False)
    await target.publish(Message(b"lost"), "")
    assert await message_count(scratch.channel, queue.name) == 0


async def test_delete_missing_exchange_is_ok(scratch: Scratch) -> None:
    """RabbitMQ (since 3.2) makes exchange.delete idempotent; aio-pika cleanup code relies on it."""
    underlay = await scratch.channel.get_underlay_channel()
    await underlay.exchange_delete(scratch.xname())
    assert not scratch.channel.is_closed


async def test_publish_to_missing_exchange_closes_channel_404(scratch: Scratch) -> None:
    channel = await scratch.new_channel(publisher_confirms=True)
    missing = aio_pika.Exchange(channel, scratch.xname(), ExchangeType.DIRECT)
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await missing.publish(Message(b"x"), "k")
    assert channel.is_closed
    assert not scratch.channel.is_closed  # only the offending channel is closed


@pytest.mark.parametrize("missing", ["exchange", "queue"])
async def test_bind_with_missing_side_is_404(scratch: Scratch, missing: str) -> None:
    exchange = await scratch.exchange(ExchangeType.DIRECT)
    queue = await scratch.queue()
    underlay = await scratch.channel.get_underlay_channel()
    queue_name = scratch.qname() if missing == "queue" else queue.name
    exchange_name = scratch.xname() if missing == "exchange" else exchange.name
    with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
        await underlay.queue_bind(queue_name, exchange_name, routing_key="k")
