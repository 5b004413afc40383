"""Portfolio / reporter service (组合服务): fills and prices in; equity curve, report, plot out.

It consumes the exchange's fills and progress markers, and feeds a
:class:`mqlab.portfolio.Portfolio` in the backtest's order: step N's fills, then the mark to
market at event N. A progress marker says "matched through step N", lists the fills since the
previous one with their steps, and the price of each step's event, as a venue's account
stream reports mark prices; the portfolio books and marks every step up to N, marking only the
keys it subscribes to. It needs no market queue of its own: one delivery less per event.
``Portfolio.on_fill`` is idempotent on fill ids and the bus drops redelivered ids before that,
so a fill is never booked twice. At the end of the data it writes ``report.json``,
``fills.csv`` and ``equity.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Generator
from decimal import Decimal
from pathlib import Path
from typing import Any

from mqlab.bus import Bus, Delivery, Reject
from mqlab.events import Fill, decode
from mqlab.portfolio import Portfolio
from mqlab.services._runtime import EngineService, Journal
from mqlab.services.options import KeyFilter, ServiceOptions
from mqlab.services.protocol import (
    EXCHANGE_END,
    EXCHANGE_STEP,
    EXECUTION,
    parse_control,
)

__all__ = ["PortfolioService", "add_arguments", "run", "write_report"]


class PortfolioService(EngineService):
    """Book fills and mark to the market events matching the options' patterns."""

    name = "portfolio"

    def __init__(self, bus: Bus, options: ServiceOptions, journal: Journal | None = None) -> None:
        self.portfolio = options.config.make_portfolio()
        self.subscribed = KeyFilter(options.market_patterns)
        self.out = options.out
        self.title = options.title
        self.step = 0
        self.through = 0  # the exchange matched every step up to here
        self.covered: dict[int, int] = {}  # markers not yet joined on: first step -> last
        self.fills_at: dict[int, list[str]] = {}  # step -> fill ids, in delivery order
        self.fills: dict[str, Fill] = {}
        #: step -> (routing key, symbol, ts, price) from the exchange's progress markers
        self.marks: dict[int, list[Any]] = {}
        self.stop: dict[str, Any] | None = None
        self.ended = False
        super().__init__(bus, journal)

    def store(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind == "fill":
            fill = self.event_of(record)
            assert isinstance(fill, Fill)
            self.fills[fill.id] = fill
        else:  # a progress, end or pause marker
            for fill_id, step in record["fills"]:
                self.fills_at.setdefault(step, []).append(fill_id)
            for step, *mark in record["marks"]:
                self.marks[step] = mark
            # Markers may arrive out of order (a publish retried after a reconnect): move on
            # only over steps that every marker so far covers without a hole.
            self.covered[record["since"]] = record["through"]
            while (through := self.covered.pop(self.through + 1, None)) is not None:
                self.through = max(self.through, through)
            if kind != "step":
                self.stop = record

    def engine(self) -> Generator[None, None, None]:
        yield
        seq = 1
        while True:
            while self.through < seq:
                stop = self.stop
                if stop is not None and seq > stop["through"]:
                    self.stop = None
                    if stop["kind"] == "end":
                        yield from self._book(seq)  # answers drained after the last event
                        self.ended = True
                        return
                    self.on_pause()
                yield
            yield from self._book(seq)
            key, symbol, ts, price = self.marks.pop(seq)
            if self.subscribed(key):
                self.portfolio.mark(symbol, ts, Decimal(price))
            self.step = seq
            seq += 1

    def _book(self, seq: int) -> Generator[None, None, None]:
        for fill_id in self.fills_at.pop(seq, ()):
            while (fill := self.fills.pop(fill_id, None)) is None:
                yield
            self.portfolio.on_fill(fill)

    async def on_execution(self, delivery: Delivery) -> None:
        if delivery.type in ("step", "end", "pause"):
            data = parse_control(delivery.body, kind=str, fills=list)
            record: dict[str, Any] = {"id": delivery.message_id, "kind": data["kind"]}
            through = data["seq"] if data["kind"] == "step" else data.get("after")
            marks = data.get("marks", [])
            if (
                not isinstance(through, int)
                or not all(
                    isinstance(f, list) and len(f) == 2 and isinstance(f[1], int)
                    for f in data["fills"]
                )
                or not isinstance(marks, list)
                or not all(_mark_ok(m) for m in marks)
            ):
                raise Reject(f"malformed {data['kind']} marker: {delivery.body[:200]!r}")
            since = data.get("since")
            if not isinstance(since, int) or isinstance(since, bool):
                raise Reject(f"{data['kind']} marker without an integer 'since'")
            record |= {"through": through, "since": since}
            record["fills"] = [[str(i), s] for i, s in data["fills"]]
            record["marks"] = marks
            await self.commit(record)
            return
        fill = decode(delivery.body)
        if not isinstance(fill, Fill):
            raise Reject(f"not a fill: a {type(fill).__name__}")
        record = {"id": delivery.message_id or fill.id, "kind": "fill"}
        self.remember(record["id"], fill)
        await self.commit(record | {"body": delivery.body.decode()})

    async def subscribe(self) -> None:
        await self.bus.subscribe(
            "portfolio.execution",
            [(EXECUTION, EXCHANGE_STEP), (EXECUTION, EXCHANGE_END), (EXECUTION, "fill.#")],
            self.on_execution,
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


def _mark_ok(mark: Any) -> bool:
    """``[step, routing key, symbol, ts, price]`` with the right types and a decimal price."""
    if not (isinstance(mark, list) and len(mark) == 5 and isinstance(mark[0], int)):
        return False
    if not (isinstance(mark[1], str) and isinstance(mark[2], str) and isinstance(mark[3], int)):
        return False
    try:
        return isinstance(mark[4], str) and Decimal(mark[4]).is_finite()
    except ArithmeticError:
        return False


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
    from mqlab.services import add_service_arguments

    add_service_arguments(parser)
    parser.add_argument(
        "--subscribe", nargs="+", metavar="PATTERN", help="price keys (default: all in the data)"
    )
    parser.add_argument("--out", type=Path, help="write report.json, fills.csv, equity.png here")


def run(args: argparse.Namespace) -> int:
    from mqlab.services import run_service

    return run_service(args, "portfolio", PortfolioService)
