"""``python -m mqlab paper --url URL`` / ``--processes``: the bus session's command line.

See :mod:`mqlab.live.bus` for the services and :mod:`mqlab.live.bus_processes` for
``--processes``. This module checks the broker first (one clear line if it cannot be reached),
runs the session in this process or as three OS processes, and prints the report the
in-process ``paper`` command prints.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from mqlab.live.bus import delete_topology, run_bus_session
from mqlab.live.bus_processes import run_processes
from mqlab.live.common import p50, print_report, status_writer, stop_on_signals
from mqlab.live.source import BinanceSource, LiveSourceError
from mqlab.strategy import Strategy

__all__ = ["run_over_bus"]


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
    status = None if args.json else status_writer()
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
        asyncio.run(delete_topology(url, prefix))
        if result is None:
            return code
        summary = result["summary"]
        latencies, notices = result["latencies_ms"], result["notices"]
    else:
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
                    on_market=lambda market: stop_on_signals(market.stop),
                )
            )
        except LiveSourceError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 1
        summary, latencies, notices = done.summary, done.latencies_ms, done.notices
    median = p50(latencies)
    report = {
        "symbol": meta["symbol"],
        "endpoint": args.endpoint,
        "broker": mask_url(url),
        "mode": mode,
        **{k: v for k, v in summary.items() if k != "fills_sha256"},
        "latency_ms_p50": None if median is None else round(median, 3),
        "notices": len(notices),
        "session": str(record),
        "replay": f"python -m mqlab backtest --replay {record}",
    }
    print_report(report, args.json, after_status=True)
    return 0
