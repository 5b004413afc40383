"""The frame tracer: one publish and one delivery, as a table and a sequence diagram."""

from __future__ import annotations

import aio_pika
import matplotlib

matplotlib.use("Agg")

from mqlab.broker import Broker, BrokerThread
from mqlab.broker.frametrace import BROKER_TO_CLIENT, CLIENT_TO_BROKER, FrameTrace, describe


async def _publish_and_consume_one(url: str) -> None:
    publisher = await aio_pika.connect(url)
    consumer = await aio_pika.connect(url)
    pch = await publisher.channel()
    cch = await consumer.channel()
    queue = await cch.declare_queue("trace-demo", auto_delete=True)
    await pch.default_exchange.publish(aio_pika.Message(b"tick"), routing_key=queue.name)
    message = await queue.get(timeout=5)
    await message.ack()
    await publisher.close()
    await consumer.close()


async def test_records_the_frames_of_a_publish_and_a_get() -> None:
    trace = FrameTrace()
    async with Broker(port=0, trace=trace) as broker:
        await _publish_and_consume_one(broker.url)
    names = [(r.direction, r.name) for r in trace]
    publish = names.index((CLIENT_TO_BROKER, "Basic.Publish"))
    assert names[publish + 1 : publish + 3] == [
        (CLIENT_TO_BROKER, "ContentHeader"),
        (CLIENT_TO_BROKER, "ContentBody"),
    ]
    get_ok = names.index((BROKER_TO_CLIENT, "Basic.GetOk"))
    assert names[get_ok + 1 : get_ok + 3] == [
        (BROKER_TO_CLIENT, "ContentHeader"),
        (BROKER_TO_CLIENT, "ContentBody"),
    ]
    assert (CLIENT_TO_BROKER, "Basic.Ack") in names
    assert names[0] == (BROKER_TO_CLIENT, "Connection.Start")
    assert len({r.connection for r in trace}) == 2

    body = next(r for r in trace if r.name == "ContentBody")
    assert body.fields == {"size": 4, "body": b"tick"}
    start_ok = next(r for r in trace if r.name == "Connection.StartOk")
    assert start_ok.fields["response"] == "****"  # the password never lands in a trace

    table = trace.table(trace.select(["Basic.", "Content"]))
    assert list(table.columns) == [
        "time_ms",
        "connection",
        "direction",
        "channel",
        "frame",
        "fields",
    ]
    assert table["frame"].iloc[0] == "Basic.Publish"
    assert "routing_key='trace-demo'" in table["fields"].iloc[0]

    ax = trace.plot(trace.select(["Basic.", "Content"]), labels={1: "publisher"})
    assert ax.get_title() and ax.get_ylabel() and ax.get_xlabel()
    texts = {t.get_text() for t in ax.texts}
    assert {"broker", "publisher"} <= texts


def test_attach_to_a_running_broker_thread_then_detach() -> None:
    import asyncio

    trace = FrameTrace()
    with BrokerThread(port=0) as broker:
        with trace.attach(broker):
            asyncio.run(_publish_and_consume_one(broker.url))
        assert broker.broker.trace is None
        seen = len(trace)
        asyncio.run(_publish_and_consume_one(broker.url))
    assert seen > 10 and len(trace) == seen
    trace.clear()
    assert len(trace) == 0


def test_limit_bounds_memory() -> None:
    trace = FrameTrace(limit=2)
    from pamqp.heartbeat import Heartbeat

    for _ in range(5):
        trace(1, "in", 0, Heartbeat())
    assert len(trace) == 2 and trace.dropped == 3
    assert describe(Heartbeat()) == ("Heartbeat", {})
