from __future__ import annotations

from mqlab.patterns import simple
from mqlab.topology import DEFAULT_EXCHANGE


async def test_consumer_gets_every_message_in_order(connection) -> None:
    run = await simple.demo(connection, messages=4)
    assert run.received() == {"consumer": [f"hello #{i}" for i in range(4)]}
    (queue,) = run.topology.queues
    assert [(b.exchange, b.queue) for b in run.topology.edges()] == [(DEFAULT_EXCHANGE, queue)]
    assert "consumer <- hello #0" in str(run)
