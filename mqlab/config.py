"""One run's settings, shared by every service and by the in-process backtest it must match.

``python -m mqlab backtest --strategy sma_cross --cash 10000`` and ``python -m mqlab pipeline
--strategy sma_cross --cash 10000`` build their data, strategy, simulated exchange and
portfolio here the same way, which is what lets the parity test compare them fill for fill.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqlab.backtest import BacktestResult
    from mqlab.events import MarketEvent
    from mqlab.portfolio import Portfolio
    from mqlab.strategy import Strategy
    from mqlab.venue import SimulatedExchange

from mqlab.strategies import parse_params

__all__ = [
    "RunConfig",
    "add_config_arguments",
    "amount",
    "amount_arg",
    "load_config",
    "parse_amount",
    "parse_params",
    "positive_int",
]

#: Order-book snapshots the ``imbalance`` strategy runs on (as in ``python -m mqlab backtest``).
BOOK_EVENTS = 3000


@dataclass(frozen=True)
class RunConfig:
    """What to replay, which strategy, and the exchange's money rules."""

    strategy: str = "sma_cross"
    params: dict[str, Any] = field(default_factory=dict)
    data: Path | None = None
    limit: int | None = None
    cash: str = "10000"
    fee: str = "0.001"
    latency_ms: int = 0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunConfig:
        return cls(
            strategy=args.strategy,
            params=parse_params(args.param, args.strategy),
            data=args.data,
            limit=args.limit,
            cash=args.cash,
            fee=args.fee,
            latency_ms=args.latency_ms,
        )

    def check(self) -> None:
        """Load the data and build the strategy and exchange now, so that a bad ``--data``,
        ``--param``, ``--cash`` or ``--fee`` fails before any broker is contacted.

        Raises :class:`mqlab.market.DataError`, ``ValueError`` or ``TypeError`` naming it.
        """
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {self.limit}")
        for name in ("cash", "fee"):
            amount(getattr(self, name), f"--{name}")
        if not self.events:
            raise ValueError(f"{self.label} holds no market events")
        self.make_strategy()
        self.make_exchange()

    def to_argv(self) -> list[str]:
        """The same settings as command-line arguments, for a service in its own process."""
        argv = ["--strategy", self.strategy, "--cash", self.cash, "--fee", self.fee]
        argv += ["--latency-ms", str(self.latency_ms)]
        for name, value in self.params.items():
            argv += ["--param", f"{name}={value}"]
        if self.data is not None:
            argv += ["--data", str(self.data)]
        if self.limit is not None:
            argv += ["--limit", str(self.limit)]
        return argv

    @cached_property
    def events(self) -> list[MarketEvent]:
        """The market events, in the order the backtest feeds them."""
        from mqlab.market import SAMPLE_DATA, DataError, load_binance_csv, synthetic_book_events

        events: list[MarketEvent]
        if self.strategy == "imbalance":
            if self.data is not None:
                raise DataError(
                    "the imbalance strategy needs order-book data, which kline files lack; "
                    "leave --data out to use synthetic order books"
                )
            events = list(synthetic_book_events(BOOK_EVENTS))
        else:
            events = list(load_binance_csv(self.data or SAMPLE_DATA))
        return events[: self.limit] if self.limit else events

    @property
    def label(self) -> str:
        if self.strategy == "imbalance":
            return f"synthetic order books ({len(self.events)} events)"
        name = (self.data or Path("synthetic_BTCUSDT_1m.csv")).name
        return name + (" (synthetic)" if "synthetic" in name else "")

    @property
    def market_keys(self) -> list[str]:
        """Every routing key in the data: what strategy and portfolio subscribe to by default."""
        from mqlab.events import routing_key

        return sorted({routing_key(e) for e in self.events})

    def make_strategy(self) -> Strategy:
        from mqlab.strategies import make_strategy

        return make_strategy(self.strategy, **self.params)

    @cached_property
    def strategy_id(self) -> str:
        return self.make_strategy().name

    def make_exchange(self) -> SimulatedExchange:
        from mqlab.venue import Latency, SimulatedExchange

        return SimulatedExchange(
            {"USDT": self.cash}, taker_fee=self.fee, latency=Latency(self.latency_ms)
        )

    def make_portfolio(self) -> Portfolio:
        from mqlab.portfolio import Portfolio

        return Portfolio(self.cash, quote="USDT")

    def backtest(self) -> BacktestResult:
        """The in-process reference run the pipeline must reproduce exactly."""
        from mqlab.backtest import Backtest

        return Backtest(
            self.make_strategy(),
            self.events,
            cash=self.cash,
            exchange=self.make_exchange(),
            portfolio=self.make_portfolio(),
        ).run()


def parse_amount(text: str, name: str = "amount") -> Decimal:
    """An exact, finite, non-negative number from text; ``ValueError`` naming ``name`` if not."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name}: expected a number >= 0 (e.g. 10000 or 0.001), got {text!r}")
    return value


def amount(text: str, name: str = "amount") -> str:
    """``text`` if it is a finite number >= 0 (money stays text, parsed as Decimal later)."""
    parse_amount(text, name)
    return text


def amount_arg(text: str) -> Decimal:
    """argparse type: :func:`parse_amount`, its error without the ``amount:`` prefix."""
    try:
        return parse_amount(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("amount: ")) from None


def _amount_text(text: str) -> str:
    return f"{amount_arg(text)}"


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """The run settings, named as in ``python -m mqlab backtest``."""
    from mqlab.strategies import STRATEGIES

    group = parser.add_argument_group(
        "run settings",
        "what to replay and how to trade it; give every service of one run the same ones "
        "(each service builds what it needs from them: the market its data, the strategy "
        "host its strategy, the exchange its fees)",
    )
    group.add_argument("--data", type=Path, help="Binance kline CSV (default: bundled sample)")
    group.add_argument(
        "--limit", type=positive_int, help="replay only the first N events (default: all)"
    )
    group.add_argument(
        "--strategy", default="sma_cross", choices=sorted(STRATEGIES), help="default: sma_cross"
    )
    group.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="strategy parameter, e.g. --param fast=5 (repeatable)",
    )
    group.add_argument(
        "--cash", type=_amount_text, default="10000", help="starting USDT (default: 10000)"
    )
    group.add_argument(
        "--fee", type=_amount_text, default="0.001", help="taker fee rate (default: 0.001)"
    )
    group.add_argument("--latency-ms", type=int, default=0, help="order latency in ms (default: 0)")


def load_config(args: argparse.Namespace) -> RunConfig | None:
    """The run settings in ``args``, checked before any broker is contacted.

    On a bad ``--data``, ``--param``, ``--cash``... prints ``error: ...`` (what is wrong and
    what to do) and returns None; the command then exits with status 2.
    """
    import sys

    from mqlab.market import DataError

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
