"""TopologyRecorder records, verifies and draws; Topology reads the embedded broker's snapshot."""

from __future__ import annotations

import aio_pika
import pytest
from aio_pika.abc import ExchangeType

from mqlab.patterns import unique
from mqlab.topology import (
    DEFAULT_EXCHANGE,
    Binding,
    Topology,
    TopologyRecorder,
    routing_keys,
    short_name,
)


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
    assert "dead letters\n(on reject)" in texts
    assert "broker · virtual host '/'" in texts
    assert fig.axes[0].get_title() == "AMQP topology (as declared)"


def _box_of(ax: object, label: str) -> object:
    """The bounding box, in data units, of the box drawn around the text ``label``."""
    from matplotlib.patches import FancyBboxPatch

    text = next(t for t in ax.texts if t.get_text() == label)  # type: ignore[attr-defined]
    x, y = text.get_position()
    for patch in ax.patches:  # type: ignore[attr-defined]
        if isinstance(patch, FancyBboxPatch):
            box = patch.get_bbox()
            if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1 and box.width < 2:
                return box
    raise AssertionError(f"no box around {label!r}")


def test_draw_puts_exchanges_and_queues_inside_the_broker_and_clients_outside() -> None:
    from matplotlib.patches import FancyBboxPatch

    top = Topology(vhost="trading")
    top.exchanges["events"] = Topology.from_snapshot(
        {"exchanges": [{"name": "events", "type": "topic"}]}
    ).exchanges["events"]
    top.queues["bars"] = Topology.from_snapshot({"queues": [{"name": "bars"}]}).queues["bars"]
    top.bindings.append(Binding("events", "bars", "kline.#"))
    top.producers["market"] = ("events", ("kline.a.1m", "kline.b.5m"))
    top.consumers["strategy"] = "bars"
    ax = top.draw().axes[0]
    broker = max(
        (p.get_bbox() for p in ax.patches if isinstance(p, FancyBboxPatch)), key=lambda b: b.width
    )
    assert "broker · virtual host 'trading'" in {t.get_text() for t in ax.texts}
    for inside in ("events\n[topic]", "bars"):
        box = _box_of(ax, inside)
        assert broker.x0 < box.x0 and box.x1 < broker.x1
    for outside in ("market", "strategy"):
        box = _box_of(ax, outside)
        assert box.x1 < broker.x0 or box.x0 > broker.x1
    # The producer's arrow carries both routing keys, in a label left of the broker's box.
    label = next(t for t in ax.texts if t.get_text() == "kline.a.1m\nkline.b.5m")
    extent = label.get_window_extent().transformed(ax.transData.inverted())
    assert _box_of(ax, "market").x1 < extent.x0 and extent.x1 < broker.x0


def test_dead_letter_arrow_leaves_the_dlx_binding_alone() -> None:
    """The dashed arrow ends on the DLX's top edge, so it cannot cross the DLX's own binding."""
    top = Topology.from_snapshot(
        {
            "exchanges": [{"name": "dlx", "type": "fanout"}],
            "queues": [{"name": "orders", "arguments": {"x-dead-letter-exchange": "dlx"}},
                       {"name": "dead"}],
            "bindings": [{"source": "dlx", "destination": "dead", "routing_key": ""}],
        }
    )  # fmt: skip
    top.producers["strategy"] = (DEFAULT_EXCHANGE, "orders")
    ax = top.draw().axes[0]
    dlx = _box_of(ax, "dlx\n[fanout]")
    dashed = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None
              and a.arrow_patch.get_linestyle() == "--"]  # fmt: skip
    assert len(dashed) == 1
    head_x, head_y = dashed[0].xy
    assert dlx.x0 <= head_x <= dlx.x1 and head_y >= dlx.y1  # on top of the DLX's box


def test_routing_keys_and_producer_edges_with_several_keys() -> None:
    assert routing_keys(None) == [] and routing_keys("a") == ["a"]
    assert routing_keys(("a", "b")) == ["a", "b"]
    top = Topology()
    for name in ("jobs-0123abcd", "logs-89abcdef"):
        top.queues[name] = Topology.from_snapshot({"queues": [{"name": name}]}).queues[name]
    top.producers["p"] = (DEFAULT_EXCHANGE, ("jobs-0123abcd", "logs-89abcdef", "nowhere"))
    assert top.edges() == [
        Binding("", "jobs-0123abcd", "jobs-0123abcd"),
        Binding("", "logs-89abcdef", "logs-89abcdef"),
    ]


async def test_recorder_notes_the_vhost_and_every_published_key(connection) -> None:
    async with TopologyRecorder(connection) as rec:
        exchange = await rec.exchange(unique("t.keys"), ExchangeType.TOPIC, auto_delete=True)
        rec.producer("market", exchange, ["kline.a", "kline.b"])
        live = await rec.live()
    assert rec.topology.vhost == "/" and live.vhost == "/"
    assert live.producers["market"] == (exchange.name, ("kline.a", "kline.b"))
