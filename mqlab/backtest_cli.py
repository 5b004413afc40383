"""``python -m mqlab backtest``: a strategy through the event-driven backtest, from the
command line (``--replay`` re-runs a recorded paper session instead).

The command sits above the library it drives (:mod:`mqlab.backtest`, :mod:`mqlab.bars`,
:mod:`mqlab.venue`, and :mod:`mqlab.live.replay` for ``--replay``), so that the backtest
itself imports nothing above the engine.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqlab.backtest import Backtest, BacktestResult, plot_equity
from mqlab.venue import Latency, SimulatedExchange

if TYPE_CHECKING:
    from mqlab.bars import Bars
    from mqlab.events import MarketEvent

__all__ = ["add_arguments", "exchange_label", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.config import amount_arg
    from mqlab.market import SAMPLE_DATA
    from mqlab.strategies import STRATEGIES

    data = parser.add_argument_group("data")
    data.add_argument(
        "--data",
        type=Path,
        default=None,
        help="bars: a Binance kline CSV or .zip, a CSV with a header (Date,Open,High,Low,Close"
        f",Volume, any case), or .parquet (default: the bundled {SAMPLE_DATA.name})",
    )
    data.add_argument("--symbol", default=None, help="symbol of the bars (default: file name)")
    data.add_argument(
        "--interval", default=None, help="bar interval, e.g. 1m, 1h, 1d (default: from the data)"
    )
    data.add_argument(
        "--quote",
        default=None,
        help="quote currency, e.g. USD (default: from a symbol like BTCUSDT, else USD)",
    )
    parser.add_argument(
        "--strategy",
        default="sma_cross",
        metavar="NAME|FILE.py:CLASS|MODULE:CLASS",
        help=f"strategy to run: {', '.join(sorted(STRATEGIES))}, or your own Strategy subclass"
        " (default: sma_cross)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="strategy parameter, e.g. --param fast=5 (repeatable)",
    )
    venue = parser.add_argument_group("venue")
    venue.add_argument(
        "--cash", type=amount_arg, default="10000", help="starting cash in quote (default: 10000)"
    )
    venue.add_argument(
        "--fee", type=amount_arg, default="0.001", help="taker fee rate (default: 0.001 = 0.1 %%)"
    )
    venue.add_argument(
        "--latency-ms", type=_latency_ms, default=0, help="order latency in ms (>= 0; default 0)"
    )
    venue.add_argument(
        "--venue",
        choices=("spot", "margin"),
        default="spot",
        help="spot (default: long only) or margin (shorts, --leverage cap, liquidation)",
    )
    venue.add_argument(
        "--leverage",
        type=amount_arg,
        default="1",
        help="margin venue: gross exposure cap (x equity)",
    )
    venue.add_argument(
        "--maintenance",
        type=amount_arg,
        default="0.05",
        help="margin venue: liquidate when equity < this x gross exposure (default: 0.05)",
    )
    venue.add_argument(
        "--lot-size",
        type=amount_arg,
        default="0.00001",
        help="quantity step: 1 trades whole shares only (default: 0.00001)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--plot", type=Path, default=None, help="write the equity curve PNG here")
    parser.add_argument(
        "--replay",
        type=Path,
        default=None,
        metavar="SESSION",
        help="re-run a recorded paper session (python -m mqlab paper) offline and check it "
        "gives the same fills and PnL (the other options then come from the session)",
    )


def _latency_ms(text: str) -> int:
    """``--latency-ms``: a whole number of milliseconds, not negative (orders cannot go back)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of milliseconds >= 0 (e.g. 50), got {text!r}"
        )
    return value


def _save_plot(result: BacktestResult, path: Path, title: str) -> Path:
    """Write the equity curve PNG; tell the user where it went, and which folders were made."""
    import matplotlib

    matplotlib.use("Agg")
    missing = [p for p in reversed(path.absolute().parents) if not p.exists()]
    plot_equity(result, path, title=title)
    where = path.resolve()
    made = f" (created the folder {missing[0]})" if missing else ""
    print(f"equity curve written to {where}{made}", file=sys.stderr)
    return where


def _venue(args: argparse.Namespace, quote: str) -> SimulatedExchange:
    from mqlab.venue import MarginExchange

    options: dict[str, Any] = {
        "taker_fee": args.fee,
        "latency": Latency(args.latency_ms),
        "quote": quote,
    }
    if args.lot_size <= 0:
        raise ValueError("--lot-size must be > 0")
    options["lot_size"] = args.lot_size
    if args.venue == "margin":
        return MarginExchange(
            {quote: args.cash}, leverage=args.leverage, maintenance=args.maintenance, **options
        )
    return SimulatedExchange({quote: args.cash}, **options)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "replay", None) is not None:  # a recorded paper session: mqlab.live.replay
        from mqlab.live.replay import run_replay

        return run_replay(args.replay, args.json)
    from mqlab.bars import load_bars
    from mqlab.market import SAMPLE_DATA, DataError, synthetic_book_events
    from mqlab.strategies import split_params, strategy_class, typed_params

    bars: Bars | None = None
    try:
        cls = strategy_class(args.strategy)
        strategy = cls(**typed_params(cls, split_params(args.param)))
        if args.strategy == "imbalance":
            if args.data is not None:
                raise DataError(
                    "the imbalance strategy needs order-book data, which kline files lack; "
                    "leave --data out to use synthetic order books"
                )
            source: Sequence[MarketEvent] = synthetic_book_events(3000)
            label, quote = "synthetic order books (3000 snapshots)", args.quote or "USDT"
        else:
            bars = load_bars(
                args.data or SAMPLE_DATA,
                symbol=args.symbol,
                interval=args.interval,
                quote=args.quote,
            )
            source, label, quote = bars, bars.label, bars.quote
        exchange = _venue(args, quote)
        result = Backtest(
            strategy,
            source,
            cash=args.cash,
            quote=quote,
            exchange=exchange,
            progress=not args.json,
            total=len(source),
        ).run()
    except (DataError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = result.report(interval=bars.interval if bars is not None else None)
    summary = result.summary()
    info: dict[str, Any] = {
        "data": label,
        "strategy": f"{strategy.name} ({type(strategy).__name__})",
        "venue": exchange_label(exchange),
        "events": result.events,
        "orders_sent": summary["orders_sent"],
        "rejected": summary["rejected"],
        "first_rejection": summary["first_rejection"],
    }
    if args.plot is not None:
        _save_plot(result, args.plot, title=f"{strategy.name} on {label}")
        info["plot"] = str(args.plot)
    if args.json:
        # Ratios are floats: give them to a sensible precision, not to the last binary digit.
        out = {
            k: round(v, 6) if isinstance(v, float) else v
            for k, v in {**info, **report.to_dict()}.items()
        }
        out["elapsed_s"] = round(result.elapsed, 4)
        print(json.dumps(out, indent=2))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    print()
    print(report.table())
    return 0


def exchange_label(exchange: SimulatedExchange) -> str:
    """``spot, fee 0.001, lot 0.00001`` or ``margin 2x, maintenance 0.05, ...``: for titles."""
    from mqlab.venue import MarginExchange

    rules = f"taker fee {exchange.taker_fee:f}, lot {exchange.lot_size:f}"
    if isinstance(exchange, MarginExchange):
        return f"margin {exchange.leverage:f}x, maintenance {exchange.maintenance:f}, {rules}"
    return f"spot, {rules}"
