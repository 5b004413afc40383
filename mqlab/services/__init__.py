"""The pipeline's services: market → strategy host → simulated exchange → portfolio, on a bus.

Each service is a module with ``add_arguments(parser)`` and ``run(args) -> int``, so
``python -m mqlab market|strategy|exchange|portfolio --url amqp://...`` starts one alone (on
another machine, say), and :mod:`mqlab.pipeline` starts all of them together:

* :mod:`~mqlab.services.market`: replays market data as numbered steps;
* :mod:`~mqlab.services.strategy_host`: runs any :class:`~mqlab.strategy.Strategy`;
* :mod:`~mqlab.services.exchange`: the :class:`~mqlab.exchange.SimulatedExchange`;
* :mod:`~mqlab.services.portfolio`: the :class:`~mqlab.portfolio.Portfolio`, report and plots.

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
from typing import Any

from mqlab.bus import Bus
from mqlab.services._runtime import Journal, Outgoing, Service

__all__ = ["Journal", "Outgoing", "Service", "serve", "write_stats"]


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
    """Run one service until it finishes or gets Ctrl-C/SIGTERM; print its counters."""
    url = args.url
    if url is None:
        from mqlab.connection import ENV_URL

        url = os.environ.get(ENV_URL)
        if url is None:
            print(
                "a service alone needs the broker the other services use: pass --url "
                f"amqp://... or set {ENV_URL} (or run them together: python -m mqlab pipeline)",
                file=sys.stderr,
            )
            return 2

    async def main() -> int:
        async with Bus(url, prefix=args.prefix) as bus:
            service = build(bus)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, service.request_stop)
            try:
                await service.run()
            finally:
                write_stats(getattr(args, "out", None), service)
            print(json.dumps({service.name: service.stats()}, default=str))
            return 0

    return asyncio.run(main())
