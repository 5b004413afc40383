"""The process runner: each service as its own OS process (``python -m mqlab <service>``),
the same commands that spread a pipeline over several hosts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from mqlab.bus import Bus, Delivery
from mqlab.config import RunConfig
from mqlab.pipeline.base import Progress, RunnerBase
from mqlab.pipeline.embedded import broker_name
from mqlab.pipeline.result import PipelineResult, read_fill_rows, sum_counts
from mqlab.services import PARENT_ENV
from mqlab.services.options import ServiceOptions
from mqlab.services.protocol import (
    DEFAULT_WINDOW,
    EXCHANGE_END,
    EXCHANGE_STEP,
    EXECUTION,
    parse_control,
)

__all__ = ["ProcessPipeline", "ServiceFailed"]


class ServiceFailed(RuntimeError):
    """A service process died on its own (not killed by us); the run can be resumed."""


class ProcessPipeline(RunnerBase):
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
        options = ServiceOptions(
            config, risk=risk is not None, window=window, batch=batch, speed=speed, out=out
        )
        super().__init__(config, url, options, prefix, state_dir, Decimal(limit))
        self.state_dir: Path = state_dir
        self.out = out
        #: ``"module:function"`` of a risk check (``python -m mqlab risk --check``), or None.
        self.risk = risk
        self.children: dict[str, asyncio.subprocess.Process] = {}
        self.step = 0
        self._killed: set[int] = set()
        self._bus: Bus | None = None

    def argv(self, name: str) -> list[str]:
        """The command that starts service ``name``: ``python -m mqlab <name> ...``."""
        argv = [sys.executable, "-m", "mqlab", name, "--url", self.url, "--prefix", self.prefix]
        argv += ["--state-dir", str(self.state_dir), "--out", str(self.out)]
        argv += self.config.to_argv()
        if name == "market":
            o = self.options
            argv += ["--window", str(o.window), "--speed", str(o.speed), "--batch", str(o.batch)]
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
        with Progress(len(self.config.events), progress) as bar:
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
                bar.update(self.step)
                if children == self.children and all(
                    p.returncode is not None for p in children.values()
                ):
                    return

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
        fills = read_fill_rows(out / "fills.csv") if complete else []
        equity = Decimal(portfolio.get("equity") or config.cash)
        subs = [s for st in stats.values() for s in st.get("subscriptions", {}).values()]
        spans = [(st["first_ns"], st["last_ns"]) for st in stats.values() if st.get("first_ns")]
        elapsed = (max(b for _, b in spans) - min(a for a, _ in spans)) / 1e9 if spans else 0.0
        return PipelineResult(
            config=config,
            mode=f"{len(self.names)} processes",
            commands=self.commands(),
            broker=broker_name(self.url),
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
            kinds=sum_counts([st.get("bus", {}).get("kinds", {}) for st in stats.values()]
                             + [s.get("kinds", {}) for s in subs]),
        )  # fmt: skip
