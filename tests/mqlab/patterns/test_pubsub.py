from __future__ import annotations

from mqlab.patterns import pubsub


async def test_every_subscriber_gets_every_event(connection) -> None:
    events = ("e1", "e2", "e3")
    run = await pubsub.demo(connection, subscribers=("a", "b"), events=events)
    assert run.received() == {"a": list(events), "b": list(events)}
    (exchange,) = run.topology.exchanges.values()
    assert exchange.type == "fanout"
    assert len(run.topology.queues) == 2
