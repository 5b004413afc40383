"""Pre-trade risk service (风控): checks every order between the strategy host and the exchange.

Adding a service to an event-driven system means adding a hop, not editing the others: the
strategy host still publishes to ``orders``; the risk service consumes them, and republishes
to ``checked`` what passes, which is where the exchange service then reads (see
:class:`~mqlab.pipeline.Pipeline` ``risk=``). An order that fails the check goes on as a
``risk_reject`` carrying the reason, and the exchange answers it with a REJECTED order update,
so the strategy learns why, on the same path as any other rejection. ``done`` messages pass
through unchanged, so the step protocol is untouched.

The check is any function ``check(order, exposure, limit) -> reason | None``; ``exposure``
is the net quantity of the orders passed so far (buys minus sells), i.e. the position if
they all fill: a conservative, deterministic view that does not wait for fills.

Alone: ``python -m mqlab risk --url ... --check mymodule:risk_check --position-limit 0.3``,
with ``--risk`` given to the exchange service (it then reads ``checked``) and to the market
service (it then also waits for this service's queue). Chapter 10's exercise 10.1 writes
such a check.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mqlab.bus import Bus, Delivery, Reject
from mqlab.events import ZERO, Cancel, Order, Side, decode
from mqlab.services._runtime import (
    Journal,
    Outgoing,
    Service,
    add_common_arguments,
    journal_for,
)
from mqlab.services.protocol import (
    CHECKED,
    EXCHANGE_END,
    EXECUTION,
    ORDERS,
    parse_control,
    parse_done,
)

__all__ = [
    "HEADER_RISK_REASON",
    "RiskCheck",
    "RiskService",
    "add_arguments",
    "load_check",
    "run",
]

#: Header of a ``risk_reject`` message: why the order was refused.
HEADER_RISK_REASON = "x-mqlab-risk-reason"

#: ``check(order, exposure, limit)`` returns why the order must be refused, or None.
RiskCheck = Callable[[Order, Decimal, Decimal], "str | None"]


class RiskService(Service):
    """Pass or refuse each order with ``check``; keep the net exposure of what passed."""

    name = "risk"

    def __init__(
        self,
        bus: Bus,
        check: RiskCheck,
        limit: Decimal | str,
        journal: Journal | None = None,
    ) -> None:
        super().__init__(bus, journal)
        self.check = check
        self.limit = Decimal(limit)
        self.exposure: dict[str, Decimal] = {}  # symbol -> net quantity passed
        self.passed = 0
        self.refused: dict[str, str] = {}  # order id -> reason

    def apply(self, record: dict[str, Any]) -> list[Outgoing]:
        headers = record["headers"]
        if record["kind"] == "done":
            return [Outgoing(CHECKED, record["key"], record["body"].encode(), record["id"],
                             headers, "done")]  # fmt: skip
        request = decode(record["body"])
        body = record["body"].encode()
        if isinstance(request, Cancel):
            return [Outgoing(CHECKED, record["key"], body, record["id"], headers, "cancel")]
        assert isinstance(request, Order)
        exposure = self.exposure.get(request.symbol, ZERO)
        reason = self.check(request, exposure, self.limit)
        if reason is None:
            signed = request.qty if request.side is Side.BUY else -request.qty
            self.exposure[request.symbol] = exposure + signed
            self.passed += 1
            return [Outgoing(CHECKED, record["key"], body, record["id"], headers, "order")]
        if not isinstance(reason, str) or not reason:
            raise TypeError(f"a risk check returns a reason (str) or None, not {reason!r}")
        self.refused[request.id] = reason
        headers = headers | {HEADER_RISK_REASON: reason}
        return [Outgoing(CHECKED, record["key"], body, record["id"], headers, "risk_reject")]

    async def on_orders(self, delivery: Delivery) -> None:
        record = {
            "id": delivery.message_id,
            "key": delivery.routing_key,
            "body": delivery.body.decode(),
            "headers": dict(delivery.headers),
        }
        if delivery.type == "done":
            parse_done(delivery.body)
            await self.commit(record | {"kind": "done"})
            return
        request = decode(delivery.body)
        if not isinstance(request, Order | Cancel):
            raise Reject(f"not an order or cancel: a {type(request).__name__}")
        await self.commit(record | {"kind": "request", "id": delivery.message_id or request.id})

    async def on_control(self, delivery: Delivery) -> None:
        # The exchange ends (or pauses) only after every order reached it through us.
        if parse_control(delivery.body, kind=str)["kind"] in ("end", "pause"):
            self.finished.set()

    async def run(self) -> int:
        await self.recover()
        await self.bus.subscribe("risk.orders", [(ORDERS, "#")], self.on_orders, seen=self.applied)
        await self.bus.subscribe("risk.control", [(EXECUTION, EXCHANGE_END)], self.on_control)
        await self.until_done()
        return 0

    def summary(self) -> str:
        return f"{self.passed} orders passed, {len(self.refused)} refused (limit ±{self.limit})"

    def stats(self) -> dict[str, Any]:
        return super().stats() | {"passed": self.passed, "refused": len(self.refused)}


def load_check(spec: str) -> RiskCheck:
    """``"package.module:function"`` → that function; ValueError says what is wrong."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(
            f"--check {spec!r}: write MODULE:FUNCTION, e.g. --check my_risk:risk_check "
            "(my_risk.py in the current directory, or any importable module)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"--check {spec!r}: cannot import {module_name!r} ({exc}); run from the directory "
            "that holds it, or add that directory to PYTHONPATH"
        ) from None
    check = getattr(module, attribute, None)
    if not callable(check):
        raise ValueError(f"--check {spec!r}: {module_name} has no function {attribute!r}")
    return check  # type: ignore[no-any-return]


def _limit(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a quantity >= 0 (e.g. 0.3), got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.config import add_config_arguments

    add_common_arguments(parser)
    parser.add_argument(
        "--check",
        required=True,
        metavar="MODULE:FUNCTION",
        help="the check: check(order, exposure, limit) returns None to pass the order or a "
        "reason (str) to refuse it, e.g. my_risk:risk_check",
    )
    parser.add_argument(
        "--position-limit",
        type=_limit,
        required=True,
        metavar="QTY",
        help="the limit handed to the check, in the base asset (e.g. 0.3 BTC)",
    )
    parser.add_argument("--out", type=Path, help="write risk.json (counters) here")
    add_config_arguments(parser)  # accepted (unused) so every host can share one command line


def run(args: argparse.Namespace) -> int:
    import sys

    from mqlab.services import serve

    try:
        check = load_check(args.check)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def build(bus: Bus) -> RiskService:
        return RiskService(bus, check, args.position_limit, journal_for(args.state_dir, "risk"))

    return serve(args, build)
