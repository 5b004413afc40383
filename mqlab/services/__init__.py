"""The pipeline's services: market → strategy host → simulated exchange → portfolio, on a bus.

Each service is a module with ``add_arguments(parser)`` and ``run(args) -> int``, so
``python -m mqlab market|strategy|exchange|portfolio|risk --url amqp://...`` starts one alone
(on another machine, say), and :mod:`mqlab.pipeline` starts all of them together:

* :mod:`~mqlab.services.market`: replays market data as numbered steps;
* :mod:`~mqlab.services.strategy_host`: runs any :class:`~mqlab.strategy.Strategy`;
* :mod:`~mqlab.services.exchange`: the :class:`~mqlab.exchange.SimulatedExchange`;
* :mod:`~mqlab.services.portfolio`: the :class:`~mqlab.portfolio.Portfolio`, report and plots;
* :mod:`~mqlab.services.risk` (optional): a pre-trade check between strategy and exchange.

They share :mod:`mqlab.bus` (the reliability rules), :mod:`~mqlab.services.protocol` (names,
keys and step markers) and :class:`~mqlab.services._runtime.Service` (journal and recovery).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqlab.bus import Bus, BusError
from mqlab.loop import run as run_loop
from mqlab.services._runtime import Journal, Outgoing, Service

if TYPE_CHECKING:
    from mqlab.services.config import RunConfig

__all__ = ["PARENT_ENV", "Journal", "Outgoing", "Service", "load_config", "serve", "write_stats"]

#: Set by a pipeline for the services it starts: the pid whose death must end them too.
PARENT_ENV = "MQLAB_PARENT_PID"


async def _watch_parent(parent: int, name: str) -> None:
    """End this process soon after ``parent`` died (an orphan is re-parented): its journal
    is consistent at any instant, so stopping at once loses nothing."""
    while os.getppid() == parent:
        await asyncio.sleep(0.2)
    print(f"{name}: the pipeline that started it (pid {parent}) is gone; stopping",
          file=sys.stderr)  # fmt: skip
    os._exit(3)


def write_stats(out: Path | None, service: Service, extra: dict[str, Any] | None = None) -> None:
    """Write ``{out}/{name}.json`` with the service's counters (the pipeline collects them)."""
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    data = service.stats() | {"bus": service.bus.stats.as_dict()} | (extra or {})
    data["subscriptions"] = {s.name: s.stats.as_dict() for s in service.bus.subscriptions}
    for name in ("latencies_ns", "decisions_ns", "submitted"):  # the exchange's samples
        if hasattr(service, name):
            data[name] = list(getattr(service, name))
    (out / f"{service.name}.json").write_text(json.dumps(data, indent=1, default=str))


def load_config(args: argparse.Namespace) -> RunConfig | None:
    """The run settings in ``args``, checked before any broker is contacted.

    On a bad ``--data``, ``--param``, ``--cash``... prints ``error: ...`` (what is wrong and
    what to do) and returns None; the command then exits with status 2.
    """
    from mqlab.market import DataError
    from mqlab.services.config import RunConfig

    try:
        config = RunConfig.from_args(args)
        config.check()
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    except TypeError as exc:  # a strategy given a parameter of the wrong kind
        print(
            f"error: {args.strategy} cannot run with --param {' --param '.join(args.param)} "
            f"({exc}); numbers are written bare, e.g. --param fast=5",
            file=sys.stderr,
        )
        return None
    return config


def serve(args: argparse.Namespace, build: Callable[[Bus], Service]) -> int:
    """Run one service until it finishes or gets Ctrl-C/SIGTERM; print what it did.

    Exit status: 0 finished, 1 the broker failed, 2 no URL, 130 stopped by Ctrl-C (start it
    again with the same ``--state-dir`` to resume).
    """
    from mqlab.connection import ENV_URL, mask_url
    from mqlab.ha import apply_queue_type

    apply_queue_type(args)  # --queue-type (or $MQLAB_QUEUE_TYPE) for this service's bus
    url = args.url or os.environ.get(ENV_URL)
    if url is None:
        print(
            "error: a service alone needs the broker the other services use: pass --url "
            f"amqp://... or set {ENV_URL} (or run them together: python -m mqlab pipeline)",
            file=sys.stderr,
        )
        return 2

    async def main() -> int:
        async with Bus(url, prefix=args.prefix) as bus:
            service = build(bus)
            where = service.journal.path or "memory (a restart starts over)"
            print(
                f"{service.name}: on {mask_url(url)}, names {args.prefix}.*, journal in {where}",
                file=sys.stderr,
            )
            loop = asyncio.get_running_loop()
            parent = os.environ.get(PARENT_ENV)
            if parent and parent.isdigit():
                watchdog = loop.create_task(_watch_parent(int(parent), service.name))
                service.tasks.add(watchdog)  # a reference, so it is not collected
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, service.request_stop)
            try:
                await service.run()
            finally:
                write_stats(getattr(args, "out", None), service)
            stopped = service.stopping.is_set()
            state = "stopped (Ctrl-C)" if stopped else "done"
            print(f"{service.name}: {state}; {service.summary()}")
            if stopped:
                hint = (
                    "start it again with the same --state-dir to resume"
                    if service.journal.path
                    else "it kept no journal (no --state-dir), so a restart starts over"
                )
                print(f"{service.name}: {hint}", file=sys.stderr)
                return 130
            return 0

    try:
        return run_loop(main())
    except BusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
