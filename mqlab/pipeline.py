"""``python -m mqlab pipeline``: market → strategy → exchange → portfolio over the message bus.

This is aioquant's architecture (seed section 4) done right: four services that share nothing
but the broker, no message lost or applied twice, and results identical to the in-process
backtest (:mod:`mqlab.backtest`) on the same data.

* By default all four services run in this process, each with its own connection, on the
  embedded broker (or ``$MQLAB_AMQP_URL``); ``--url amqp://...`` picks a RabbitMQ.
* ``--processes`` runs each service as its own OS process (``python -m mqlab market ...``),
  the same commands that spread the pipeline over several hosts (docs/architecture.md).
* Ctrl-C pauses cleanly: the market stops publishing, everything already published is
  handled, and the next run with the same ``--out`` resumes where this one stopped.

Library use (notebooks, tests): :class:`Pipeline` and :func:`run_pipeline`, which return a
:class:`PipelineResult`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqlab.bus import Bus, Delivery, probe
from mqlab.loop import run as run_loop
from mqlab.services import PARENT_ENV
from mqlab.services._runtime import Journal, Service
from mqlab.services.config import RunConfig, add_config_arguments
from mqlab.services.exchange import ExchangeService
from mqlab.services.market import MarketService, default_queues
from mqlab.services.portfolio import PortfolioService
from mqlab.services.protocol import (
    CHECKED,
    DEFAULT_WINDOW,
    EXCHANGE_END,
    EXCHANGE_STEP,
    EXECUTION,
    MARKET,
    ORDERS,
    parse_control,
)
from mqlab.services.risk import RiskCheck, RiskService, load_check
from mqlab.services.strategy_host import StrategyHost

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from mqlab.events import Fill
    from mqlab.faults import Malformed
    from mqlab.strategy import Strategy
    from mqlab.topology import Topology

__all__ = [
    "SERVICES",
    "Pipeline",
    "PipelineInterrupted",
    "PipelineResult",
    "ProcessPipeline",
    "ServiceFailed",
    "add_arguments",
    "embedded_broker",
    "fill_rows",
    "in_process_latency",
    "injected_table",
    "live_topology",
    "plot_latency",
    "resumable",
    "run",
    "run_pipeline",
]

#: Service names, in the order they start (consumers first, the market last).
SERVICES = ("exchange", "strategy", "portfolio", "market")

FillRow = tuple[str, str, int, str, str, str, str]


def fill_rows(fills: list[Fill]) -> list[FillRow]:
    """Fills as comparable rows: (id, order_id, ts, side, qty, price, fee), money as text."""
    return [
        (f.id, f.order_id, f.ts, f.side.value, f"{f.qty:f}", f"{f.price:f}", f"{f.fee:f}")
        for f in fills
    ]


def injected_table(ids: list[str], messages: list[Malformed]) -> pd.DataFrame:
    """The malformed messages injected (``mqlab.faults.inject``), one row per message id:
    the exchange and routing key each went to, and what is wrong with it."""
    import pandas as pd

    rows = [(i, m.exchange, m.routing_key, m.what) for i, m in zip(ids, messages, strict=True)]
    columns = ["message", "exchange", "routing key", "what is wrong"]
    return pd.DataFrame(rows, columns=columns).set_index("message")


def _read_fill_rows(path: Path) -> list[FillRow]:
    rows = []
    for line in path.read_text().splitlines()[1:]:
        fid, order_id, ts, side, qty, price, fee = line.split(",")
        rows.append((fid, order_id, int(ts), side, qty, price, fee))
    return rows


@dataclass
class PipelineResult:
    """What a pipeline run did; :meth:`summary` is what the CLI prints (or emits as JSON)."""

    config: RunConfig
    mode: str
    broker: str
    events: int
    orders: int
    fills: list[FillRow]
    equity: Decimal
    pnl: Decimal
    elapsed: float
    latency_ms: list[float]
    complete: bool
    #: Event → decision latency (ms) of every step: publish → the strategy's ``done``.
    decision_ms: list[float] = field(default_factory=list)
    #: Events handled by this run (``events`` minus those replayed from an earlier one).
    events_run: int | None = None
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    dead_lettered: int = 0
    duplicates_dropped: int = 0
    parity: bool | None = None
    #: With ``processes=True``: each service's command line (password masked).
    commands: dict[str, str] = field(default_factory=dict)
    #: Messages the services published, and the broker delivered to them, in this run.
    published: int = 0
    delivered: int = 0

    @property
    def messages_per_event(self) -> dict[str, float | None]:
        """Broker messages per market event of this run: published, delivered, and both."""
        n = self.events if self.events_run is None else self.events_run
        if not n:
            return {"published": None, "delivered": None, "total": None}
        return {
            "published": round(self.published / n, 3),
            "delivered": round(self.delivered / n, 3),
            "total": round((self.published + self.delivered) / n, 3),
        }

    @property
    def broker_label(self) -> str:
        """``embedded broker`` or ``broker at host:port``, for titles."""
        # Several node URLs (a cluster): name every node, "h1:p1, h2:p2".
        where = ", ".join(u.split("@")[-1].rstrip("/") for u in self.broker.split(","))
        return "embedded broker" if self.broker.startswith("embedded") else f"broker at {where}"

    @property
    def events_per_s(self) -> float:
        done = self.events if self.events_run is None else self.events_run
        return done / self.elapsed if self.elapsed else 0.0

    def latency(self, q: float) -> float | None:
        import numpy as np

        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else None

    def summary(self) -> dict[str, Any]:
        p50, p99 = self.latency(50), self.latency(99)
        return {
            "strategy": self.config.strategy,
            "data": self.config.label,
            "mode": self.mode,
            "broker": self.broker,
            "complete": self.complete,
            "events": self.events,
            "orders": self.orders,
            "fills": len(self.fills),
            "final_equity": f"{self.equity:f}",
            "final_pnl": f"{self.pnl:f}",
            "elapsed_s": round(self.elapsed, 3),
            "events_per_s": round(self.events_per_s, 1),
            "latency_ms_p50": None if p50 is None else round(p50, 3),
            "latency_ms_p99": None if p99 is None else round(p99, 3),
            "duplicates_dropped": self.duplicates_dropped,
            "dead_lettered": self.dead_lettered,
            "messages_per_event": self.messages_per_event,
            "same_as_backtest": self.parity,
            "paths": {k: str(v) for k, v in self.paths.items()},
        }


class Pipeline:
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
        self.config = config
        self.url = url
        self.batch = batch
        #: Every step a call, as before lookahead (see ExchangeService); for comparisons.
        self.lockstep = lockstep
        self.trace = trace
        self.prefix = prefix
        self.state_dir = state_dir
        self.out = out
        self.window = window
        self.speed = speed
        self.reconnect_interval = reconnect_interval
        self.risk, self.limit = risk, Decimal(limit)
        self.make_strategy = strategy or config.make_strategy
        self.strategy_id = self.make_strategy().name
        names = list(SERVICES)
        if risk is not None:
            names.insert(-1, "risk")
        self.names = tuple(names)
        self.services: dict[str, Service] = {}
        self.tasks: dict[str, asyncio.Task[int]] = {}
        self.restarts = dict.fromkeys(self.names, 0)
        self.retired: list[Service] = []  # killed incarnations, for their counters
        self.started = time.perf_counter()

    def _journal(self, name: str) -> Journal:
        return Journal(None if self.state_dir is None else self.state_dir / f"{name}.jsonl")

    def build(self, name: str, bus: Bus) -> Service:
        config, sid = self.config, self.strategy_id
        if name == "exchange":
            exchange = config.make_exchange()
            orders_from = ORDERS if self.risk is None else CHECKED
            return ExchangeService(
                bus, exchange, self._journal(name), strategies=[sid], orders_from=orders_from,
                lockstep=self.lockstep,
            )  # fmt: skip
        if name == "strategy":
            strategy = self.make_strategy()
            return StrategyHost(
                bus, strategy, self._journal(name), patterns=config.market_keys,
                lockstep=self.lockstep,
            )  # fmt: skip
        if name == "risk" and self.risk is not None:
            return RiskService(bus, self.risk, self.limit, self._journal(name))
        if name == "portfolio":
            title = f"{sid} over the bus on {config.label}"
            portfolio = config.make_portfolio()
            return PortfolioService(
                bus, portfolio, self._journal(name), patterns=config.market_keys, out=self.out,
                title=title,
            )  # fmt: skip
        if name == "market":
            return MarketService(
                bus, config.events, self._journal(name), speed=self.speed, window=self.window,
                batch=self.batch,
                wait_for=default_queues([sid]) + (["risk.orders"] if self.risk else []),
            )  # fmt: skip
        raise ValueError(f"unknown service {name!r}; choose one of {', '.join(self.names)}")

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
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(self.config.events), unit="ev", desc="pipeline", leave=False)
        try:
            while True:
                tasks = list(self.tasks.values())
                done, _ = await asyncio.wait(tasks, timeout=0.2)
                for task in done:
                    if task.exception() is not None:
                        await self.close()
                        raise task.exception()  # type: ignore[misc]
                if bar is not None:
                    bar.update(min(self.step, bar.total) - bar.n)
                if all(t.done() for t in self.tasks.values()) and tasks == list(
                    self.tasks.values()
                ):
                    break
        finally:
            if bar is not None:
                bar.close()

    async def close(self) -> None:
        for name in list(self.tasks):
            task = self.tasks[name]
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def delete_topology(self) -> None:
        """Delete the pipeline's exchanges and queues (a finished run leaves nothing behind)."""
        async with Bus(self.url, prefix=self.prefix) as bus:
            for name in ("exchange.market", "exchange.orders", "portfolio.market",
                         "portfolio.execution", "market.progress", "dlq", "risk.orders",
                         "risk.control", "pipeline.progress",
                         f"strategy.{self.strategy_id}.market",
                         f"strategy.{self.strategy_id}.execution"):  # fmt: skip
                bus.declared["queues"][bus.name(name)] = {}
            for name in ("market", "orders", "execution", "checked", "dlx"):
                bus.declared["exchanges"][bus.name(name)] = "topic"
            await bus.delete()

    async def count_dead_letters(self) -> int:
        async with Bus(self.url, prefix=self.prefix) as bus:
            return len(await bus.dead_letters(limit=100_000))

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
            broker=_broker_name(self.url),
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
        )


