"""Durability with a data directory: what survives a restart, and confirms after fsync."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aio_pika
from pamqp import commands, header

from mqlab.broker import Broker
from mqlab.broker.queue import Message
from mqlab.broker.store import Store


def _rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / Store.FILENAME) as db:
        return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def _message(body: bytes) -> Message:
    props = commands.Basic.Properties(delivery_mode=2)
    payload = header.ContentHeader(0, len(body), props).marshal()
    return Message("", "q", props, payload, body)


def test_add_then_remove_in_one_batch_never_reaches_disk(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = store.add_message("q", _message(b"a"))
    store.remove_message(store.add_message("q", _message(b"b")))
    store.commit()
    assert _rows(tmp_path) == 1
    store.remove_message(first)
    assert store.dirty
    store.commit()
    assert _rows(tmp_path) == 0 and not store.dirty
    store.close()


async def test_durable_things_survive_a_restart_and_transient_ones_do_not(tmp_path: Path) -> None:
    async with Broker(port=0, data_dir=tmp_path) as broker:
        conn = await aio_pika.connect(broker.url)
        ch = await conn.channel()
        ex = await ch.declare_exchange("md", aio_pika.ExchangeType.TOPIC, durable=True)
        keep = await ch.declare_queue("keep", durable=True, arguments={"x-max-length": 10})
        await ch.declare_queue("temp", durable=False)
        await keep.bind(ex, "kline.#")
        for i in range(3):
            await ex.publish(
                aio_pika.Message(f"p{i}".encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key="kline.1m",
            )
        await ex.publish(aio_pika.Message(b"transient"), routing_key="kline.1m")
        first = await keep.get()
        await first.ack()  # acked: gone for good
        unacked = await keep.get()  # delivered, never acked: must come back
        assert unacked.body == b"p1"
        await conn.close()

    async with Broker(port=0, data_dir=tmp_path) as broker:
        topo = broker.topology()
        assert {q.name for q in topo.queues} == {"keep"}
        assert topo.queue("keep").arguments == {"x-max-length": 10}
        assert ("md", "topic", True) in {(e.name, e.type, e.durable) for e in topo.exchanges}
        assert [(b.source, b.destination, b.routing_key) for b in topo.bindings] == [
            ("md", "keep", "kline.#")
        ]
        conn = await aio_pika.connect(broker.url)
        ch = await conn.channel()
        keep = await ch.declare_queue("keep", durable=True, arguments={"x-max-length": 10})
        bodies = []
        while (m := await keep.get(fail=False)) is not None:
            bodies.append(m.body)
            await m.ack()
        assert bodies == [b"p1", b"p2"]
        # The binding still routes after the restart.
        ex = await ch.get_exchange("md")
        await ex.publish(aio_pika.Message(b"again"), routing_key="kline.5m")
        assert (await keep.get()).body == b"again"
        await conn.close()


async def test_a_confirmed_persistent_message_is_already_on_disk(tmp_path: Path) -> None:
    async with Broker(port=0, data_dir=tmp_path) as broker:
        conn = await aio_pika.connect(broker.url)
        ch = await conn.channel(publisher_confirms=True)
        q = await ch.declare_queue("orders", durable=True)
        persistent = aio_pika.DeliveryMode.PERSISTENT
        await ch.default_exchange.publish(
            aio_pika.Message(b"order-1", delivery_mode=persistent), routing_key=q.name
        )
        # The confirm has arrived; the row must be visible to another reader now.
        assert _rows(tmp_path) == 1
        await q.delete(if_unused=False, if_empty=False)
        await conn.close()
    assert _rows(tmp_path) == 0


async def test_in_memory_without_data_dir(tmp_path: Path) -> None:
    async with Broker(port=0) as broker:
        assert broker.store is None
        conn = await aio_pika.connect(broker.url)
        ch = await conn.channel()
        await ch.declare_queue("d", durable=True)
        await conn.close()
    async with Broker(port=0) as broker:
        assert broker.topology().queues == []
    assert not list(tmp_path.iterdir())
