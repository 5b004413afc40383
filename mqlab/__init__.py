"""mqlab: AMQP with aio-pika, an embedded broker, and an event-driven trading pipeline.

``await mqlab.connect()`` gives a robust aio-pika connection: to ``MQLAB_AMQP_URL`` when it is
set, otherwise to an embedded broker started for you. Chapters 07–10 import from here.

The names below are what a learner reaches for, in the order the chapters meet them: the
events (事件), a strategy (策略) and the simulated venue, the portfolio and the backtest
(回测), then the broker, the bus and the pipeline. Each comes from its own module (the layers
are drawn in docs/architecture.md); ``import mqlab`` stays cheap, because a name is imported
the first time it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqlab.backtest import Backtest, BacktestResult, run_backtest
    from mqlab.bars import Bars, load_bars
    from mqlab.bus import Bus, Delivery, Reject
    from mqlab.config import RunConfig
    from mqlab.connection import broker_url, connect, mask_url
    from mqlab.events import Cancel, Fill, Kline, Order, OrderBook, Side, Trade, decode, encode
    from mqlab.market import load_binance_csv
    from mqlab.pipeline import Pipeline, PipelineResult, run_pipeline
    from mqlab.portfolio import Portfolio
    from mqlab.strategies import BookImbalance, SmaCross, make_strategy
    from mqlab.strategy import Strategy
    from mqlab.venue import MarginExchange, SimulatedExchange

#: Where each public name lives.
_HOMES = {
    "connect": "mqlab.connection",
    "broker_url": "mqlab.connection",
    "mask_url": "mqlab.connection",
    "Kline": "mqlab.events",
    "OrderBook": "mqlab.events",
    "Trade": "mqlab.events",
    "Order": "mqlab.events",
    "Cancel": "mqlab.events",
    "Fill": "mqlab.events",
    "Side": "mqlab.events",
    "encode": "mqlab.events",
    "decode": "mqlab.events",
    "load_binance_csv": "mqlab.market",
    "Bars": "mqlab.bars",
    "load_bars": "mqlab.bars",
    "Strategy": "mqlab.strategy",
    "SmaCross": "mqlab.strategies",
    "BookImbalance": "mqlab.strategies",
    "make_strategy": "mqlab.strategies",
    "SimulatedExchange": "mqlab.venue",
    "MarginExchange": "mqlab.venue",
    "Portfolio": "mqlab.portfolio",
    "Backtest": "mqlab.backtest",
    "BacktestResult": "mqlab.backtest",
    "run_backtest": "mqlab.backtest",
    "RunConfig": "mqlab.config",
    "Bus": "mqlab.bus",
    "Delivery": "mqlab.bus",
    "Reject": "mqlab.bus",
    "Pipeline": "mqlab.pipeline",
    "PipelineResult": "mqlab.pipeline",
    "run_pipeline": "mqlab.pipeline",
}

__all__ = [
    "Backtest",
    "BacktestResult",
    "Bars",
    "BookImbalance",
    "Bus",
    "Cancel",
    "Delivery",
    "Fill",
    "Kline",
    "MarginExchange",
    "Order",
    "OrderBook",
    "Pipeline",
    "PipelineResult",
    "Portfolio",
    "Reject",
    "RunConfig",
    "Side",
    "SimulatedExchange",
    "SmaCross",
    "Strategy",
    "Trade",
    "broker_url",
    "connect",
    "decode",
    "encode",
    "load_bars",
    "load_binance_csv",
    "make_strategy",
    "mask_url",
    "run_backtest",
    "run_pipeline",
]


def __getattr__(name: str) -> Any:
    # Lazy, so `import mqlab` stays cheap for chapters that never touch a broker.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mqlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