async def live_topology(pipeline: Pipeline, *, dead_letters: bool = True) -> Topology:
    """The running pipeline's exchanges, queues and bindings, read back from the broker.

    On the embedded broker this is the broker's own snapshot; on RabbitMQ, what the services
    declared, each exchange and queue confirmed by a passive declare (AMQP cannot list
    bindings). The services are drawn as the producers and consumers around them.
    ``dead_letters=False`` leaves out the dead-letter exchange and queue (and each queue's
    link to them), for a figure of the data flow alone.
    """
    from mqlab.connection import _embedded
    from mqlab.topology import Binding, ExchangeSpec, QueueSpec, Topology

    await pipeline.ready()
    top = Topology(source="declared by the services")
    for service in pipeline.services.values():
        declared = service.bus.declared
        for name, kind in declared["exchanges"].items():
            top.exchanges[name] = ExchangeSpec(name, kind, durable=True)
        for name, arguments in declared["queues"].items():
            top.queues[name] = QueueSpec(name, durable=True, arguments=dict(arguments))
        for exchange, queue, key in declared["bindings"]:
            top.bindings.append(Binding(exchange, queue, key))
    top.bindings = list(dict.fromkeys(top.bindings))
    name, sid = pipeline.prefix, pipeline.strategy_id
    keys = tuple(pipeline.config.market_keys)
    top.producers = {
        "market service": (f"{name}.{MARKET}", keys),
        "strategy host": (f"{name}.{ORDERS}", (f"order.{sid}.…", f"done.{sid}")),
        "exchange service": (
            f"{name}.{EXECUTION}",
            ("fill.…", "order_update.…", f"call.{sid}", EXCHANGE_STEP, EXCHANGE_END),
        ),
    }
    top.consumers = {
        f"{service} ({queue.split('.')[-1]})": f"{name}.{queue}"
        for service, queues in {
            "exchange": ["exchange.market", "exchange.orders"],
            "strategy": [f"strategy.{sid}.market", f"strategy.{sid}.execution"],
            "portfolio": ["portfolio.execution"],
            "market": ["market.progress"],
        }.items()
        for queue in queues
    }
    if pipeline.risk is not None:
        top.consumers["risk (orders)"] = f"{name}.risk.orders"
    broker = _embedded
    if broker is not None and broker.running and broker.url == pipeline.url:
        snapshot = Topology.from_broker(broker)
        top.bindings = [b for b in snapshot.bindings if b.queue in top.queues]
        top.ready = {q: n for q, n in snapshot.ready.items() if q in top.queues}
        top.source = "live, from the embedded broker"
    else:
        async with Bus(pipeline.url, prefix=pipeline.prefix) as bus:
            for queue in list(top.queues):
                probe = await bus.connection.channel()  # type: ignore[union-attr]
                try:
                    found = await probe.declare_queue(queue, passive=True)
                    top.ready[queue] = found.declaration_result.message_count or 0
                except Exception:
                    del top.queues[queue]
                finally:
                    with contextlib.suppress(Exception):
                        await probe.close()
        top.source = "declared, and confirmed on the broker"
    if not dead_letters:
        dlx, dlq = f"{name}.dlx", f"{name}.dlq"
        top.exchanges.pop(dlx, None)
        top.queues.pop(dlq, None)
        top.ready.pop(dlq, None)
        top.bindings = [b for b in top.bindings if b.exchange != dlx]
        top.queues = {
            q: QueueSpec(spec.name, spec.durable, spec.exclusive, spec.auto_delete, {})
            for q, spec in top.queues.items()
        }
    return top


