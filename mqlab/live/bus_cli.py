"""``python -m mqlab paper --url URL`` / ``--processes``: the bus session's command line.

See :mod:`mqlab.live.bus` for the services. This module checks the broker first (one clear
line if it cannot be reached), runs the session in this process or as three OS processes, and
prints the report the in-process ``paper`` command prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from mqlab.live.bus import LiveMarketService, run_bus_session, run_processes
from mqlab.live.source import BinanceSource, LiveSourceError
from mqlab.strategy import Strategy

__all__ = ["run_over_bus"]


def _show(text: str) -> None:
    if not sys.stderr.isatty():  # a log file: whole lines, no carriage returns
        text = text.strip("\r\n") + "\n"
    sys.stderr.write(text)
    sys.stderr.flush()


def run_over_bus(
    args: argparse.Namespace,
    strategy: Strategy,
    source: BinanceSource,
    meta: dict[str, Any],
    record: Path,
) -> int:
    """Run the paper session over the bus; print the report; the exit status."""
    from mqlab.bus import BusError, probe
    from mqlab.connection import broker_url, mask_url

    url = broker_url(args.url)
    try:
        asyncio.run(probe(url))
    except (BusError, ConnectionError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    prefix = f"mqlab-paper-{uuid.uuid4().hex[:8]}"
    mode = "processes" if args.processes else "one process"
    print(
        f"paper trading {meta['strategy']} on {meta['symbol']} {meta['interval']} from "
        f"{args.endpoint} over the bus ({mask_url(url)}, {mode}, prefix {prefix}); recording "
        f"to {record}; Ctrl-C stops",
        file=sys.stderr,
    )
    status = None if args.json else _show
    seconds = None if args.minutes is None else args.minutes * 60
    summary: dict[str, Any]
    if args.processes:
        config = {
            "url": url,
            "prefix": prefix,
            "meta": meta,
            "record": str(record),
            "status": status is not None,
            "bars": args.bars,
            "seconds": seconds,
            "source": {
                "symbol": args.symbol,
                "interval": args.interval,
                "trades": args.trades,
                "book": None if args.book == "none" else args.book,
                "endpoint": args.endpoint,
                "in_progress": args.in_progress,
                "retries": args.retries,
                "first_data_timeout": args.first_data_timeout,
            },
        }
        work = Path(tempfile.mkdtemp(prefix="mqlab-paper-"))
        code, result = run_processes(config, work)
        asyncio.run(_delete_topology(url, prefix))
        if result is None:
            return code
        summary = result["summary"]
        latencies, notices = result["latencies_ms"], result["notices"]
    else:

        def on_market(market: LiveMarketService) -> None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signal.SIGINT, market.stop)
                loop.add_signal_handler(signal.SIGTERM, market.stop)

        try:
            done = asyncio.run(
                run_bus_session(
                    url,
                    strategy,
                    source,
                    meta,
                    record,
                    prefix=prefix,
                    max_bars=args.bars,
                    seconds=seconds,
                    status=status,
                    on_market=on_market,
                )
            )
        except LiveSourceError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 1
        summary, latencies, notices = done.summary, done.latencies_ms, done.notices
    lat = sorted(latencies)
    report = {
        "symbol": meta["symbol"],
        "endpoint": args.endpoint,
        "broker": mask_url(url),
        "mode": mode,
        **{k: v for k, v in summary.items() if k != "fills_sha256"},
        "latency_ms_p50": round(lat[len(lat) // 2], 3) if lat else None,
        "notices": len(notices),
        "session": str(record),
        "replay": f"python -m mqlab backtest --replay {record}",
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        sys.stderr.write("\n")
        width = max(map(len, report))
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
    return 0


async def _delete_topology(url: str, prefix: str) -> None:
    from mqlab.bus import Bus
    from mqlab.live.bus import _delete

    async with Bus(url, prefix=prefix) as bus:
        await _delete(bus)
