"""The step protocol, without a broker: any delivery order gives the backtest's fills.

A fake bus routes each published message into per-queue FIFOs by the same topic rules, and a
seeded scheduler delivers from a random non-empty queue each time, sometimes twice (a
redelivery). Whatever the interleaving, the services must reproduce the backtest exactly.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Iterable
from typing import Any

import pytest

from mqlab.bus import BusStats, Delivery, Handler, Reject, SeenIds
from mqlab.config import RunConfig
from mqlab.pipeline import fill_rows
from mqlab.routing import topic_match
from mqlab.services.exchange import ExchangeService
from mqlab.services.market import MarketService
from mqlab.services.options import ServiceOptions
from mqlab.services.portfolio import PortfolioService
from mqlab.services.strategy_host import StrategyHost


class _Queue:
    def __init__(self, name: str, handler: Handler, seen: Any, on_idle: Any = None) -> None:
        self.name, self.handler, self.seen, self.on_idle = name, handler, seen, on_idle
        self.messages: deque[Delivery] = deque()
        self.bindings: list[tuple[str, str]] = []
        self.stats = BusStats()


class FakeBus:
    """Just enough of :class:`mqlab.bus.Bus` for the services: publish, subscribe, route."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.stats = BusStats()
        self.subscriptions: list[Any] = []
        self.declared: dict[str, Any] = {"exchanges": {}, "queues": {}, "bindings": []}

    async def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str,
                      headers: Any = None, type: str | None = None) -> None:  # fmt: skip
        self.router.route(exchange, routing_key, body, message_id, dict(headers or {}), type)
        await asyncio.sleep(0)

    async def subscribe(self, suffix: str, bindings: Iterable[tuple[str, str]], handler: Handler,
                        *, prefetch: int | None = None, seen: Any = None,
                        on_idle: Any = None) -> _Queue:  # fmt: skip
        queue = _Queue(suffix, handler, seen if seen is not None else SeenIds(), on_idle)
        queue.bindings = list(bindings)
        self.router.queues[suffix] = queue
        self.subscriptions.append(queue)
        return queue

    def idle(self) -> bool:
        return not any(q.messages for q in self.subscriptions)

    async def wait_for_consumers(
        self, queues: Iterable[str], timeout: float = 60, on_wait: object = None
    ) -> None:
        return None


class Router:
    def __init__(self, rng: random.Random, duplicates: float) -> None:
        self.rng, self.duplicates = rng, duplicates
        self.queues: dict[str, _Queue] = {}
        self.dead: list[tuple[str, str]] = []

    def route(self, exchange: str, key: str, body: bytes, message_id: str,
              headers: dict[str, Any], type: str | None) -> None:  # fmt: skip
        for queue in self.queues.values():
            if any(x == exchange and topic_match(p, key) for x, p in queue.bindings):
                copies = 2 if self.rng.random() < self.duplicates else 1
                for _ in range(copies):
                    queue.messages.append(
                        Delivery(body, key, exchange, queue.name, message_id, headers, False, type)
                    )

    async def deliver_one(self) -> bool:
        ready = [q for q in self.queues.values() if q.messages]
        if not ready:
            return False
        queue = self.rng.choice(ready)
        delivery = queue.messages.popleft()
        if delivery.message_id in queue.seen:
            if not queue.messages and queue.on_idle is not None:
                await queue.on_idle()
            return True
        try:
            await queue.handler(delivery)
        except (Reject, ValueError) as exc:
            self.dead.append((queue.name, str(exc)))
        queue.seen.add(delivery.message_id)  # type: ignore[arg-type]
        if not queue.messages and queue.on_idle is not None:
            await queue.on_idle()
        return True


async def _run(config: RunConfig, seed: int, duplicates: float = 0.1, lockstep: bool = False
               ) -> PortfolioService:  # fmt: skip
    router = Router(random.Random(seed), duplicates)
    window = random.Random(seed).choice([1, 2, 5, 16])
    batch = random.Random(seed + 1).randint(1, window)
    options = ServiceOptions(config, lockstep=lockstep, window=window, batch=batch)
    exchange = ExchangeService(FakeBus(router), options)  # type: ignore[arg-type]
    strategy = StrategyHost(FakeBus(router), options)  # type: ignore[arg-type]
    portfolio = PortfolioService(FakeBus(router), options)  # type: ignore[arg-type]
    market = MarketService(FakeBus(router), options)  # type: ignore[arg-type]
    for service in (exchange, strategy, portfolio):
        await service.recover()
        await service.subscribe()
    publishing = asyncio.create_task(market.run())
    async with asyncio.timeout(60):
        while not portfolio.ended:
            if not await router.deliver_one():
                await asyncio.sleep(0)
    await publishing
    assert not router.dead, router.dead
    return portfolio


@pytest.mark.parametrize("seed", range(6))
async def test_any_interleaving_gives_the_backtest_fills(seed: int) -> None:
    config = RunConfig(limit=250)
    portfolio = await _run(config, seed)
    reference = config.backtest()
    assert fill_rows(portfolio.portfolio.fills) == fill_rows(reference.fills)
    assert portfolio.portfolio.equity() == reference.portfolio.equity()


@pytest.mark.parametrize("seed", range(4))
async def test_order_books_with_late_answers_any_interleaving(seed: int) -> None:
    # 1.5 s order latency: answers come due after later snapshots, from the exchange's heap.
    config = RunConfig(strategy="imbalance", limit=400, latency_ms=1500)
    portfolio = await _run(config, seed, duplicates=0.2)
    reference = config.backtest()
    assert len(reference.fills) > 5
    assert fill_rows(portfolio.portfolio.fills) == fill_rows(reference.fills)
    assert portfolio.portfolio.equity() == reference.portfolio.equity()


@pytest.mark.parametrize("seed", range(2))
async def test_lockstep_any_interleaving_gives_the_backtest_fills(seed: int) -> None:
    # The protocol without lookahead (every step a call), kept for chapter 10's comparison.
    config = RunConfig(strategy="imbalance", limit=200, latency_ms=1500)
    portfolio = await _run(config, seed, lockstep=True)
    reference = config.backtest()
    assert fill_rows(portfolio.portfolio.fills) == fill_rows(reference.fills)
    assert portfolio.portfolio.equity() == reference.portfolio.equity()
