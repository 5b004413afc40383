"""``python -m mqlab broker``: run the embedded broker standalone until Ctrl+C.

It prints its URL (password masked); point any AMQP 0-9-1 client at it, e.g.
``MQLAB_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ python hello.py``.

Users, as in RabbitMQ: ``guest``/``guest`` may log in from loopback only. ``--user NAME``
replaces it with a user whose password comes from ``--password-file`` or the
``MQLAB_BROKER_PASSWORD`` environment variable, never from the command line (where ``ps``
shows it) and never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import sys
from pathlib import Path

from mqlab.loop import run as run_loop

__all__ = ["PASSWORD_ENV", "add_arguments", "parse_size", "run"]

PASSWORD_ENV = "MQLAB_BROKER_PASSWORD"
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9}
_UNITS |= {"kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(text: str) -> int | None:
    """``"256MiB"``, ``"1GB"``, ``"1048576"`` → bytes; ``"none"`` → None (no limit).

    A fraction below 1 (``"0.4"``) is that share of the machine's RAM, as RabbitMQ's
    ``vm_memory_high_watermark.relative``.
    """
    value = text.strip().lower()
    if value in ("none", "off", "unlimited"):
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?", value)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a size: use e.g. 256MiB, 1GB, 0.4 (of RAM) or none"
        )
    number, unit = float(match.group(1)), match.group(2) or ""
    if 0 < number < 1 and not unit:
        import psutil

        return int(number * psutil.virtual_memory().total)
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the size must be positive")
    return size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.broker.server import DEFAULT_MEMORY_LIMIT

    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=5672, help="TCP port, 0 for any (5672)")
    parser.add_argument(
        "--data-dir", default=None, help="keep durable queues and persistent messages here"
    )
    parser.add_argument(
        "--user",
        default=None,
        help="the one login user instead of guest (which works from loopback only); its "
        f"password comes from --password-file or ${PASSWORD_ENV}",
    )
    parser.add_argument(
        "--password-file", type=Path, default=None, help="file holding the --user password"
    )
    # Not an option any more, but named so argparse does not read it as --password-file.
    parser.add_argument("--password", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--memory-limit",
        type=parse_size,
        default=DEFAULT_MEMORY_LIMIT,
        help="memory high watermark: publishers are blocked while the messages held exceed "
        f"it (default {DEFAULT_MEMORY_LIMIT >> 20}MiB; e.g. 64MiB, 0.4 of RAM, none)",
    )
    parser.add_argument("--trace", action="store_true", help="print every frame in and out")
    parser.add_argument("-v", "--verbose", action="store_true", help="log connections")


def _users(args: argparse.Namespace) -> dict[str, str]:
    """The login users; exits with a one-line message when a password is missing."""
    if args.password is not None:
        raise SystemExit(
            "error: --password is not accepted (ps would show it to every user): use "
            f"--password-file PATH or ${PASSWORD_ENV}"
        )
    if args.user is None:
        if args.password_file is not None:
            raise SystemExit("error: --password-file needs --user")
        return {"guest": "guest"}
    if args.password_file is not None:
        try:
            password = args.password_file.read_text().strip("\r\n")
        except OSError as exc:
            raise SystemExit(f"error: cannot read --password-file: {exc.strerror}") from None
    else:
        password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise SystemExit(
            f"error: --user {args.user} needs a password: --password-file PATH or ${PASSWORD_ENV}"
        )
    return {args.user: password}


def run(args: argparse.Namespace) -> int:
    from mqlab.broker import Broker

    users = _users(args)
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
        users=users,
        trace=trace,
        memory_limit=args.memory_limit,
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
        limit = (
            "no memory limit"
            if args.memory_limit is None
            else (f"memory limit {args.memory_limit / 2**20:.0f} MiB")
        )
        print(
            f"mqlab broker listening on {broker.display_url}{where}, {limit}; Ctrl+C stops it",
            flush=True,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await broker.stop()

    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve())
    return 0