#: URLs of the embedded brokers this process started for a pipeline, with their data dirs.
_EMBEDDED_URLS: dict[str, Path] = {}


@contextlib.contextmanager
def embedded_broker(data_dir: Path) -> Iterator[str]:
    """The embedded broker in a process of its own, as RabbitMQ always is: broker and services
    then use two cores instead of taking turns on one interpreter's lock."""
    import multiprocessing

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_broker, args=(child, str(data_dir), os.getpid()), daemon=True,
        name="mqlab-broker",
    )  # fmt: skip
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the embedded broker did not start within 60 s")
        url = parent.recv()
        if not isinstance(url, str):
            raise RuntimeError(f"the embedded broker did not start: {url}")
        _EMBEDDED_URLS[url] = data_dir.resolve()
        yield url
    finally:
        process.terminate()
        process.join(10)


def _serve_broker(conn: Any, data_dir: str, parent: int) -> None:
    """Run a broker with ``data_dir`` on a free loopback port, send its URL, and stop when
    told to or when ``parent`` is gone (even killed by SIGKILL)."""
    from mqlab.broker import Broker

    async def serve() -> None:
        broker = Broker(host="127.0.0.1", port=0, data_dir=data_dir)
        try:
            await broker.start()
        except OSError as exc:
            conn.send(repr(exc))
            return
        conn.send(broker.url)
        try:
            while os.getppid() == parent:
                await asyncio.sleep(0.2)
        finally:
            await broker.stop()

    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve())


