"""Latency: the in-process reference (the backtest engine, timed like the pipeline) and the
pipeline's latency histogram."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqlab.config import RunConfig
from mqlab.pipeline.result import PipelineResult, fill_rows

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["in_process_latency", "plot_latency"]


def in_process_latency(config: RunConfig) -> dict[str, Any]:
    """The backtest engine (no broker) timed like the pipeline: events/s, and from a market
    event coming off the engine's heap to each order it causes reaching ``on_order``."""
    import numpy as np

    from mqlab.backtest import Backtest
    from mqlab.venue import Latency, SimulatedExchange

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
