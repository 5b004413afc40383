from __future__ import annotations

from mqlab.patterns import simple
from mqlab.topology import DEFAULT_EXCHANGE


async def test_consumer_gets_every_message_in_order(connection) -> None:
    run = await simple.demo(connection, messages=4)
    assert run.received() == {"consumer": [f"hello #{i}" for i in range(4)]}
    (queue,) = run.topology.queues
    assert [(b.exchange, b.queue) for b in run.topology.edges()] == [(DEFAULT_EXCHANGE, queue)]
    assert "consumer <- hello #0" in str(run)


async def test_trace_hello_shows_publish_confirm_deliver_ack() -> None:
    from mqlab.broker import BrokerThread

    with BrokerThread(port=0) as broker:
        _, frames, labels = await simple.trace_hello(broker, b"hi")
    assert sorted(labels.values()) == ["consumer", "publisher"]
    seen = [(labels[r.connection], r.direction, r.name) for r in frames]
    expected = [
        ("publisher", "client→broker", "Basic.Publish"),
        ("publisher", "client→broker", "ContentHeader"),
        ("publisher", "client→broker", "ContentBody"),
        ("consumer", "broker→client", "Basic.Deliver"),
        ("consumer", "broker→client", "ContentHeader"),
        ("consumer", "broker→client", "ContentBody"),
        ("publisher", "broker→client", "Basic.Ack"),  # the publisher confirm
        ("consumer", "client→broker", "Basic.Ack"),  # the delivery ack
    ]
    assert sorted(seen) == sorted(expected)
    # The confirm may overtake the delivery, but each side's frames keep their order.
    for who in ("publisher", "consumer"):
        assert [s for s in seen if s[0] == who] == [e for e in expected if e[0] == who]


def test_delivery_log_prints_in_time_order() -> None:
    from mqlab.patterns import Delivery, DeliveryLog

    log = DeliveryLog()
    log.record(Delivery("inspector", "x", at=2.0))
    log.record(Delivery("handler", "x", at=1.0))  # recorded late, stamped with its arrival
    assert str(log).splitlines() == ["handler   <- x", "inspector <- x"]
    assert [d.consumer for d in log] == ["inspector", "handler"]  # storage keeps record order
