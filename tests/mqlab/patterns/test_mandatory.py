from __future__ import annotations

import aio_pika

from mqlab.patterns import mandatory
from mqlab.topology import TopologyRecorder


async def test_unroutable_mandatory_message_is_returned(connection) -> None:
    run = await mandatory.demo(connection)
    assert run.received()["order-router"] == ["order BTCUSDT", "order ETHUSDT"]
    returned = [d for d in run.log if d.note.startswith("returned")]
    assert [(d.consumer, d.body) for d in returned] == [("publisher (strategy)", "order XRPUSDT")]
    assert "312" in returned[0].note and "NO_ROUTE" in returned[0].note
    assert run.counts["returned"] == 1


async def test_publish_mandatory_outcomes(connection) -> None:
    async with TopologyRecorder(connection) as rec:
        exchange = await rec.exchange(mandatory.unique("t.mand"), "direct", auto_delete=True)
        queue = await rec.queue(exclusive=True)
        await rec.bind(queue, exchange, "here")
        hit = await mandatory.publish_mandatory(exchange, aio_pika.Message(b"x"), "here")
        miss = await mandatory.publish_mandatory(exchange, aio_pika.Message(b"x"), "nowhere")
    assert hit == mandatory.PublishOutcome("here", True)
    assert not miss.routed and miss.reply.startswith("312")
