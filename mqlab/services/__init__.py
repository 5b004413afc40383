"""The pipeline's services: market → strategy host → simulated exchange → portfolio, on a bus.

Each service is a module with ``add_arguments(parser)`` and ``run(args) -> int``, so
``python -m mqlab market|strategy|exchange|portfolio|risk --url amqp://...`` starts one alone
(on another machine, say), and :mod:`mqlab.pipeline` starts all of them together:

* :mod:`~mqlab.services.market`: replays market data as numbered steps;
* :mod:`~mqlab.services.strategy_host`: runs any :class:`~mqlab.strategy.Strategy`;
* :mod:`~mqlab.services.exchange`: the :class:`~mqlab.venue.SimulatedExchange`;
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
from typing import TYPE_CHECKING, Any, TypeVar

from mqlab.bus import Bus, BusError
from mqlab.loop import run as run_loop
from mqlab.services._runtime import Journal, Outgoing, Service

if TYPE_CHECKING:
    from mqlab.services.options import ServiceOptions

S = TypeVar("S", bound=Service)

__all__ = [
    "PARENT_ENV",
    "Journal",
    "Outgoing",
    "Service",
    "add_service_arguments",
    "run_service",
    "serve",
    "write_stats",
]

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


def serve(args: argparse.Namespace, build: Callable[[Bus], Service]) -> int:
    """Run one service until it finishes or gets Ctrl-C/SIGTERM; print what it did.

    Exit status: 0 finished, 1 the broker failed, 2 no URL, 130 stopped by Ctrl-C (start it
    again with the same ``--state-dir`` to resume).
    """
    from mqlab.connection import InvalidURLError, NoBrokerError, mask_url, resolve_url
    from mqlab.ha import apply_queue_type

    apply_queue_type(args)  # --queue-type (or $MQLAB_QUEUE_TYPE) for this service's bus
    try:
        url = resolve_url(args.url, fallback=None, given_as="--url").url
    except NoBrokerError as exc:
        print(
            f"error: a service alone needs the broker the other services use; {exc} (or run "
            "them together: python -m mqlab pipeline)",
            file=sys.stderr,
        )
        return 2
    except InvalidURLError as exc:
        print(f"error: {exc}", file=sys.stderr)
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


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """What every service's command line starts with: ``--url``, ``--prefix``,
    ``--state-dir`` and the run settings (:func:`mqlab.config.add_config_arguments`)."""
    from mqlab.config import add_config_arguments
    from mqlab.services._runtime import add_common_arguments

    add_common_arguments(parser)
    add_config_arguments(parser)


def run_service(
    args: argparse.Namespace, name: str, build: Callable[[Bus, ServiceOptions, Journal], S]
) -> int:
    """One service's ``run(args)``: check the run settings (exit 2 on a bad one), then
    :func:`serve` what ``build(bus, options, journal)`` makes (a service class will do), its
    journal in ``--state-dir``."""
    from mqlab.config import load_config
    from mqlab.services._runtime import journal_for
    from mqlab.services.options import ServiceOptions

    config = load_config(args)
    if config is None:
        return 2
    options = ServiceOptions.from_args(config, args)
    return serve(args, lambda bus: build(bus, options, journal_for(args.state_dir, name)))
