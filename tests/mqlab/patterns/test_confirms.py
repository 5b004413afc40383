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


async def test_measure_warms_up_and_runs_interleaved_rounds(connection) -> None:
    results = await confirms.measure(connection, 40, ["no confirms", "one by one"], rounds=3)
    assert [r.strategy for r in results] == ["no confirms", "one by one"] * 3  # no warm-up runs
    assert all(r.messages == 40 for r in results)


def _runs(*rounds: tuple[float, float, float]) -> list[confirms.ConfirmResult]:
    """Results of fake rounds: (no confirms, one by one, streaming) seconds for 100 messages."""
    names = ("no confirms", "one by one", "streaming")
    return [
        confirms.ConfirmResult(n, 100, s) for r in rounds for n, s in zip(names, r, strict=True)
    ]


def test_summarize_and_compare_keep_only_what_held_in_every_round() -> None:
    results = _runs((1.0, 2.0, 0.9), (1.0, 4.0, 1.1), (1.0, 2.5, 0.8))
    table = confirms.summarize(results)
    assert table.loc["one by one", "median msg/s"] == 40.0
    assert (table.loc["one by one", "min msg/s"], table.loc["one by one", "max msg/s"]) == (25, 50)
    assert table.loc["one by one", "x no confirms"] == 0.4
    assert table.loc["streaming", "rounds faster"] == 2
    one_by_one, streaming = confirms.compare(results)
    assert one_by_one == confirms.Comparison("one by one", "no confirms", 0.4, 0, 3)
    assert one_by_one.steady == "slower"
    assert (streaming.faster_rounds, streaming.rounds, streaming.steady) == (2, 3, None)
    (only,) = confirms.compare(results, "one by one", ["streaming"])
    assert (only.strategy, only.baseline, only.steady) == ("streaming", "one by one", "faster")


def test_plot_throughput_shows_the_spread_of_the_rounds() -> None:
    fig = confirms.plot_throughput(_runs((1.0, 2.0, 0.9), (1.0, 4.0, 1.1)), "test")
    ax = fig.axes[0]
    assert "median of 2 rounds" in ax.get_title() and ax.get_xlabel() and ax.containers
    assert any(type(c).__name__ == "ErrorbarContainer" for c in ax.containers)
