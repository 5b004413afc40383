"""Faults, injected on loopback and bounded: the books still balance, exactly.

Pass condition in every test: the run completes with **0 orders lost** (the exchange passed
exactly the backtest's orders to ``on_order``, in the same order, none twice), **0 fills
applied twice** (the portfolio booked each fill id once) and the **final PnL equal to the
fault-free run** (the in-process backtest, which the parity tests show the fault-free
pipeline matches). Each test prints its counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import uuid
from pathlib import Path

import pytest
from books_check import check_books

from mqlab.bus import HEADER_REASON, Bus
from mqlab.config import RunConfig
from mqlab.events import encode
from mqlab.faults import FaultProxy, inject, malformed_messages
from mqlab.pipeline import Pipeline, ProcessPipeline, fill_rows
from mqlab.services.exchange import ExchangeService
from mqlab.services.portfolio import PortfolioService
from mqlab.services.protocol import HEADER_SEQ

#: Kill-and-restart rounds per in-process run: half the strategy host, half the exchange.
ROUNDS = 10
#: Seed of the random kill points (``MQLAB_FAULT_SEED`` overrides it, to explore more).
SEED = int(os.environ.get("MQLAB_FAULT_SEED", "20240607"))
#: SIGKILL rounds when every service is its own process (slower: each restart is a new
#: interpreter), plus one kill each of the market and the portfolio.
PROCESS_ROUNDS = 4


def _prefix() -> str:
    return f"t-faults-{uuid.uuid4().hex[:8]}"


async def _until_step(
    pipeline: Pipeline | ProcessPipeline, step: int, timeout: float = 120
) -> None:
    async with asyncio.timeout(timeout):
        while pipeline.step < step:
            await asyncio.sleep(0.005)


def _check_books(config: RunConfig, pipeline: Pipeline, label: str) -> None:
    """The pass condition, on an in-process pipeline; prints the counts."""
    reference = config.backtest()
    result = pipeline.result()
    exchange = pipeline.services["exchange"]
    portfolio = pipeline.services["portfolio"]
    assert isinstance(exchange, ExchangeService) and isinstance(portfolio, PortfolioService)
    expected_orders = [o.id for o in reference.orders]
    fill_ids = [row[0] for row in result.fills]
    lost = len(set(expected_orders) - set(exchange.submitted))
    twice = len(fill_ids) - len(set(fill_ids)) + portfolio.portfolio.duplicates
    print(
        f"[{label}] restarts={pipeline.restarts} orders={len(exchange.submitted)}/"
        f"{len(expected_orders)} lost={lost} fills={len(fill_ids)} applied_twice={twice} "
        f"duplicates_dropped_by_bus={result.duplicates_dropped} pnl={result.pnl} "
        f"(fault-free {reference.portfolio.equity() - reference.portfolio.initial})"
    )
    assert result.complete
    assert exchange.submitted == expected_orders, "an order was lost, reordered or doubled"
    assert lost == 0 and twice == 0
    assert result.fills == fill_rows(reference.fills)
    assert result.equity == reference.portfolio.equity(), "final PnL differs from fault-free"


async def _finish(pipeline: Pipeline) -> None:
    await asyncio.wait_for(pipeline.wait(), 180)


async def test_kill_and_restart_strategy_host_and_exchange(amqp_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    config = RunConfig(limit=700)
    victims = ["strategy", "exchange"] * (ROUNDS // 2)
    rng.shuffle(victims)
    pipeline = Pipeline(
        config, amqp_url, prefix=_prefix(), state_dir=tmp_path, reconnect_interval=0.1
    )
    await pipeline.start_all()
    try:
        steps = sorted(rng.sample(range(20, len(config.events) - 20), ROUNDS))
        for step, name in zip(steps, victims, strict=True):
            await _until_step(pipeline, step)
            await asyncio.sleep(rng.uniform(0, 0.01))  # land anywhere inside a step
            await pipeline.kill(name)
            await asyncio.sleep(rng.uniform(0, 0.1))
            await pipeline.start(name)
        await _finish(pipeline)
    finally:
        await pipeline.close()
        await pipeline.delete_topology()
    assert sum(pipeline.restarts.values()) == ROUNDS
    _check_books(config, pipeline, f"{ROUNDS} kill rounds")


@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
async def test_sigkill_services_running_as_processes(amqp_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    config = RunConfig(limit=800)
    pipeline = ProcessPipeline(
        config, amqp_url, prefix=_prefix(), state_dir=tmp_path / "state", out=tmp_path
    )
    victims = [rng.choice(["strategy", "exchange"]) for _ in range(PROCESS_ROUNDS)]
    victims += ["market", "portfolio"]
    rng.shuffle(victims)
    await pipeline.start_all()
    try:
        for step, name in zip(
            sorted(rng.sample(range(50, len(config.events) - 50), len(victims))), victims,
            strict=True,
        ):  # fmt: skip
            await _until_step(pipeline, step)
            await pipeline.kill(name)
            await pipeline.start(name)
        await asyncio.wait_for(pipeline.wait(), 240)
    finally:
        await pipeline.close()
        await pipeline.delete_topology()
    label = f"{len(victims)} SIGKILL rounds, restarts={pipeline.restarts}"
    check_books(pipeline.result(), config.backtest(), label)


async def test_connections_cut_at_random_points(amqp_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED + 2)
    config = RunConfig(limit=600)
    async with FaultProxy(amqp_url) as proxy:
        pipeline = Pipeline(
            config, proxy.url, prefix=_prefix(), state_dir=tmp_path, reconnect_interval=0.1
        )
        await pipeline.start_all()
        cuts = 0
        try:
            for step in sorted(rng.sample(range(20, len(config.events) - 20), 6)):
                await _until_step(pipeline, step)
                cuts += proxy.drop()
            await _finish(pipeline)
        finally:
            await pipeline.close()
            await pipeline.delete_topology()
    print(f"cut {cuts} connections in 6 rounds")
    # At least one live connection cut per round (a round may land while services reconnect).
    assert cuts >= 6
    _check_books(config, pipeline, "6 rounds of cut connections")


async def test_embedded_broker_restart_with_a_data_dir(tmp_path: Path) -> None:
    from mqlab.broker import BrokerThread

    config = RunConfig(limit=600)
    broker = BrokerThread(port=0, data_dir=tmp_path / "broker").start()
    port, url = broker.broker.port, broker.url
    pipeline = Pipeline(
        config, url, prefix=_prefix(), state_dir=tmp_path / "state", reconnect_interval=0.1
    )
    await pipeline.start_all()
    try:
        for step in (150, 400):
            await _until_step(pipeline, step)
            await asyncio.to_thread(broker.stop)
            await asyncio.sleep(0.3)
            broker = BrokerThread(port=port, data_dir=tmp_path / "broker").start()
        await _finish(pipeline)
    finally:
        await pipeline.close()
        broker.stop()
    _check_books(config, pipeline, "2 embedded broker restarts")


@pytest.mark.rabbitmq
@pytest.mark.skipif(
    os.environ.get("MQLAB_RABBITMQ_RESTARTABLE") != "1",
    reason="restarts RabbitMQ: set MQLAB_RABBITMQ_RESTARTABLE=1 (CI) to allow it",
)
async def test_rabbitmq_restart(rabbitmq_url: str, tmp_path: Path) -> None:
    config = RunConfig(limit=500)
    pipeline = Pipeline(
        config, rabbitmq_url, prefix=_prefix(), state_dir=tmp_path, reconnect_interval=0.2
    )
    await pipeline.start_all()
    try:
        await _until_step(pipeline, 200)
        for action in ("stop_app", "start_app"):
            await asyncio.to_thread(
                subprocess.run, ["rabbitmqctl", action], check=True, capture_output=True, timeout=60
            )
        await _finish(pipeline)
    finally:
        await pipeline.close()
        await pipeline.delete_topology()
    _check_books(config, pipeline, "RabbitMQ stop_app/start_app")


async def test_malformed_messages_go_to_the_dlq_and_the_run_goes_on(
    amqp_url: str, tmp_path: Path
) -> None:
    config = RunConfig(limit=400)
    prefix = _prefix()
    pipeline = Pipeline(config, amqp_url, prefix=prefix, state_dir=tmp_path)
    kline = config.events[10]
    good = json.loads(encode(kline))
    floaty = json.dumps(good | {"close": 42000.5}).encode()
    order = json.dumps(
        {"event": "order", "id": "sma_cross-999", "strategy": "sma_cross", "platform": "binance",
         "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "qty": "-1", "price": None,
         "ts": kline.ts, "recv_ts": kline.ts}
    ).encode()  # fmt: skip
    stranger = order.replace(b'"sma_cross"', b'"evil"').replace(b'"-1"', b'"1"')
    stranger = stranger.replace(b"sma_cross-999", b"evil-1")
    key = "kline.binance.BTCUSDT.1m"
    # (exchange, routing key, body, headers, type, copies expected in the DLQ)
    poison = [
        # market data reaches the exchange service and the strategy host (the portfolio marks
        # to the prices in the exchange's progress markers)
        ("market", key, b"not json at all", {HEADER_SEQ: 5}, None, 2),
        ("market", key, floaty, {HEADER_SEQ: 5}, None, 2),
        ("market", key, encode(kline), {}, None, 2),  # valid event, no step number
        ("market", key, b'{"event": "weather"}', {HEADER_SEQ: 7}, None, 2),
        ("orders", "order.sma_cross.binance.BTCUSDT", order, {}, "order", 1),
        ("orders", "order.evil.binance.BTCUSDT", stranger, {}, "order", 1),
        ("orders", "done.sma_cross", b'{"kind": "done"}', {}, "done", 1),
        ("execution", "fill.sma_cross.binance.BTCUSDT", b"{}", {"x-call": 1}, "fill", 2),
        # progress markers go to the portfolio and the market service (not the strategy host,
        # which gets its steps as calls when engaged)
        ("execution", "step.exchange", b"[]", {}, "step", 2),
        ("execution", "call.sma_cross", b"{}", {}, "step", 1),
    ]
    await pipeline.start_all()
    try:
        await _until_step(pipeline, 150)
        async with Bus(amqp_url, prefix=prefix) as injector:
            for i, (exchange, rkey, body, headers, kind, _) in enumerate(poison):
                await injector.publish(
                    exchange, rkey, body, message_id=f"poison-{i}", headers=headers, type=kind
                )
        await asyncio.wait_for(pipeline.wait(), 180)
        async with Bus(amqp_url, prefix=prefix) as reader:
            parked = await reader.dead_letters()
    finally:
        await pipeline.close()
        await pipeline.delete_topology()
    expected = sum(copies for *_, copies in poison)
    print(f"injected {len(poison)} malformed messages; {len(parked)} copies dead-lettered:")
    for delivery in parked:
        print(f"  {delivery.message_id} from {delivery.headers['x-mqlab-queue']}: "
              f"{delivery.headers[HEADER_REASON]}")  # fmt: skip
    assert len(parked) == expected
    assert all(d.headers[HEADER_REASON] for d in parked)
    assert {d.message_id for d in parked} == {f"poison-{i}" for i in range(len(poison))}
    _check_books(config, pipeline, "malformed messages")


async def test_restart_at_and_injected_garbage_as_in_chapter_10(
    amqp_url: str, tmp_path: Path
) -> None:
    """Chapter 10's live fault: two restarts and three bad messages, each parked with why."""
    config = RunConfig(limit=300)
    pipeline = Pipeline(config, amqp_url, prefix=_prefix(), state_dir=tmp_path)
    bad = malformed_messages(config.events[5])
    await pipeline.start_all()
    try:
        await pipeline.restart_at(75, "strategy")
        await pipeline.restart_at(150, "exchange")
        ids = await inject(amqp_url, pipeline.prefix, bad)
        await _finish(pipeline)
        async with Bus(amqp_url, prefix=pipeline.prefix) as reader:
            parked = await reader.dead_letters()
    finally:
        await pipeline.close()
        await pipeline.delete_topology()
    reasons = {(d.message_id, d.headers["x-mqlab-queue"]): d.headers[HEADER_REASON] for d in parked}
    for key, reason in sorted(reasons.items()):
        print(f"  {key}: {reason}")
    # Each market message is parked once per queue bound to its key (exchange, strategy);
    # the order only by the exchange service, the one that reads orders.
    assert len(parked) == 5 and {d.message_id for d in parked} == set(ids)
    assert all("not JSON" in r for (i, _), r in reasons.items() if i == ids[0])
    assert all("close" in r for (i, _), r in reasons.items() if i == ids[1])
    assert pipeline.restarts["strategy"] == pipeline.restarts["exchange"] == 1
    _check_books(config, pipeline, "chapter 10 faults")
