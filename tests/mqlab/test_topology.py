"""TopologyRecorder records, verifies and draws; Topology reads the embedded broker's snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection, ExchangeType

from mqlab.patterns import unique
from mqlab.topology import DEFAULT_EXCHANGE, Binding, Topology, TopologyRecorder, short_name


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    conn = await aio_pika.connect_robust(amqp_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _declare(rec: TopologyRecorder) -> tuple[str, str, str]:
    exchange = await rec.exchange(unique("t.top"), ExchangeType.TOPIC, auto_delete=True)
    dlx = await rec.exchange(unique("t.top-dlx"), ExchangeType.FANOUT)
    queue = await rec.queue(unique("t.top-q"), arguments={"x-dead-letter-exchange": dlx.name})
    await rec.bind(queue, exchange, "kline.#")
    await rec.bind(queue, exchange, "trade.*")
    await rec.channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=queue.name)
    rec.producer("market", exchange)
    rec.consumer("strategy", queue)
    return exchange.name, dlx.name, queue.name


async def test_records_verifies_and_deletes(connection) -> None:
    async with TopologyRecorder(connection) as rec:
        exchange, dlx, queue = await _declare(rec)
        top = rec.topology
        assert top.exchanges[exchange].type == "topic"
        assert top.queues[queue].dead_letter_exchange == dlx
        assert top.bindings == [
            Binding(exchange, queue, "kline.#"),
            Binding(exchange, queue, "trade.*"),
        ]
        found = await rec.verify()
        assert found.ok and found.queues[queue] == (1, 0)
        assert top.ready[queue] == 1
    after = await rec.verify()  # the recorder deleted everything on exit
    assert not after.ok
    assert after.exchanges == {exchange: False, dlx: False} and after.queues == {queue: None}
    assert "MISSING" in str(after)


async def test_live_topology_keeps_only_what_exists(connection) -> None:
    async with TopologyRecorder(connection) as rec:
        exchange, _, queue = await _declare(rec)
        rec.topology.queues["t.never-declared"] = rec.topology.queues[queue].__class__(
            "t.never-declared"
        )
        live = await rec.live()
    assert "t.never-declared" not in live.queues
    assert queue in live.queues and exchange in live.exchanges
    assert sorted(b.routing_key for b in live.bindings if b.queue == queue) == [
        "kline.#",
        "trade.*",
    ]
    assert live.ready[queue] == 1
    assert live.source.startswith("live")


async def test_live_topology_on_the_embedded_broker_comes_from_the_broker(monkeypatch) -> None:
    import mqlab

    monkeypatch.delenv("MQLAB_AMQP_URL", raising=False)
    connection = await mqlab.connect()
    try:
        async with TopologyRecorder(connection) as rec:
            exchange, _, queue = await _declare(rec)
            rec.topology.bindings.clear()  # forget them: the broker still knows
            live = await rec.live()
    finally:
        await connection.close()
    assert live.source == "live, from the embedded broker"
    assert {(b.exchange, b.queue, b.routing_key) for b in live.bindings} >= {
        (exchange, queue, "kline.#"),
        (exchange, queue, "trade.*"),
    }


def test_from_snapshot_accepts_dicts_and_skips_amq_exchanges() -> None:
    top = Topology.from_snapshot(
        {
            "exchanges": [{"name": "amq.topic", "type": "topic"}, {"name": "x", "type": "fanout"}],
            "queues": [{"name": "q", "messages": 3, "durable": True}],
            "bindings": [
                {"source": "x", "destination": "q", "destination_type": "queue", "routing_key": ""},
                {"source": "amq.topic", "destination": "q", "routing_key": "k"},
            ],
        }
    )
    assert list(top.exchanges) == ["x"] and top.queues["q"].durable and top.ready == {"q": 3}
    assert top.bindings == [Binding("x", "q", "")]


def test_from_broker_rejects_what_has_no_topology() -> None:
    with pytest.raises(TypeError, match="TopologyRecorder"):
        Topology.from_broker(object())


def test_default_exchange_edges_come_from_producers() -> None:
    top = Topology()
    top.queues["jobs-0123abcd"] = Topology.from_snapshot(
        {"queues": [{"name": "jobs-0123abcd"}]}
    ).queues["jobs-0123abcd"]
    top.producers["p"] = (DEFAULT_EXCHANGE, "jobs-0123abcd")
    assert top.edges() == [Binding("", "jobs-0123abcd", "jobs-0123abcd")]
    assert "(default) --[jobs]--> jobs" in top.describe()


def test_short_name() -> None:
    assert short_name("") == "(default)"
    assert short_name("ch09.orders-0123abcd.dlx") == "ch09.orders.dlx"
    assert short_name("amq.gen-JzTY20BRgKO-HjmUJj0wLg") == "amq.…0wLg"
    assert short_name("plain") == "plain"


def test_draw_labels_every_node_and_binding_key() -> None:
    top = Topology.from_snapshot(
        {
            "exchanges": [{"name": "events", "type": "topic"}, {"name": "dlx", "type": "fanout"}],
            "queues": [
                {"name": "bars", "messages": 2, "arguments": {"x-dead-letter-exchange": "dlx"}},
                {"name": "dead"},
            ],
            "bindings": [
                {"source": "events", "destination": "bars", "routing_key": "kline.*.*.1m"},
                {"source": "dlx", "destination": "dead", "routing_key": ""},
            ],
        }
    )
    top.producers["market"] = ("events", None)
    top.consumers["strategy"] = "bars"
    fig = top.draw()
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"market", "events\n[topic]", "bars\n2 ready", "strategy", "kline.*.*.1m"} <= texts
    assert "dead letters" in texts
    assert fig.axes[0].get_title() == "AMQP topology (as declared)"
