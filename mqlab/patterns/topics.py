"""Topics (通配符模式): a topic exchange matches dotted routing keys against patterns.

In a binding key, ``*`` matches exactly one word and ``#`` matches zero or more words, so
``kline.*.*.1m`` gets every venue's and symbol's 1-minute klines and ``#.ETHUSDT.#`` gets every
event about ETH. :func:`match_table` asks the broker itself which keys each pattern matches,
so it shows what the broker does, not what a reimplementation believes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import aio_pika
from aio_pika.abc import AbstractConnection, ExchangeType

from mqlab.patterns._common import DeliveryLog, PatternRun, consume_into, flush, mark_end, unique
from mqlab.topology import TopologyRecorder

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["DEFAULT_BINDINGS", "ROUTING_KEYS", "demo", "match_table", "plot_match_table"]

#: Events named ``kind.venue.symbol[.interval]`` (the interval aioquant left out of its keys).
ROUTING_KEYS: Sequence[str] = (
    "kline.binance.BTCUSDT.1m",
    "kline.binance.BTCUSDT.5m",
    "kline.okx.ETHUSDT.1m",
    "orderbook.binance.BTCUSDT",
    "trade.okx.ETHUSDT",
    "kline",
)

#: Consumer -> its binding key.
DEFAULT_BINDINGS: Mapping[str, str] = {
    "minute-bars": "kline.*.*.1m",
    "binance-all": "*.binance.#",
    "eth-anything": "#.ETHUSDT.#",
    "klines": "kline.#",
}


async def demo(
    connection: AbstractConnection,
    bindings: Mapping[str, str] = DEFAULT_BINDINGS,
    routing_keys: Sequence[str] = ROUTING_KEYS,
    *,
    exchange_type: ExchangeType | str = ExchangeType.TOPIC,
    timeout: float = 5.0,
) -> PatternRun:
    """Bind one queue per consumer with its pattern, publish each key once, log who got what.

    ``exchange_type`` swaps the topic exchange for another kind, to compare how each routes.
    """
    log = DeliveryLog()
    async with TopologyRecorder(connection) as rec:
        exchange = await rec.exchange(unique("ch09.events"), exchange_type, auto_delete=True)
        rec.producer("market", exchange, routing_keys)
        for name, pattern in bindings.items():
            queue = await rec.queue(exclusive=True)
            await rec.bind(queue, exchange, pattern)
            await mark_end(queue, exchange, name)
            rec.consumer(name, queue)
            await consume_into(queue, log, name)
        for key in routing_keys:
            await exchange.publish(aio_pika.Message(key.encode()), routing_key=key, mandatory=False)
        await flush(exchange, log, bindings, timeout)
    return PatternRun(log, rec.topology, {"published": len(routing_keys), "delivered": len(log)})


async def match_table(
    connection: AbstractConnection,
    binding_keys: Sequence[str],
    routing_keys: Sequence[str] = ROUTING_KEYS,
    *,
    exchange_type: ExchangeType | str = ExchangeType.TOPIC,
) -> pd.DataFrame:
    """A boolean table (binding key x routing key): did the broker deliver that key there?"""
    import pandas as pd

    bindings = {b: b for b in binding_keys}
    run = await demo(connection, bindings, routing_keys, exchange_type=exchange_type)
    got = run.received()
    rows = {b: [key in got.get(b, []) for key in routing_keys] for b in binding_keys}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(routing_keys))


def plot_match_table(
    table: pd.DataFrame, title: str = "Topic exchange: which keys each binding gets"
) -> Figure:
    """Draw a :func:`match_table` as a grid of ticks."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(1.2 * len(table.columns) + 2.5, 0.55 * len(table) + 2.2))
    ax.imshow(table.to_numpy(dtype=float), cmap="Greens", vmin=0, vmax=2.5, aspect="auto")
    for (i, j), hit in np.ndenumerate(table.to_numpy()):
        ax.text(j, i, "✓" if hit else "·", ha="center", va="center", fontsize=12)
    ax.set_xticks(
        range(len(table.columns)), table.columns, rotation=30, ha="right", family="monospace"
    )
    ax.set_yticks(range(len(table.index)), table.index, family="monospace")
    ax.set_xlabel("routing key of the published message")
    ax.set_ylabel("binding key of the queue")
    ax.set_title(title)
    fig.tight_layout()
    return fig