def _broker_name(url: str) -> str:
    """The masked URL, prefixed with ``embedded`` when it is an embedded broker of ours."""
    from mqlab.connection import _embedded, mask_url

    mine = _embedded is not None and _embedded.running and _embedded.url == url
    return ("embedded " if mine or url in _EMBEDDED_URLS else "") + mask_url(url)


# --- one run, start to finish -----------------------------------------------------------------


@dataclass
class _RunState:
    """``run.json`` in the state directory: which run it is, and whether it finished."""

    prefix: str
    config: dict[str, Any]
    complete: bool = False
    #: Which broker holds the run's messages in flight (None: not recorded).
    broker: str | None = None
    #: Paused by Ctrl-C: drained, so nothing is in flight and any broker can resume it.
    paused: bool = False

    @classmethod
    def load(cls, path: Path) -> _RunState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), default=str))


def _config_key(config: RunConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config), default=str))


def resumable(state_dir: Path, config: RunConfig, broker: str | None = None) -> bool:
    """Whether ``state_dir`` holds an unfinished run with these settings that ``broker`` can
    resume: the broker that holds its messages in flight, or any broker after a clean pause."""
    previous = _RunState.load(state_dir / "run.json")
    if not previous or previous.complete or previous.config != _config_key(config):
        return False
    return previous.paused or None in (broker, previous.broker) or previous.broker == broker


def prepare_state(
    state_dir: Path, config: RunConfig, fresh: bool = False, broker: str | None = None
) -> tuple[str, bool]:
    """Resume the run in ``state_dir`` if it is unfinished, has the same settings and
    ``broker`` can resume it (see :func:`resumable`); otherwise start a new one there.
    Returns (prefix, resuming)."""
    path = state_dir / "run.json"
    previous = _RunState.load(path)
    if previous and not fresh and resumable(state_dir, config, broker):
        previous.paused = False  # running again: messages will be in flight
        previous.save(path)
        return previous.prefix, True
    if state_dir.exists():
        shutil.rmtree(state_dir)
    prefix = f"mqlab-{uuid.uuid4().hex[:8]}"
    _RunState(prefix, _config_key(config), broker=broker).save(path)
    return prefix, False


def _mark(state_dir: Path, **fields: Any) -> None:
    path = state_dir / "run.json"
    state = _RunState.load(path)
    if state is not None:
        for name, value in fields.items():
            setattr(state, name, value)
        state.save(path)


def mark_complete(state_dir: Path) -> None:
    _mark(state_dir, complete=True)


def _broker_key(url: str) -> str:
    """What identifies the broker holding a run's messages: a CLI embedded broker by its
    data directory (its port changes on every start), any other by its masked URL."""
    from mqlab.connection import mask_url

    data = _EMBEDDED_URLS.get(url)
    return f"embedded broker with data in {data}" if data else mask_url(url)


