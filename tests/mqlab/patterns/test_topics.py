from __future__ import annotations

from mqlab.patterns import topics

KEYS = ("kline.binance.BTCUSDT.1m", "kline.okx.ETHUSDT.5m", "orderbook.binance.BTCUSDT", "kline")
# What AMQP 0-9-1 topic matching says, worked out by hand.
EXPECTED = {
    "kline.*.*.1m": [True, False, False, False],
    "kline.#": [True, True, False, True],
    "kline.*": [False, False, False, False],
    "*.binance.#": [True, False, True, False],
    "#.ETHUSDT.#": [False, True, False, False],
    "#": [True, True, True, True],
    "*": [False, False, False, True],
}


async def test_match_table_is_what_the_broker_routes(connection) -> None:
    table = await topics.match_table(connection, list(EXPECTED), KEYS)
    assert {b: list(map(bool, row)) for b, row in table.iterrows()} == EXPECTED


async def test_demo_logs_who_got_what(connection) -> None:
    run = await topics.demo(connection, {"minute": "kline.*.*.1m"}, KEYS)
    assert run.received() == {"minute": ["kline.binance.BTCUSDT.1m"]}
    assert run.counts == {"published": 4, "delivered": 1}


def test_plot_match_table_labels_axes() -> None:
    import pandas as pd

    fig = topics.plot_match_table(pd.DataFrame({"a.b": [True, False]}, index=["a.*", "b.#"]))
    ax = fig.axes[0]
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


async def test_other_exchange_types_route_their_own_way(connection) -> None:
    keys = ["a.b", "a.c"]
    fanout = await topics.match_table(connection, ["a.b", "x"], keys, exchange_type="fanout")
    direct = await topics.match_table(connection, ["a.b", "a.*"], keys, exchange_type="direct")
    assert fanout.to_numpy().all()  # fanout ignores keys
    assert direct.to_numpy().tolist() == [[True, False], [False, False]]  # '*' is no wildcard
