from __future__ import annotations

from mqlab.patterns import routing


async def test_each_consumer_gets_exactly_its_keys(connection) -> None:
    run = await routing.demo(connection)
    assert run.received() == {
        "btc-strategy": ["tick BTCUSDT"],
        "pairs-strategy": ["tick BTCUSDT", "tick ETHUSDT"],
        "recorder": ["tick BTCUSDT", "tick ETHUSDT", "tick SOLUSDT"],
    }
    assert run.counts == {"published": 4, "delivered": 6}  # DOGEUSDT matched no binding


async def test_bindings_are_recorded_per_key(connection) -> None:
    run = await routing.demo(connection, {"only": ["A", "B"]}, ("A", "B", "C"))
    assert sorted(b.routing_key for b in run.topology.bindings) == ["A", "B"]
    assert run.received() == {"only": ["tick A", "tick B"]}
