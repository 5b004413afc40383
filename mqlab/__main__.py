"""``python -m mqlab COMMAND ...``: one entry point for the broker, backtest and pipeline.

Each command lives in its own module, which exposes ``add_arguments(parser)`` and
``run(args) -> int``; only the chosen module is imported, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "broker": ("mqlab.broker.cli", "run the embedded AMQP 0-9-1 broker"),
    "backtest": ("mqlab.backtest_cli", "run a strategy through the event-driven backtest"),
    "paper": ("mqlab.live.paper", "paper-trade a strategy on a live (or local) Binance stream"),
    "fake-binance": ("mqlab.live.fakeserver", "a local server speaking Binance's stream format"),
    "pipeline": ("mqlab.pipeline", "run market -> strategy -> exchange -> portfolio over the bus"),
    "cluster": ("mqlab.cluster", "start, stop or show a 3-node RabbitMQ cluster on 127.0.0.1"),
    "market": ("mqlab.services.market", "market data service alone"),
    "strategy": ("mqlab.services.strategy_host", "strategy host alone"),
    "exchange": ("mqlab.services.exchange", "simulated exchange service alone"),
    "portfolio": ("mqlab.services.portfolio", "portfolio / reporter service alone"),
    "risk": ("mqlab.services.risk", "pre-trade risk service alone (between strategy and exchange)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    top = argparse.ArgumentParser(
        prog="python -m mqlab",
        description="One entry point for the broker, backtest, pipeline and its services.",
    )
    top.add_argument(
        "command", choices=COMMANDS, help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items())
    )
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        top.parse_args(argv or ["--help"])
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"python -m mqlab {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(rest)) or 0)


if __name__ == "__main__":
    sys.exit(main())
