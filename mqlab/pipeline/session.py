"""One run, start to finish: :func:`run_pipeline` starts a runner, waits (Ctrl-C pauses),
checks parity with the backtest, and resumes an unfinished run in the same state directory."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from mqlab.bus import probe
from mqlab.config import RunConfig
from mqlab.pipeline.embedded import broker_key
from mqlab.pipeline.latency import plot_latency
from mqlab.pipeline.processes import ProcessPipeline
from mqlab.pipeline.result import PipelineResult, fill_rows
from mqlab.pipeline.runner import Pipeline
from mqlab.pipeline.state import mark_complete, mark_state, prepare_state
from mqlab.services.protocol import DEFAULT_WINDOW
from mqlab.services.risk import RiskCheck, load_check

__all__ = ["PipelineInterrupted", "run_pipeline"]


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
    prefix, resuming = prepare_state(state, config, fresh, broker_key(url))
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
        mark_state(state, paused=True)  # drained: it may resume on any broker
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
