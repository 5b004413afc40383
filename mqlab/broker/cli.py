"""``python -m mqlab broker``: run the embedded broker standalone until Ctrl+C.

It prints its URL; point any AMQP 0-9-1 client at it, e.g.
``MQLAB_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ python hello.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=5672, help="TCP port, 0 for any (5672)")
    parser.add_argument(
        "--data-dir", default=None, help="keep durable queues and persistent messages here"
    )
    parser.add_argument("--user", default="guest", help="login user (guest)")
    parser.add_argument("--password", default="guest", help="login password (guest)")
    parser.add_argument("--trace", action="store_true", help="print every frame in and out")
    parser.add_argument("-v", "--verbose", action="store_true", help="log connections")


def run(args: argparse.Namespace) -> int:
    from mqlab.broker import Broker

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    trace = None
    if args.trace:
        from mqlab.frametrace import print_frame

        trace = print_frame
    broker = Broker(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        users={args.user: args.password},
        trace=trace,
    )

    async def serve() -> None:
        try:
            await broker.start()
        except OSError as exc:
            print(
                f"cannot listen on {args.host}:{args.port}: {exc.strerror}. Is RabbitMQ (or "
                "another broker) already running there? Try --port 0 for a free port.",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        where = f" (data in {args.data_dir})" if args.data_dir else " (in memory)"
        print(f"mqlab broker listening on {broker.url}{where}; Ctrl+C stops it", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await broker.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
