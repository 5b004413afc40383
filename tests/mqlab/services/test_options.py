"""ServiceOptions: what a run's settings mean for each service, from code or a command line."""

from __future__ import annotations

import argparse

from mqlab.config import RunConfig
from mqlab.services.options import KeyFilter, ServiceOptions
from mqlab.services.protocol import CHECKED, DEFAULT_WINDOW, ORDERS, default_queues


def test_defaults_follow_the_run_config() -> None:
    config = RunConfig(limit=5)
    options = ServiceOptions(config)
    assert options.strategy_id == config.strategy_id
    assert options.served == [config.strategy_id]
    assert options.market_patterns == config.market_keys
    assert options.orders_from == ORDERS
    assert options.consumer_queues == default_queues([config.strategy_id])
    assert options.title == f"{config.strategy_id} over the bus on {config.label}"


def test_a_risk_service_moves_the_orders_and_adds_a_queue_to_wait_for() -> None:
    options = ServiceOptions(RunConfig(limit=5), risk=True)
    assert options.orders_from == CHECKED
    assert options.consumer_queues[-1] == "risk.orders"


def test_from_args_takes_only_what_a_service_command_line_has() -> None:
    config = RunConfig(limit=5)
    exchange = argparse.Namespace(strategies=["b", "a", "b"], risk=True, out=None)
    options = ServiceOptions.from_args(config, exchange)
    assert options.served == ["a", "b"] and options.risk and options.window == DEFAULT_WINDOW
    market = argparse.Namespace(window=4, batch=2, speed=1.0, risk=False, wait_for=None)
    options = ServiceOptions.from_args(config, market)
    assert (options.window, options.batch, options.speed) == (4, 2, 1.0)
    host = argparse.Namespace(subscribe=["kline.*.*.1m"], out=None)
    assert ServiceOptions.from_args(config, host).market_patterns == ["kline.*.*.1m"]


def test_key_filter_matches_topic_patterns() -> None:
    subscribed = KeyFilter(["kline.*.*.1m", "trade.#"])
    assert subscribed("kline.binance.BTCUSDT.1m")
    assert not subscribed("kline.binance.BTCUSDT.5m")
    assert subscribed("trade.binance.ETHUSDT")
    assert not subscribed("orderbook.binance.BTCUSDT")
    assert subscribed("kline.binance.BTCUSDT.1m"), "a remembered key answers the same"