async def run_pipeline(
    config: RunConfig | None = None,
    *,
    url: str | None = None,
    out: Path | str | None = None,
    state_dir: Path | str | None = None,
    processes: bool = False,
    window: int = DEFAULT_WINDOW,
    speed: float = 0.0,
    progress: bool = True,
    fresh: bool = False,
    check_parity: bool = True,
    plots: bool = True,
    risk: RiskCheck | str | None = None,
    limit: Decimal | str = "0",
    batch: int = 1,
) -> PipelineResult:
    """Run the whole pipeline once (or resume it) and return its result.

    ``url=None`` uses ``$MQLAB_AMQP_URL`` or the embedded broker. Without ``state_dir`` the
    journals live in ``{out}/state``; without ``out`` in ``out/pipeline``. ``risk`` adds a
    risk service with that check (a function, or ``"module:function"``, which ``processes``
    needs) and position ``limit``; the backtest has no risk service, so parity is then not
    checked.
    """
    from mqlab.connection import broker_url

    config = config or RunConfig()
    url = broker_url(url)
    await probe(url)  # a wrong URL fails here, before a state directory is made
    out = Path(out) if out is not None else Path("out/pipeline")
    state = Path(state_dir) if state_dir is not None else out / "state"
    prefix, resuming = prepare_state(state, config, fresh, _broker_key(url))
    if resuming:
        print(f"resuming the unfinished run in {state} (delete it, or pass --fresh, to restart)")
    pipeline: Pipeline | ProcessPipeline
    if processes:
        if risk is not None and not isinstance(risk, str):
            raise ValueError("processes=True takes the risk check as 'module:function'")
        pipeline = ProcessPipeline(
            config, url, prefix=prefix, state_dir=state, out=out, window=window, speed=speed,
            risk=risk, limit=limit, batch=batch,
        )  # fmt: skip
    else:
        check = load_check(risk) if isinstance(risk, str) else risk
        pipeline = Pipeline(
            config, url, prefix=prefix, state_dir=state, out=out, window=window, speed=speed,
            risk=check, limit=limit, batch=batch,
        )  # fmt: skip
    check_parity = check_parity and risk is None
    waiting: asyncio.Future[None] | None = None
    interrupts = 0

    def interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print("\npausing: finishing what was published (Ctrl-C again to stop at once)",
                  file=sys.stderr)  # fmt: skip
            pipeline.request_stop()
        elif waiting is not None:
            waiting.cancel()

    try:
        await pipeline.start_all()
        with _on_interrupt(asyncio.get_running_loop(), interrupt):
            waiting = asyncio.ensure_future(pipeline.wait(progress))
            try:
                await waiting
            except asyncio.CancelledError:
                if interrupts < 2:
                    raise
                raise PipelineInterrupted(
                    f"stopped at once; the journals in {state} are consistent: run again to "
                    "resume (unfinished work is redone, duplicates are dropped)"
                ) from None
    finally:
        await pipeline.close()
    result = pipeline.result()
    if not result.complete and interrupts == 1:
        _mark(state, paused=True)  # drained: it may resume on any broker
    result.dead_lettered = max(result.dead_lettered, await pipeline.count_dead_letters())
    if result.complete:
        mark_complete(state)
        await Pipeline(config, url, prefix=prefix).delete_topology()
        if check_parity:
            reference = config.backtest()
            result.parity = (
                fill_rows(reference.fills) == result.fills
                and reference.portfolio.equity() == result.equity
            )
    result.paths = {"report": out / "report.json", "equity": out / "equity.png"}
    if plots and result.latency_ms:
        plot_latency(result, out / "latency.png")
        result.paths["latency"] = out / "latency.png"
    if not result.complete:
        result.paths = {}
    return result


class PipelineInterrupted(Exception):
    """A second Ctrl-C: the pipeline stopped without draining (it still resumes)."""


class ServiceFailed(RuntimeError):
    """A service process died on its own (not killed by us); the run can be resumed."""


@contextlib.contextmanager
def _on_interrupt(loop: asyncio.AbstractEventLoop, callback: Any) -> Iterator[None]:
    """Route Ctrl-C to ``callback`` (a clean pause) instead of KeyboardInterrupt."""
    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, callback)
        installed = True
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


