"""``python -m mqlab pipeline``: the arguments, the run, and the printed summary."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
from decimal import Decimal
from pathlib import Path

from mqlab.config import RunConfig, add_config_arguments
from mqlab.connection import InvalidURLError, NoBrokerError, resolve_url
from mqlab.ha import add_queue_type_argument, apply_queue_type
from mqlab.loop import run as run_loop
from mqlab.pipeline.embedded import embedded_broker
from mqlab.pipeline.processes import ServiceFailed
from mqlab.pipeline.result import PipelineResult
from mqlab.pipeline.runner import Pipeline
from mqlab.pipeline.session import PipelineInterrupted, run_pipeline
from mqlab.pipeline.state import resumable
from mqlab.services.protocol import DEFAULT_WINDOW
from mqlab.services.risk import load_check

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.config import positive_int

    parser.epilog = (
        "examples: python -m mqlab pipeline  |  ... --processes  |  "
        "... --url amqp://guest:guest@127.0.0.1:5672/  |  ... --json --limit 500"
    )
    parser.add_argument(
        "--url",
        help="AMQP URL of a broker, e.g. amqp://guest:guest@127.0.0.1:5672/, or of a "
        "cluster's nodes, comma-separated, to fail over between them (default: "
        "$MQLAB_AMQP_URL, else an embedded broker started for this run)",
    )
    add_queue_type_argument(parser)
    parser.add_argument(
        "--processes", action="store_true", help="run each service as its own OS process"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/pipeline"),
        help="where the report, plots and the services' journals go; running again with the "
        "same --out resumes an unfinished run (default: out/pipeline)",
    )
    parser.add_argument(
        "--window",
        type=positive_int,
        default=DEFAULT_WINDOW,
        help=f"market steps in flight (default: {DEFAULT_WINDOW})",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        help="market events per message, at most --window (default: 1, one event per "
        "message, as aioquant publishes them)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay speed: 0 as fast as possible (default), 1 real time",
    )
    parser.add_argument("--fresh", action="store_true", help="do not resume an unfinished run")
    parser.add_argument(
        "--risk",
        metavar="MODULE:FUNCTION",
        help="add a risk service with this check between strategy and exchange "
        "(see python -m mqlab risk --help); needs --position-limit",
    )
    parser.add_argument(
        "--position-limit", metavar="QTY", default="0", help="the risk check's position limit"
    )
    parser.add_argument(
        "--delete",
        metavar="PREFIX",
        help="delete the exchanges and queues named PREFIX.* from the broker at --url (a run "
        "started by hand, service by service, with --prefix PREFIX), then exit",
    )
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from mqlab.bus import BusError
    from mqlab.config import load_config

    apply_queue_type(args)  # every bus of the run, and the --processes children, use it
    config = load_config(args)
    if config is None:
        return 2
    if args.batch > args.window:
        print(
            f"error: --batch {args.batch} is more than --window {args.window}: a message "
            "cannot hold more events than may be in flight; raise --window",
            file=sys.stderr,
        )
        return 2
    limit = Decimal(0)
    if args.risk is not None:
        try:
            load_check(args.risk)
            limit = Decimal(args.position_limit)
        except (ValueError, ArithmeticError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.delete is not None:
        return _delete(args, config)
    with contextlib.ExitStack() as stack:

        def own_broker() -> str:
            # Our own embedded broker, persistent next to the journals: even a run that was
            # killed (not paused) resumes with nothing lost. A new run starts a new broker.
            data = args.out / "broker"
            key = f"embedded broker with data in {data.resolve()}"
            if args.fresh or not resumable(args.out / "state", config, key):
                shutil.rmtree(data, ignore_errors=True)
            return stack.enter_context(embedded_broker(data))

        try:
            url = resolve_url(args.url, fallback=own_broker, given_as="--url").url
        except InvalidURLError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            result = run_loop(
                run_pipeline(
                    config,
                    url=url,
                    out=args.out,
                    processes=args.processes,
                    window=args.window,
                    batch=args.batch,
                    speed=args.speed,
                    progress=not args.json and sys.stderr.isatty(),
                    fresh=args.fresh,
                    risk=args.risk,
                    limit=limit,
                )
            )
        except PipelineInterrupted as exc:
            print(exc, file=sys.stderr)
            return 130
        except (ServiceFailed, BusError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        _print_summary(result)
    return 0 if result.complete else 130


def _delete(args: argparse.Namespace, config: RunConfig) -> int:
    from mqlab.bus import BusError

    try:
        url = resolve_url(args.url, fallback=None, given_as="--url").url
    except (NoBrokerError, InvalidURLError) as exc:
        print(f"error: --delete needs the broker: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(Pipeline(config, url, prefix=args.delete).delete_topology())
    except BusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"deleted the exchanges and queues of {args.delete}.* (those that existed)")
    return 0


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _print_summary(result: PipelineResult) -> None:
    s = result.summary()
    lines = [
        f"pipeline: {s['strategy']} on {s['data']}, {s['mode']}, {result.broker_label} "
        f"({s['broker'].removeprefix('embedded ')})",
        f"  events             {s['events']}",
        f"  orders             {s['orders']}",
        f"  fills              {s['fills']}",
        f"  final PnL          {Decimal(s['final_pnl']):.2f} USDT (equity {s['final_equity']})",
        f"  events/s           {s['events_per_s']:.0f}  ({s['elapsed_s']:.1f} s)",
        f"  event→order        p50 {_ms(s['latency_ms_p50'])}, p99 {_ms(s['latency_ms_p99'])}"
        " (market publish → order at the exchange service)",
        f"  duplicates dropped {s['duplicates_dropped']}   dead-lettered {s['dead_lettered']}",
    ]
    risk = result.stats.get("risk")
    if risk:
        lines.append(
            f"  risk service       {risk['passed']} orders passed, {risk['refused']} refused"
        )
    if s["same_as_backtest"] is not None:
        lines.append(f"  same fills and PnL as the in-process backtest: {s['same_as_backtest']}")
    elif risk is not None:
        lines.append("  (no parity check: the backtest has no risk service)")
    if not result.complete:
        lines.append("  paused (Ctrl-C): run the same command again to resume")
    for name, path in s["paths"].items():
        lines.append(f"  {name}: {path}")
    print("\n".join(lines))
