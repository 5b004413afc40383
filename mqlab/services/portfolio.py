"""Portfolio / reporter service (组合服务): fills and prices in; equity curve, report, plot out.

It consumes the exchange's fills and step markers and the market prices it subscribes to,
and feeds a :class:`mqlab.portfolio.Portfolio` in the backtest's order: step N's fills (the
marker lists them, in order), then the mark to market at event N. ``Portfolio.on_fill`` is
idempotent on fill ids and the bus drops redelivered ids before that, so a fill is never
booked twice. At the end of the data it writes ``report.json``, ``fills.csv`` and
``equity.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from mqlab.broker.routing import topic_match
from mqlab.bus import Bus, Delivery, Reject
from mqlab.events import Fill, Kline, OrderBook, Trade, decode
from mqlab.portfolio import Portfolio
from mqlab.services._runtime import EngineService, Journal, add_common_arguments
from mqlab.services.protocol import (
    EXCHANGE_STEP,
    EXECUTION,
    HEADER_SEQ,
    MARKET,
    header_int,
    parse_control,
)

__all__ = ["PortfolioService", "add_arguments", "run", "write_report"]


class PortfolioService(EngineService):
    """Book fills and mark to the market events matching ``patterns``."""

    name = "portfolio"

    def __init__(
        self,
        bus: Bus,
        portfolio: Portfolio,
        journal: Journal | None = None,
        *,
        patterns: Sequence[str] = ("#",),
        out: Path | None = None,
        title: str = "pipeline",
    ) -> None:
        self.portfolio = portfolio
        self.patterns = list(patterns)
        self.out = out
        self.title = title
        self.step = 0
        self.markers: dict[int, dict[str, Any]] = {}
        self.fills: dict[str, Fill] = {}
        self.market: dict[int, dict[str, Any]] = {}
        self.stop_after: int | None = None
        self.ended = False
        self._stop_kind = ""
        super().__init__(bus, journal)

    def subscribed(self, key: str) -> bool:
        return any(topic_match(pattern, key) for pattern in self.patterns)

    def store(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind == "market":
            self.market[record["seq"]] = record
        elif kind == "fill":
            fill = decode(record["body"])
            assert isinstance(fill, Fill)
            self.fills[fill.id] = fill
        elif kind == "step":
            self.markers[record["seq"]] = record
        else:
            self.stop_after, self._stop_kind = record["after"], kind

    def engine(self) -> Generator[None, None, None]:
        yield
        seq = 1
        while True:
            while (marker := self.markers.pop(seq, None)) is None:
                if self.stop_after is not None and seq > self.stop_after:
                    self.stop_after = None
                    if self._stop_kind == "end":
                        self.ended = True
                        return
                    self.on_pause()
                yield
            for fill_id in marker["fills"]:
                while (fill := self.fills.pop(fill_id, None)) is None:
                    yield
                self.portfolio.on_fill(fill)
            if self.subscribed(marker["key"]):
                while (market := self.market.pop(seq, None)) is None:
                    yield
                event = decode(market["body"])
                assert isinstance(event, Kline | OrderBook | Trade)
                self.portfolio.on_market(event)
            self.step = seq
            seq += 1

    async def on_market(self, delivery: Delivery) -> None:
        event = decode(delivery.body)  # the body first: its error says most about a bad message
        if not isinstance(event, Kline | OrderBook | Trade):
            raise Reject(f"not market data: a {type(event).__name__} on {MARKET}")
        seq = header_int(delivery, HEADER_SEQ)
        record = {"id": delivery.message_id or event.id, "kind": "market", "seq": seq}
        await self.commit(record | {"body": delivery.body.decode()})

    async def on_execution(self, delivery: Delivery) -> None:
        if delivery.type in ("step", "end", "pause"):
            data = parse_control(delivery.body, kind=str)
            record: dict[str, Any] = {"id": delivery.message_id, "kind": data["kind"]}
            if data["kind"] == "step":
                parse_control(delivery.body, seq=int, key=str, fills=list)
                record |= {"seq": data["seq"], "key": data["key"]}
                record["fills"] = [str(f) for f in data["fills"]]
            else:
                record["after"] = parse_control(delivery.body, after=int)["after"]
            await self.commit(record)
            return
        fill = decode(delivery.body)
        if not isinstance(fill, Fill):
            raise Reject(f"not a fill: a {type(fill).__name__}")
        await self.commit(
            {"id": delivery.message_id or fill.id, "kind": "fill", "body": delivery.body.decode()}
        )

    async def subscribe(self) -> None:
        await self.bus.subscribe(
            "portfolio.execution",
            [(EXECUTION, EXCHANGE_STEP), (EXECUTION, "fill.#")],
            self.on_execution,
            seen=self.applied,
        )
        await self.bus.subscribe(
            "portfolio.market",
            [(MARKET, p) for p in self.patterns],
            self.on_market,
            seen=self.applied,
        )

    async def run(self) -> int:
        code = await super().run()
        if self.ended and self.out is not None:
            write_report(self.portfolio, self.out, title=self.title, extra=self.stats())
        return code

    def summary(self) -> str:
        p = self.portfolio
        report = f"; report in {self.out}" if self.ended and self.out is not None else ""
        pnl = p.equity() - p.initial
        return f"{len(p.fills)} fills booked, PnL {pnl:.2f} {p.quote} at step {self.step}{report}"

    def stats(self) -> dict[str, Any]:
        p = self.portfolio
        return super().stats() | {
            "step": self.step,
            "ended": self.ended,
            "fills": len(p.fills),
            "duplicates": p.duplicates,
            "equity": format(p.equity(), "f"),
            "pnl": format(p.equity() - p.initial, "f"),
        }


def write_report(
    portfolio: Portfolio, out: Path, *, title: str, extra: dict[str, Any] | None = None
) -> dict[str, Path]:
    """``report.json`` (stats), ``fills.csv`` and ``equity.png`` in ``out``; returns the paths."""
    from matplotlib.figure import Figure

    from mqlab.backtest import plot_equity

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out / "report.json",
        "fills": out / "fills.csv",
        "equity": out / "equity.png",
    }
    stats = portfolio.stats().to_dict() | (extra or {})
    paths["report"].write_text(json.dumps(stats, indent=1, default=str))
    rows = ["id,order_id,ts,side,qty,price,fee"]
    rows += [
        f"{f.id},{f.order_id},{f.ts},{f.side.value},{f.qty:f},{f.price:f},{f.fee:f}"
        for f in portfolio.fills
    ]
    paths["fills"].write_text("\n".join(rows) + "\n")
    # A Figure of its own, not pyplot: this may run inside a notebook's kernel.
    figure = Figure(figsize=(9, 4))
    plot_equity({"equity": portfolio.equity_curve()}, title=title, ax=figure.subplots())
    figure.savefig(paths["equity"], dpi=110, bbox_inches="tight")
    return paths


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.services.config import add_config_arguments

    add_common_arguments(parser)
    add_config_arguments(parser)
    parser.add_argument(
        "--subscribe", nargs="+", metavar="PATTERN", help="price keys (default: all in the data)"
    )
    parser.add_argument("--out", type=Path, help="write report.json, fills.csv, equity.png here")


def run(args: argparse.Namespace) -> int:
    from mqlab.services import load_config, serve
    from mqlab.services._runtime import journal_for

    config = load_config(args)
    if config is None:
        return 2

    def build(bus: Bus) -> PortfolioService:
        return PortfolioService(
            bus,
            config.make_portfolio(),
            journal_for(args.state_dir, "portfolio"),
            patterns=args.subscribe or config.market_keys,
            out=args.out,
            title=f"{config.strategy_id} over the bus on {config.label}",
        )

    return serve(args, build)