class ProcessPipeline:
    """The four services as OS processes (``python -m mqlab <service> ...``).

    Same interface as :class:`Pipeline`; :meth:`kill` is a real ``SIGKILL``. Each service's
    stderr goes to ``{out}/logs/<service>.log``.
    """

    def __init__(
        self,
        config: RunConfig,
        url: str,
        *,
        prefix: str,
        state_dir: Path,
        out: Path,
        window: int = DEFAULT_WINDOW,
        speed: float = 0.0,
        risk: str | None = None,
        limit: Decimal | str = "0",
        batch: int = 1,
    ) -> None:
        self.config = config
        self.url = url
        self.prefix = prefix
        self.state_dir = state_dir
        self.out = out
        self.window = window
        self.batch = batch
        self.speed = speed
        #: ``"module:function"`` of a risk check (``python -m mqlab risk --check``), or None.
        self.risk, self.limit = risk, Decimal(limit)
        names = list(SERVICES)
        if risk is not None:
            names.insert(-1, "risk")
        self.names = tuple(names)
        self.children: dict[str, asyncio.subprocess.Process] = {}
        self.restarts = dict.fromkeys(self.names, 0)
        self.step = 0
        self._killed: set[int] = set()
        self._bus: Bus | None = None

    def argv(self, name: str) -> list[str]:
        """The command that starts service ``name``: ``python -m mqlab <name> ...``."""
        argv = [sys.executable, "-m", "mqlab", name, "--url", self.url, "--prefix", self.prefix]
        argv += ["--state-dir", str(self.state_dir), "--out", str(self.out)]
        argv += self.config.to_argv()
        if name == "market":
            argv += ["--window", str(self.window), "--speed", str(self.speed)]
            argv += ["--batch", str(self.batch)]
        if self.risk is not None and name in ("market", "exchange"):
            argv += ["--risk"]
        if name == "risk":
            argv += ["--check", str(self.risk), "--position-limit", f"{self.limit:f}"]
        return argv

    def commands(self) -> dict[str, str]:
        """Each service's command line as a person would type it (password masked)."""
        from mqlab.connection import mask_url

        return {
            name: " ".join(
                [
                    "python -m mqlab",
                    *(mask_url(a) if a == self.url else a for a in self.argv(name)[3:]),
                ]
            )
            for name in self.names
        }

    async def start(self, name: str) -> None:
        logs = self.out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("ab") as log:
            # Own session: Ctrl-C reaches only the pipeline, which pauses the market alone.
            # MQLAB_PARENT_PID: the service stops when this process dies (even by SIGKILL),
            # instead of living on as an orphan that would consume a resumed run's messages.
            self.children[name] = await asyncio.create_subprocess_exec(
                *self.argv(name),
                env=os.environ | {"PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())},
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )

    async def start_all(self) -> None:
        self._bus = await Bus(self.url, prefix=self.prefix).start()

        async def on_step(delivery: Delivery) -> None:
            data = parse_control(delivery.body, kind=str)
            matched = data["seq"] if data["kind"] == "step" else data["after"]
            self.step = max(self.step, int(matched))

        await self._bus.subscribe(
            "pipeline.progress", [(EXECUTION, EXCHANGE_STEP), (EXECUTION, EXCHANGE_END)], on_step
        )
        for name in self.names:
            await self.start(name)

    async def kill(self, name: str) -> None:
        """``SIGKILL`` one service: no clean-up of any kind, like a power cut."""
        process = self.children[name]
        self._killed.add(process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        self.restarts[name] += 1

    def request_stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, KeyError):
            self.children["market"].send_signal(signal.SIGINT)

    async def wait(self, progress: bool = False) -> None:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(self.config.events), unit="ev", desc="pipeline", leave=False)
        try:
            while True:
                children = dict(self.children)
                waits = [asyncio.ensure_future(p.wait()) for p in children.values()]
                await asyncio.wait(waits, timeout=0.2)
                for w in waits:
                    w.cancel()
                for name, process in children.items():
                    code = process.returncode
                    if code not in (None, 0) and process.pid not in self._killed:
                        raise ServiceFailed(
                            f"service {name} exited with code {code} (its log: "
                            f"{self.out / 'logs' / (name + '.log')}); the journals in "
                            f"{self.state_dir} are consistent: run the same command again "
                            "to resume"
                        )
                if bar is not None:
                    bar.update(min(self.step, bar.total) - bar.n)
                if children == self.children and all(
                    p.returncode is not None for p in children.values()
                ):
                    return
        finally:
            if bar is not None:
                bar.close()

    async def close(self) -> None:
        for process in self.children.values():
            if process.returncode is None:
                process.kill()
                await process.wait()
        if self._bus is not None:
            for subscription in list(self._bus.subscriptions):
                await subscription.stop()
            self._bus.subscriptions.clear()
            with contextlib.suppress(Exception):
                await self._bus.channel.queue_delete(self._bus.name("pipeline.progress"))
            await self._bus.close()

    async def count_dead_letters(self) -> int:
        async with Bus(self.url, prefix=self.prefix) as bus:
            return len(await bus.dead_letters(limit=100_000))

    async def delete_topology(self) -> None:
        """Delete the pipeline's exchanges and queues (see :meth:`Pipeline.delete_topology`)."""
        await Pipeline(self.config, self.url, prefix=self.prefix).delete_topology()

    def result(self) -> PipelineResult:
        """Read what the services wrote to ``out``: counters, report and fills."""
        out, config = self.out, self.config
        stats = {
            name: json.loads((out / f"{name}.json").read_text())
            for name in self.names
            if (out / f"{name}.json").exists()
        }
        exchange, portfolio = stats.get("exchange", {}), stats.get("portfolio", {})
        complete = bool(portfolio.get("ended"))
        fills = _read_fill_rows(out / "fills.csv") if complete else []
        equity = Decimal(portfolio.get("equity") or config.cash)
        subs = [s for st in stats.values() for s in st.get("subscriptions", {}).values()]
        spans = [(st["first_ns"], st["last_ns"]) for st in stats.values() if st.get("first_ns")]
        elapsed = (max(b for _, b in spans) - min(a for a, _ in spans)) / 1e9 if spans else 0.0
        return PipelineResult(
            config=config,
            mode=f"{len(self.names)} processes",
            commands=self.commands(),
            broker=_broker_name(self.url),
            events=int(exchange.get("events", 0)),
            orders=int(exchange.get("orders", 0)),
            fills=fills,
            equity=equity,
            pnl=equity - Decimal(config.cash),
            elapsed=elapsed,
            latency_ms=[n / 1e6 for n in exchange.get("latencies_ns", [])],
            decision_ms=[n / 1e6 for n in exchange.get("decisions_ns", [])],
            events_run=int(exchange.get("events", 0)) - int(exchange.get("events_replayed", 0)),
            complete=complete,
            stats=stats,
            duplicates_dropped=sum(s["duplicates"] for s in subs),
            published=sum(int(st.get("bus", {}).get("published", 0)) for st in stats.values()),
            delivered=sum(int(s.get("delivered", 0)) for s in subs),
        )


