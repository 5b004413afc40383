"""Chapter 11's measurements: the pipeline on one broker and on the cluster, and a node killed.

Thin drivers over :mod:`mqlab.pipeline` and :mod:`mqlab.cluster`, so the chapter's cells stay
short and the numbers it shows come from these functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mqlab.cluster import Cluster, NodeKill, kill_node_during_run
from mqlab.ha import ENV_QUEUE_TYPE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mqlab.pipeline import PipelineResult


@contextlib.contextmanager
def _quiet_reconnects() -> Iterator[None]:
    """Mute aiormq's and aio-pika's tracebacks of the connection the kill cuts (expected here,
    and followed by the reconnect); errors of any other kind still show."""
    loggers = [logging.getLogger(n) for n in ("aiormq.connection", "aio_pika")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


__all__ = ["Throughput", "kill_a_node", "plot_throughput", "throughput"]


@dataclass(frozen=True)
class Throughput:
    """One pipeline run: where, with which queue type, how fast, and whether it was exact."""

    setup: str
    queue_type: str
    events: int
    events_per_s: float
    same_as_backtest: bool | None


async def throughput(
    setup: str, url: str | None, queue_type: str, limit: int, processes: bool = True
) -> Throughput:
    """Run the pipeline once (``limit`` events) on ``url`` with ``queue_type`` queues."""
    from mqlab.config import RunConfig
    from mqlab.pipeline import run_pipeline

    before = os.environ.get(ENV_QUEUE_TYPE)
    os.environ[ENV_QUEUE_TYPE] = queue_type  # the services started as processes inherit it
    try:
        with tempfile.TemporaryDirectory(prefix="mqlab-ch11-") as out:
            result = await run_pipeline(
                RunConfig(limit=limit),
                url=url,
                out=Path(out),
                processes=processes,
                progress=False,
                fresh=True,
                plots=False,
            )
    finally:
        if before is None:
            os.environ.pop(ENV_QUEUE_TYPE, None)
        else:
            os.environ[ENV_QUEUE_TYPE] = before
    return Throughput(setup, queue_type, result.events, result.events_per_s, result.parity)


def plot_throughput(runs: list[Throughput], note: str = "") -> Figure:
    """Bars of events/s per setup, each labelled with its value."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    labels = [f"{r.setup}\n({r.queue_type} queues)" for r in runs]
    bars = ax.bar(labels, [r.events_per_s for r in runs], color="#4c72b0")
    ax.bar_label(bars, fmt="%.0f")
    ax.set_ylabel("market events per second (events/s)")
    ax.set_xlabel("broker")
    ax.set_title("Pipeline throughput, every service its own process" + note)
    fig.tight_layout()
    return fig


async def kill_a_node(
    cluster: Cluster, limit: int, at: float = 0.3
) -> tuple[NodeKill, PipelineResult]:
    """Run the pipeline on the cluster with quorum queues; ``kill -9`` the busiest queue's
    leader when ``at`` of the events are through, restart it; return the kill and the result."""
    from mqlab.config import RunConfig
    from mqlab.pipeline import ProcessPipeline

    config = RunConfig(limit=limit)
    before = os.environ.get(ENV_QUEUE_TYPE)
    os.environ[ENV_QUEUE_TYPE] = "quorum"
    try:
        with tempfile.TemporaryDirectory(prefix="mqlab-ch11-kill-") as tmp:
            out = Path(tmp)
            pipeline = ProcessPipeline(
                config,
                cluster.url,
                prefix=f"ch11-{uuid.uuid4().hex[:6]}",
                state_dir=out / "state",
                out=out,
            )
            await pipeline.start_all()
            try:
                with _quiet_reconnects():
                    kill = await kill_node_during_run(
                        cluster, pipeline, int(len(config.events) * at)
                    )
                    await pipeline.wait()
            finally:
                await pipeline.close()
                await pipeline.delete_topology()
            result = pipeline.result()
    finally:
        if before is None:
            os.environ.pop(ENV_QUEUE_TYPE, None)
        else:
            os.environ[ENV_QUEUE_TYPE] = before
    reference = config.backtest()
    exact = result.equity == reference.portfolio.equity()
    from mqlab.pipeline import fill_rows

    result.parity = exact and result.fills == fill_rows(reference.fills)
    return kill, result
