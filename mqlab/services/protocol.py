"""The pipeline's wire protocol: three topic exchanges, their routing keys, and control messages.

========== ============================================ =====================================
exchange   routing keys                                 published by
========== ============================================ =====================================
market     ``kline.binance.BTCUSDT.1m``,                 market service: one event per step,
           ``orderbook.binance.BTCUSDT``, ``trade...``;  header ``x-seq`` = step number;
           ``control.end``, ``control.pause``            then the end (or a Ctrl-C pause)
orders     ``order.<strategy>.<platform>.<symbol>``,     strategy host: orders and cancels,
           ``done.<strategy>``                           then "done with call k"
execution  ``order_update.<strategy>...``,               simulated exchange: answers
           ``fill.<strategy>...``, ``step.exchange``     (each a call to the strategy), and
                                                         "step N matched" markers
========== ============================================ =====================================

**Calls.** The backtest calls ``strategy.handle(x)`` for each market event and each exchange
answer, in one well-defined order. On the bus, the exchange service runs that same loop, and
each ``handle`` becomes a *call*: the exchange publishes the answer (or the step marker of a
market event) with a call number ``k``, the strategy host handles it, publishes the orders it
caused and then ``done`` for ``k`` listing them, and only then does the exchange go on. Calls
are numbered per strategy, so every consumer can put what it receives back in order even after
a redelivery. This is what makes the bus reproduce the backtest exactly (docs/architecture.md).
"""

from __future__ import annotations

import json
from typing import Any

from mqlab.bus import Delivery
from mqlab.services._runtime import Outgoing

__all__ = [
    "CHECKED",
    "END_KEY",
    "EXCHANGE_STEP",
    "EXECUTION",
    "HEADER_CALL",
    "HEADER_SENT",
    "HEADER_SEQ",
    "MARKET",
    "ORDERS",
    "PAUSE_KEY",
    "control",
    "done_key",
    "header_int",
    "parse_control",
]

MARKET = "market"
ORDERS = "orders"
EXECUTION = "execution"
#: Orders that passed a risk service, when one sits between strategy and exchange.
CHECKED = "checked"

#: Header with the step number of a market event.
HEADER_SEQ = "x-seq"
#: Header with the wall-clock time (ns) the market service published a step's event; orders
#: carry it on, so the exchange can measure event → order latency.
HEADER_SENT = "x-sent-ns"
#: Header with the call number of an exchange answer (per strategy).
HEADER_CALL = "x-call"
#: Routing keys, on the market exchange, of the end of the data and of a Ctrl-C pause.
END_KEY = "control.end"
PAUSE_KEY = "control.pause"
#: Routing key of the exchange service's step markers (on the execution exchange).
EXCHANGE_STEP = "step.exchange"


def done_key(strategy: str) -> str:
    """Routing key of a strategy's "done with call k" messages (on the orders exchange)."""
    return f"done.{strategy}"


def header_int(delivery: Delivery, name: str) -> int:
    """An integer header; a missing or bad one makes the message unprocessable (→ DLQ)."""
    value = delivery.headers.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"header {name!r} must be an integer >= 0, got {value!r}")
    return value


def control(exchange: str, routing_key: str, message_id: str, kind: str, **fields: Any) -> Outgoing:
    """A small JSON control message (step marker, done, end, pause)."""
    body = json.dumps({"kind": kind, **fields}, separators=(",", ":")).encode()
    return Outgoing(exchange, routing_key, body, message_id, {}, type=kind)


def parse_control(body: bytes, **required: type) -> dict[str, Any]:
    """Decode a control message and check its fields' types; ValueError names the bad one."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"control message is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("control message must be a JSON object")
    for name, kind in required.items():
        value = data.get(name)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"control message field {name!r} must be {kind.__name__}")
    return data