def in_process_latency(config: RunConfig) -> dict[str, Any]:
    """The backtest engine (no broker) timed like the pipeline: events/s, and from a market
    event coming off the engine's heap to each order it causes reaching ``on_order``."""
    import numpy as np

    from mqlab.backtest import Backtest
    from mqlab.exchange import Latency, SimulatedExchange

    class TimedExchange(SimulatedExchange):
        t0, latencies_ns = 0, []

        def on_market(self, event):  # type: ignore[no-untyped-def]
            self.t0 = time.perf_counter_ns()
            return super().on_market(event)

        def on_order(self, request):  # type: ignore[no-untyped-def]
            if request.__class__.__name__ == "Order":
                self.latencies_ns.append(time.perf_counter_ns() - self.t0)
            return super().on_order(request)

    exchange = TimedExchange(
        {"USDT": config.cash}, taker_fee=config.fee, latency=Latency(config.latency_ms)
    )
    exchange.latencies_ns = []
    result = Backtest(config.make_strategy(), config.events, cash=config.cash,
                      exchange=exchange, portfolio=config.make_portfolio()).run()  # fmt: skip
    latency = np.array(exchange.latencies_ns, dtype=float) / 1e6
    return {
        "events_per_s": result.events / result.elapsed,
        "latency_ms_p50": float(np.percentile(latency, 50)) if latency.size else None,
        "latency_ms_p99": float(np.percentile(latency, 99)) if latency.size else None,
        "fills": fill_rows(result.fills),
    }


