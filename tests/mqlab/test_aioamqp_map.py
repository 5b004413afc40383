"""Every row of the aioamqp -> aio-pika mapping is checked against a real delivery."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlsplit

import aio_pika
import pytest

from mqlab import aioamqp_map
from mqlab.aioamqp_map import ENVELOPE_FIELDS, MAPPING, PROPERTIES_FIELDS
from mqlab.patterns import unique

STAMP = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_every_seed_name_is_mapped() -> None:
    names = {r.aioamqp for r in MAPPING}
    assert {f"envelope.{f}" for f in ENVELOPE_FIELDS} <= names
    assert {f"properties.{f}" for f in PROPERTIES_FIELDS} <= names
    text = " ".join(names)
    for method in (
        "aioamqp.connect", "protocol.channel()", "queue_declare", "exchange_declare",
        "queue_bind", "channel.publish", "basic_consume", "(channel, body, envelope, properties)",
    ):  # fmt: skip
        assert method in text, method
    assert all(r.aio_pika for r in MAPPING)


def test_table_has_one_row_per_mapping() -> None:
    frame = aioamqp_map.table()
    assert list(frame.columns) == ["kind", "aioamqp", "aio-pika", "note"]
    assert len(frame) == len(MAPPING)
    assert len(aioamqp_map.table("envelope")) == len(ENVELOPE_FIELDS)


def test_read_names_the_fields_on_a_typo() -> None:
    with pytest.raises(KeyError, match=r"properties\.message_type"):
        aioamqp_map.read(object(), "properties.type")  # type: ignore[arg-type]


async def test_each_field_reads_back_what_was_sent(amqp_url: str) -> None:
    login = urlsplit(amqp_url).username or "guest"
    sent = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": {"venue": "binance", "n": 7},
        "delivery_mode": aio_pika.DeliveryMode.PERSISTENT,
        "priority": 5,
        "correlation_id": "corr-1",
        "reply_to": "replies",
        "expiration": 60.0,  # seconds in aio-pika, "60000" ms on the wire
        "message_id": "msg-1",
        "timestamp": STAMP,
        "message_type": "kline",
        "user_id": login,  # RabbitMQ checks it is the connection's login
        "app_id": "market-service",
    }
    kwargs = {("type" if k == "message_type" else k): v for k, v in sent.items()}
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(unique("t.map"), "direct", auto_delete=True)
        queue = await channel.declare_queue(unique("t.map"), exclusive=True)
        await queue.bind(exchange, "kline.binance.BTCUSDT.1m")
        got: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
        tag = await queue.consume(got.put)
        await exchange.publish(aio_pika.Message(b"{}", **kwargs), "kline.binance.BTCUSDT.1m")
        first = await asyncio.wait_for(got.get(), 10)
        props = aioamqp_map.properties(first)
        for name, value in sent.items():
            assert props[name] == value, name
        assert props["cluster_id"] in (None, "")
        assert aioamqp_map.envelope(first) == {
            "consumer_tag": tag,
            "delivery_tag": first.delivery_tag,
            "exchange_name": exchange.name,
            "routing_key": "kline.binance.BTCUSDT.1m",
            "is_redeliver": False,
        }
        assert isinstance(first.delivery_tag, int) and first.delivery_tag >= 1
        await first.nack(requeue=True)
        again = await asyncio.wait_for(got.get(), 10)
        assert aioamqp_map.read(again, "envelope.is_redeliver") is True
        assert again.delivery_tag != first.delivery_tag
        await again.ack()
