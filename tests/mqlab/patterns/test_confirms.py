from __future__ import annotations

import pytest

from mqlab.patterns import confirms


@pytest.mark.parametrize("strategy", list(confirms.STRATEGIES))
async def test_every_strategy_lands_every_message(connection, strategy: str) -> None:
    publish, needs_confirms = confirms.STRATEGIES[strategy]
    channel = await connection.channel(publisher_confirms=needs_confirms)
    queue = await channel.declare_queue(confirms.unique("t.confirms"), auto_delete=True)
    try:
        bodies = [f"m{i}".encode() for i in range(120)]  # not a multiple of the batch size
        result = await publish(channel.default_exchange, bodies, queue.name)
        assert (result.strategy, result.messages, result.nacked) == (strategy, 120, [])
        check = await connection.channel()
        ok = (await check.get_queue(queue.name)).declaration_result
        if not needs_confirms:  # nothing says the broker has them yet: wait for the count
            for _ in range(100):
                if ok.message_count == 120:
                    break
                ok = (await check.get_queue(queue.name)).declaration_result
        assert ok.message_count == 120
        await check.close()
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_measure_returns_one_result_per_strategy(connection) -> None:
    results = await confirms.measure(connection, 30)
    assert [r.strategy for r in results] == list(confirms.STRATEGIES)
    assert all(r.messages == 30 and r.rate > 0 for r in results)
    fig = confirms.plot_throughput(results, "test")
    assert "messages / s" in fig.axes[0].get_ylabel()
