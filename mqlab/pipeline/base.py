"""What both runners share: the service names, the :class:`Runner` protocol that
:func:`~mqlab.pipeline.session.run_pipeline` drives, and the run's topology on the broker."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from mqlab.bus import Bus
from mqlab.config import RunConfig
from mqlab.services.options import ServiceOptions
from mqlab.services.protocol import pipeline_exchanges, pipeline_queues

if TYPE_CHECKING:
    from mqlab.pipeline.result import PipelineResult

__all__ = [
    "SERVICES",
    "Progress",
    "Runner",
    "RunnerBase",
    "count_dead_letters",
    "delete_topology",
    "service_names",
]

#: Service names, in the order they start (consumers first, the market last).
SERVICES = ("exchange", "strategy", "portfolio", "market")


def service_names(risk: bool) -> tuple[str, ...]:
    """The services of a run, in start order; a risk service starts just before the market."""
    names = list(SERVICES)
    if risk:
        names.insert(-1, "risk")
    return tuple(names)


class Runner(Protocol):
    """The services of one run, in this process (:class:`~mqlab.pipeline.runner.Pipeline`)
    or as OS processes (:class:`~mqlab.pipeline.processes.ProcessPipeline`)."""

    config: RunConfig
    url: str
    prefix: str
    names: tuple[str, ...]
    restarts: dict[str, int]

    @property
    def step(self) -> int:
        """The last market step the exchange service has matched."""
        ...

    async def start_all(self) -> None:
        """Start every service, consumers first, the market last."""

    async def kill(self, name: str) -> None:
        """Crash one service (its journal stays)."""

    def request_stop(self) -> None:
        """Ctrl-C: the market pauses; the others finish what was published, then stop."""

    async def wait(self, progress: bool = False) -> None:
        """Until every service finished (end of data, or a pause)."""

    async def close(self) -> None:
        """Stop whatever still runs."""

    async def count_dead_letters(self) -> int:
        """Messages in the run's dead-letter queue."""
        ...

    async def delete_topology(self) -> None:
        """Delete the run's exchanges and queues."""

    def result(self) -> PipelineResult:
        """What the run did, from every service's counters."""
        ...


@dataclass(eq=False, repr=False)
class RunnerBase:
    """What both runners keep: the run's config and broker, the :class:`ServiceOptions` its
    services are built from (the process runner turns them into command lines), the names
    of its exchanges and queues (``prefix``), its journals (``state_dir``) and the risk
    service's position ``limit``."""

    config: RunConfig
    url: str
    options: ServiceOptions
    prefix: str
    state_dir: Path | None
    limit: Decimal
    names: tuple[str, ...] = field(init=False)
    #: Kills so far, by service.
    restarts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.names = service_names(self.options.risk)
        self.restarts = dict.fromkeys(self.names, 0)

    @property
    def strategy_id(self) -> str:
        return self.options.strategy_id

    async def count_dead_letters(self) -> int:
        """Messages in the run's dead-letter queue."""
        return await count_dead_letters(self.url, self.prefix)

    async def delete_topology(self) -> None:
        """Delete the run's exchanges and queues (a finished run leaves nothing behind)."""
        await delete_topology(self.url, self.prefix, self.strategy_id)


async def count_dead_letters(url: str, prefix: str) -> int:
    """Messages in the dead-letter queue of the run named ``prefix``."""
    async with Bus(url, prefix=prefix) as bus:
        return len(await bus.dead_letters(limit=100_000))


async def delete_topology(url: str, prefix: str, strategy_id: str) -> None:
    """Delete the exchanges and queues of the run named ``prefix`` (those that exist)."""
    async with Bus(url, prefix=prefix) as bus:
        for name in pipeline_queues([strategy_id]):
            bus.declared["queues"][bus.name(name)] = {}
        for name in pipeline_exchanges():
            bus.declared["exchanges"][bus.name(name)] = "topic"
        await bus.delete()


class Progress:
    """A run's progress bar (``tqdm.auto``, in market steps), or nothing when ``show`` is
    false; both runners' :meth:`~Runner.wait` draw it the same way."""

    def __init__(self, total: int, show: bool) -> None:
        self.bar: Any = None
        if show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="ev", desc="pipeline", leave=False)

    def update(self, step: int) -> None:
        """Move the bar to ``step`` (the last step the exchange service matched)."""
        if self.bar is not None:
            self.bar.update(min(step, self.bar.total) - self.bar.n)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.bar is not None:
            self.bar.close()
