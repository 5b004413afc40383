"""Reference solutions for chapter 10 (checked by :mod:`mqlab.exercises.ch10`)."""

from __future__ import annotations

from decimal import Decimal

from mqlab.bus import Delivery, Reject
from mqlab.events import Order, Side, decode
from mqlab.exercises.ch10 import MAX_QTY

__all__ = ["handle_order", "risk_check"]


def risk_check(order: Order, exposure: Decimal, limit: Decimal) -> str | None:
    """Refuse an order whose fill would take the net position beyond ``±limit``."""
    after = exposure + (order.qty if order.side is Side.BUY else -order.qty)
    if abs(after) > limit:
        return f"position {after} would exceed the limit of ±{limit}"
    return None


async def handle_order(delivery: Delivery, accepted: list[Order]) -> None:
    """Keep valid orders up to MAX_QTY; anything else raises, so the bus dead-letters it."""
    event = decode(delivery.body)  # a malformed body raises EventDecodeError: DLQ, with why
    if not isinstance(event, Order):
        raise Reject(f"not an order but a {type(event).__name__}")
    if event.qty > MAX_QTY:
        raise Reject(f"qty {event.qty} is above the {MAX_QTY} per-order limit")
    accepted.append(event)