def plot_latency(result: PipelineResult, path: Path | None = None, ax: Axes | None = None) -> Axes:
    """Histograms of event → decision (every step) and event → order latency, in ms.

    p50 and p99 of the orders are marked. With ``path`` the figure is saved there (drawn off
    screen, so a notebook's backend is left alone); without, it is drawn with pyplot.
    """
    import numpy as np

    if ax is None:
        if path is not None:
            from matplotlib.figure import Figure

            ax = Figure(figsize=(8, 3.8)).subplots()
        else:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(8, 3.8))
    samples = result.decision_ms + result.latency_ms
    top = float(np.percentile(samples, 99.5)) * 1.1 if samples else 1.0
    bins = np.linspace(0, top, 50).tolist()
    beyond = sum(x > top for x in samples)  # drawn in the last bin, and said so
    if result.decision_ms:
        ax.hist(np.clip(result.decision_ms, 0, top), bins=bins, color="#b8c4d6",
                label=f"event → decision, every step (n={len(result.decision_ms)})")  # fmt: skip
    ax.hist(np.clip(result.latency_ms, 0, top), bins=bins, color="#3461c1",
            label=f"event → order (n={len(result.latency_ms)})")  # fmt: skip
    for q, style in ((50, "--"), (99, ":")):
        value = result.latency(q)
        if value is not None:
            ax.axvline(value, color="black", ls=style, lw=1.2, label=f"order p{q} = {value:.2f} ms")
    ax.set_yscale("log")
    if beyond:
        ax.plot([], [], " ", label=f"{beyond} samples above {top:.1f} ms, drawn in the last bin")
    ax.set(
        title=f"Latency over the bus ({result.mode}, {result.broker_label})\n"
        f"{result.events} events of {result.config.label}",
        xlabel="from the market service's publish to the exchange service (ms)",
        ylabel="count (log scale)",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ax.figure.savefig(path, dpi=110, bbox_inches="tight")  # type: ignore[union-attr]
    return ax


# --- CLI ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.services.config import positive_int

    parser.epilog = (
        "examples: python -m mqlab pipeline  |  ... --processes  |  "
        "... --url amqp://guest:guest@127.0.0.1:5672/  |  ... --json --limit 500"
    )
    parser.add_argument(
        "--url",
        help="AMQP URL of a broker, e.g. amqp://guest:guest@127.0.0.1:5672/, or of a "
        "cluster's nodes, comma-separated, to fail over between them (default: "
        "$MQLAB_AMQP_URL, else an embedded broker started for this run)",
    )
    from mqlab.ha import add_queue_type_argument

    add_queue_type_argument(parser)
    parser.add_argument(
        "--processes", action="store_true", help="run each service as its own OS process"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/pipeline"),
        help="where the report, plots and the services' journals go; running again with the "
        "same --out resumes an unfinished run (default: out/pipeline)",
    )
    parser.add_argument(
        "--window",
        type=positive_int,
        default=DEFAULT_WINDOW,
        help=f"market steps in flight (default: {DEFAULT_WINDOW})",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        help="market events per message, at most --window (default: 1, one event per "
        "message, as aioquant publishes them)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay speed: 0 as fast as possible (default), 1 real time",
    )
    parser.add_argument("--fresh", action="store_true", help="do not resume an unfinished run")
    parser.add_argument(
        "--risk",
        metavar="MODULE:FUNCTION",
        help="add a risk service with this check between strategy and exchange "
        "(see python -m mqlab risk --help); needs --position-limit",
    )
    parser.add_argument(
        "--position-limit", metavar="QTY", default="0", help="the risk check's position limit"
    )
    parser.add_argument(
        "--delete",
        metavar="PREFIX",
        help="delete the exchanges and queues named PREFIX.* from the broker at --url (a run "
        "started by hand, service by service, with --prefix PREFIX), then exit",
    )
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mqlab.bus import BusError
    from mqlab.ha import apply_queue_type
    from mqlab.services import load_config

    apply_queue_type(args)  # every bus of the run, and the --processes children, use it
    config = load_config(args)
    if config is None:
        return 2
    if args.batch > args.window:
        print(f"error: --batch {args.batch} is more than --window {args.window}: a message "
              "cannot hold more events than may be in flight; raise --window", file=sys.stderr)
        return 2
    limit = Decimal(0)
    if args.risk is not None:
        try:
            load_check(args.risk)
            limit = Decimal(args.position_limit)
        except (ValueError, ArithmeticError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.delete is not None:
        return _delete(args, config)
    with contextlib.ExitStack() as stack:
        url = args.url or os.environ.get("MQLAB_AMQP_URL")
        if url is None:
            # Our own embedded broker, persistent next to the journals: even a run that was
            # killed (not paused) resumes with nothing lost. A new run starts a new broker.
            data = args.out / "broker"
            key = f"embedded broker with data in {data.resolve()}"
            if args.fresh or not resumable(args.out / "state", config, key):
                shutil.rmtree(data, ignore_errors=True)
            url = stack.enter_context(embedded_broker(data))
        try:
            result = run_loop(
                run_pipeline(
                    config,
                    url=url,
                    out=args.out,
                    processes=args.processes,
                    window=args.window,
                    batch=args.batch,
                    speed=args.speed,
                    progress=not args.json and sys.stderr.isatty(),
                    fresh=args.fresh,
                    risk=args.risk,
                    limit=limit,
                )
            )
        except PipelineInterrupted as exc:
            print(exc, file=sys.stderr)
            return 130
        except ServiceFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except BusError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0 if result.complete else 130
    _print_summary(result)
    return 0 if result.complete else 130


def _delete(args: argparse.Namespace, config: RunConfig) -> int:
    from mqlab.bus import BusError

    url = args.url or os.environ.get("MQLAB_AMQP_URL")
    if url is None:
        print("error: --delete needs the broker: pass --url amqp://...", file=sys.stderr)
        return 2
    try:
        asyncio.run(Pipeline(config, url, prefix=args.delete).delete_topology())
    except BusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"deleted the exchanges and queues of {args.delete}.* (those that existed)")
    return 0


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _print_summary(result: PipelineResult) -> None:
    s = result.summary()
    lines = [
        f"pipeline: {s['strategy']} on {s['data']}, {s['mode']}, {result.broker_label} "
        f"({s['broker'].removeprefix('embedded ')})",
        f"  events             {s['events']}",
        f"  orders             {s['orders']}",
        f"  fills              {s['fills']}",
        f"  final PnL          {Decimal(s['final_pnl']):.2f} USDT (equity {s['final_equity']})",
        f"  events/s           {s['events_per_s']:.0f}  ({s['elapsed_s']:.1f} s)",
        f"  event→order        p50 {_ms(s['latency_ms_p50'])}, p99 {_ms(s['latency_ms_p99'])}"
        " (market publish → order at the exchange service)",
        f"  duplicates dropped {s['duplicates_dropped']}   dead-lettered {s['dead_lettered']}",
    ]
    risk = result.stats.get("risk")
    if risk:
        lines.append(
            f"  risk service       {risk['passed']} orders passed, {risk['refused']} refused"
        )
    if s["same_as_backtest"] is not None:
        lines.append(f"  same fills and PnL as the in-process backtest: {s['same_as_backtest']}")
    elif risk is not None:
        lines.append("  (no parity check: the backtest has no risk service)")
    if not result.complete:
        lines.append("  paused (Ctrl-C): run the same command again to resume")
    for name, path in s["paths"].items():
        lines.append(f"  {name}: {path}")
    print("\n".join(lines))
