"""The in-process runner: four (or five) services in this process, each with its own
connection, which tests and chapter 10 start, kill and restart one by one."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from mqlab.bus import Bus
from mqlab.config import RunConfig
from mqlab.pipeline.base import Progress, RunnerBase
from mqlab.pipeline.embedded import broker_name
from mqlab.pipeline.result import PipelineResult, fill_rows, sum_counts
from mqlab.services._runtime import Journal, Service
from mqlab.services.exchange import ExchangeService
from mqlab.services.market import MarketService
from mqlab.services.options import ServiceOptions
from mqlab.services.portfolio import PortfolioService
from mqlab.services.protocol import DEFAULT_WINDOW
from mqlab.services.risk import RiskCheck, RiskService
from mqlab.services.strategy_host import StrategyHost

if TYPE_CHECKING:
    from mqlab.strategy import Strategy

__all__ = ["Pipeline"]

#: The services every run has, by name; each is built from the run's ServiceOptions.
SERVICE_TYPES: dict[str, Callable[[Bus, ServiceOptions, Journal], Service]] = {
    "exchange": ExchangeService,
    "strategy": StrategyHost,
    "portfolio": PortfolioService,
    "market": MarketService,
}


class Pipeline(RunnerBase):
    """Four services on one broker; start, kill and restart them one by one (fault tests).

    ``state_dir`` holds each service's journal (without it, nothing survives a restart);
    ``out`` receives the report and plots. ``prefix`` names every exchange and queue.
    ``risk=check`` (with ``limit``) adds a fifth service, :class:`~mqlab.services.risk.
    RiskService`, between the strategy host and the exchange. ``strategy`` builds the
    strategy instead of ``config.strategy`` (in-process only, e.g. an exercise's).
    """

    def __init__(
        self,
        config: RunConfig,
        url: str,
        *,
        prefix: str = "mqlab",
        state_dir: Path | None = None,
        out: Path | None = None,
        window: int = DEFAULT_WINDOW,
        speed: float = 0.0,
        reconnect_interval: float = 0.5,
        risk: RiskCheck | None = None,
        limit: Decimal | str = "0",
        strategy: Callable[[], Strategy] | None = None,
        lockstep: bool = False,
        trace: Callable[[str, int, int, str], None] | None = None,
        batch: int = 1,
    ) -> None:
        #: ``lockstep``: every step a call, as before lookahead (see ExchangeService).
        options = ServiceOptions(
            config, risk=risk is not None, lockstep=lockstep, window=window, batch=batch,
            speed=speed, out=out, strategy=strategy,
        )  # fmt: skip
        super().__init__(config, url, options, prefix, state_dir, Decimal(limit))
        self.trace = trace
        self.reconnect_interval = reconnect_interval
        self.risk = risk
        self.services: dict[str, Service] = {}
        self.tasks: dict[str, asyncio.Task[int]] = {}
        self.retired: list[Service] = []  # killed incarnations, for their counters
        self.started = time.perf_counter()

    def _journal(self, name: str) -> Journal:
        return Journal(None if self.state_dir is None else self.state_dir / f"{name}.jsonl")

    def build(self, name: str, bus: Bus) -> Service:
        if name == "risk" and self.risk is not None:
            return RiskService(bus, self.risk, self.limit, self._journal(name))
        if name not in SERVICE_TYPES:
            raise ValueError(f"unknown service {name!r}; choose one of {', '.join(self.names)}")
        return SERVICE_TYPES[name](bus, self.options, self._journal(name))

    async def start(self, name: str) -> Service:
        """Start (or restart) one service: a new connection, state rebuilt from its journal."""
        bus = Bus(self.url, prefix=self.prefix, reconnect_interval=self.reconnect_interval)
        await bus.start()
        service = self.build(name, bus)
        service.trace = self.trace
        self.services[name] = service
        self.tasks[name] = asyncio.create_task(self._run(service), name=f"service:{name}")
        return service

    async def _run(self, service: Service) -> int:
        try:
            return await service.run()
        finally:
            await service.bus.close()

    async def start_all(self) -> None:
        self.started = time.perf_counter()
        for name in self.names:
            await self.start(name)

    async def kill(self, name: str) -> None:
        """Crash one service: its task is cancelled wherever it is and its connection dropped,
        so unacked messages go back to their queues. Its journal stays."""
        task, service = self.tasks.pop(name), self.services.pop(name)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        service.journal.close()
        self.retired.append(service)
        self.restarts[name] += 1

    async def restart_at(self, step: int, name: str, timeout: float = 120) -> None:
        """Once the exchange service has handled ``step``, crash service ``name`` (see
        :meth:`kill`) and start a new incarnation, which resumes from its journal."""
        async with asyncio.timeout(timeout):
            while self.step < step:
                await asyncio.sleep(0.005)
        await self.kill(name)
        await self.start(name)

    def request_stop(self) -> None:
        """Ctrl-C: the market pauses; the others finish what was published, then stop."""
        market = self.services.get("market")
        if market is not None:
            market.request_stop()

    async def ready(self, timeout: float = 60) -> None:
        """Until every service subscribed (the market publishes only then), or one failed."""
        async with asyncio.timeout(timeout):
            while True:
                market = self.services.get("market")
                if isinstance(market, MarketService) and market.published:
                    return
                for task in self.tasks.values():
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                await asyncio.sleep(0.01)

    @property
    def step(self) -> int:
        exchange = self.services.get("exchange")
        return exchange.step if isinstance(exchange, ExchangeService) else 0

    async def wait(self, progress: bool = False) -> None:
        """Until every service finished (end of data, or a pause), showing progress."""
        with Progress(len(self.config.events), progress) as bar:
            while True:
                tasks = list(self.tasks.values())
                done, _ = await asyncio.wait(tasks, timeout=0.2)
                for task in done:
                    if task.exception() is not None:
                        await self.close()
                        raise task.exception()  # type: ignore[misc]
                bar.update(self.step)
                if all(t.done() for t in self.tasks.values()) and tasks == list(
                    self.tasks.values()
                ):
                    break

    async def close(self) -> None:
        for name in list(self.tasks):
            task = self.tasks[name]
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def result(self, mode: str = "one process") -> PipelineResult:
        """Collect the counters of every service (and of killed incarnations)."""
        exchange = self.services["exchange"]
        portfolio = self.services["portfolio"]
        assert isinstance(exchange, ExchangeService) and isinstance(portfolio, PortfolioService)
        everyone = [*self.services.values(), *self.retired]
        subscriptions = [s for svc in everyone for s in svc.bus.subscriptions]
        p = portfolio.portfolio
        spans = [(svc.first_ns, svc.last_ns) for svc in everyone if svc.first_ns]
        elapsed = (max(b for _, b in spans) - min(a for a, _ in spans)) / 1e9 if spans else 0.0
        return PipelineResult(
            config=self.config,
            mode=mode,
            broker=broker_name(self.url),
            events=exchange.counts["events"],
            orders=exchange.counts["orders"],
            fills=fill_rows(p.fills),
            equity=p.equity(),
            pnl=p.equity() - p.initial,
            elapsed=elapsed,
            latency_ms=[n / 1e6 for n in exchange.latencies_ns],
            decision_ms=[n / 1e6 for n in exchange.decisions_ns],
            events_run=exchange.counts["events"] - exchange.events_replayed,
            complete=portfolio.ended,
            stats={name: svc.stats() for name, svc in self.services.items()},
            duplicates_dropped=sum(s.stats.duplicates for s in subscriptions),
            dead_lettered=sum(s.stats.dead_lettered for s in subscriptions),
            published=sum(svc.bus.stats.published for svc in everyone),
            delivered=sum(s.stats.delivered for s in subscriptions),
            kinds=sum_counts([svc.bus.stats.kinds for svc in everyone]
                             + [s.stats.kinds for s in subscriptions]),
        )  # fmt: skip
