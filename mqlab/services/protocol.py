"""The pipeline's wire protocol: three topic exchanges, their routing keys, and control messages.

========== ============================================ =====================================
exchange   routing keys                                 published by
========== ============================================ =====================================
market     ``kline.binance.BTCUSDT.1m``,                 market service: one event per step,
           ``orderbook.binance.BTCUSDT``, ``trade...``;  header ``x-seq`` = step number;
           ``control.end``, ``control.pause``            then the end (or a Ctrl-C pause)
orders     ``order.<strategy>.<platform>.<symbol>``,     strategy host: orders and cancels,
           ``done.<strategy>``                           then "done" (what they answered)
execution  ``order_update.<strategy>...``,               simulated exchange: answers (each a
           ``fill.<strategy>...``, ``call.<strategy>``,  call to the strategy), step calls,
           ``step.exchange``, ``end.exchange``           progress markers, end/pause markers
========== ============================================ =====================================

**Calls, and when a strategy need not wait.** The backtest's order of events is defined once,
by :class:`mqlab.engine.Engine`; the exchange service drives it. A strategy with nothing at
the exchange (no working order, no answer queued) cannot receive anything before its next
market event: it is *quiet*, and its host handles market events straight from its queue,
without waiting for the exchange. It reports what it did in one ``done`` message for many
steps ("steps up to N handled, these orders at these steps"), sent when its queue runs dry
or when it sends an order. A strategy with something at the exchange is *engaged*: then
every delivery is a *call* numbered per strategy (an answer, or ``call.<strategy>`` for a
market step), the host handles calls in number order and answers each with ``done`` at once,
and the exchange waits for it. Both sides flip between the two states by the same rule, so
they always agree (docs/architecture.md):

* engaged when the strategy sends any request;
* quiet after an answer that says ``x-open: 0`` (nothing left at the exchange for it), if
  the strategy sent nothing in reaction.

The exchange publishes a progress marker (``step.exchange``: "matched through step N", with
the fills since the last marker) when its queues run dry, so the portfolio and the market's
flow control move on in batches under load and promptly when idle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mqlab.bus import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, Delivery, Reject
from mqlab.services._runtime import Outgoing

__all__ = [
    "CHECKED",
    "DEFAULT_WINDOW",
    "END_KEY",
    "EXCHANGE_END",
    "EXCHANGE_STEP",
    "EXECUTION",
    "HEADER_CALL",
    "HEADER_COUNT",
    "HEADER_OPEN",
    "HEADER_SENT",
    "HEADER_SEQ",
    "HEADER_WINDOW",
    "MARKET",
    "ORDERS",
    "PAUSE_KEY",
    "batch_size",
    "call_key",
    "control",
    "default_queues",
    "done_key",
    "done_message",
    "header_int",
    "market_events",
    "market_records",
    "parse_control",
    "parse_done",
    "pipeline_exchanges",
    "pipeline_queues",
]

#: Market steps in flight: the market publishes step N once the exchange matched N - WINDOW.
#: Small enough that an event waits behind few others (latency), big enough for batches.
DEFAULT_WINDOW = 16

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
#: Header of a message holding several market events (a JSON array): how many. Step numbers
#: run from ``x-seq`` on.
HEADER_COUNT = "x-count"
#: Header of a market event: the market's window, which sets the batches' size (half of it).
HEADER_WINDOW = "x-window"
#: Header with the call number of an exchange answer (per strategy).
HEADER_CALL = "x-call"
#: Header of an answer: how many things the strategy still has at the exchange after it
#: (working orders, answers queued). 0 makes the strategy quiet (see above).
HEADER_OPEN = "x-open"
#: Routing keys, on the market exchange, of the end of the data and of a Ctrl-C pause.
END_KEY = "control.end"
PAUSE_KEY = "control.pause"
#: Routing key of the exchange service's progress markers (on the execution exchange).
EXCHANGE_STEP = "step.exchange"
#: Routing key of the exchange service's end and pause markers.
EXCHANGE_END = "end.exchange"


def batch_size(window: int) -> int:
    """Steps per batched ``done`` or progress marker for a market ``window``: half of it, so
    the next batch is always within what the market may publish (no deadlock)."""
    return max(1, window // 2)


def call_key(strategy: str) -> str:
    """Routing key of a market step delivered as a call to an engaged strategy."""
    return f"call.{strategy}"


def done_key(strategy: str) -> str:
    """Routing key of a strategy's "done" messages (on the orders exchange)."""
    return f"done.{strategy}"


def header_int(delivery: Delivery, name: str) -> int:
    """An integer header; a missing or bad one makes the message unprocessable (→ DLQ)."""
    value = delivery.headers.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"header {name!r} must be an integer >= 0, got {value!r}")
    return value


def control(exchange: str, routing_key: str, message_id: str, kind: str, **fields: Any) -> Outgoing:
    """A small JSON control message (step call, marker, done, end, pause)."""
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


def done_message(
    strategy: str,
    number: int,
    since: int,
    through: int,
    entries: list[list[Any]],
    decided: list[int],
) -> Outgoing:
    """A strategy host's ``done``: quiet steps ``since`` to ``through`` handled (``since`` lets
    the exchange notice an earlier ``done`` still on its way), and ``entries``
    ``[kind, number, request ids]`` for each call (kind ``call``) and each quiet step that
    sent requests (kind ``step``). ``decided``: the steps whose requests it carries."""
    return control(
        ORDERS, done_key(strategy), f"done.{strategy}.{number}", "done", strategy=strategy,
        since=since, through=through, entries=entries, decided=decided,
    )  # fmt: skip


def parse_done(body: bytes) -> dict[str, Any]:
    """Decode a ``done`` message; ValueError names what is malformed."""
    data = parse_control(body, strategy=str, since=int, through=int, entries=list)
    entries = []
    for entry in data["entries"]:
        ok = isinstance(entry, list) and len(entry) == 3 and entry[0] in ("call", "step")
        if not ok or not isinstance(entry[1], int) or not isinstance(entry[2], list):
            raise ValueError(f'done entry must be ["call"|"step", number, [ids]]: {entry!r}')
        entries.append([entry[0], entry[1], [str(i) for i in entry[2]]])
    decided = data.get("decided", [])
    if not isinstance(decided, list) or not all(isinstance(d, int) for d in decided):
        raise ValueError("done field 'decided' must be a list of step numbers")
    return {"strategy": data["strategy"], "since": data["since"], "through": data["through"],
            "entries": entries, "decided": decided}  # fmt: skip


def market_events(delivery: Delivery) -> list[tuple[int, Any, str]]:
    """The market events in a delivery as (step, event, its JSON), one or a batch
    (``x-count``); raises on a malformed body or header, so the message is dead-lettered."""
    from mqlab.events import Kline, OrderBook, Trade, decode, decode_batch, encode

    seq = header_int(delivery, HEADER_SEQ)
    count = delivery.headers.get(HEADER_COUNT)
    if count is None:
        event = decode(delivery.body)  # the body first: its error says most
        if not isinstance(event, Kline | OrderBook | Trade):
            raise Reject(f"not market data: a {type(event).__name__} on {MARKET}")
        return [(seq, event, delivery.body.decode())]
    events = decode_batch(delivery.body)
    if count != len(events):
        raise ValueError(f"header {HEADER_COUNT!r} says {count!r}, the body holds {len(events)}")
    out = []
    for i, event in enumerate(events):
        if not isinstance(event, Kline | OrderBook | Trade):
            raise Reject(f"not market data: a {type(event).__name__} on {MARKET}")
        out.append((seq + i, event, encode(event).decode()))
    return out


def market_records(delivery: Delivery, after: int) -> list[tuple[dict[str, Any], Any]]:
    """The records (and decoded events) of the market events in ``delivery`` with a step
    after ``after``: earlier ones were handled before a restart (the broker redelivers them).
    Every service that reads the market journals the same fields."""
    sent_ns = int(delivery.headers.get(HEADER_SENT) or 0)
    window = int(delivery.headers.get(HEADER_WINDOW) or 1)
    events = market_events(delivery)  # the whole message first: a bad one goes to the DLQ whole
    single = len(events) == 1
    shared = {"kind": "market", "key": delivery.routing_key, "sent_ns": sent_ns, "window": window}
    records = []
    for seq, event, body in events:
        if seq > after:
            record = {"id": (single and delivery.message_id) or event.id, "seq": seq}
            records.append((record | {"body": body} | shared, event))
    return records


def default_queues(strategies: Sequence[str], risk: bool = False) -> list[str]:
    """The queues a pipeline's consumers declare; the market waits until each has a consumer."""
    queues = ["exchange.market", "exchange.orders", "portfolio.execution"]
    for sid in strategies:
        queues += [f"strategy.{sid}.market", f"strategy.{sid}.execution"]
    return queues + (["risk.orders"] if risk else [])


def pipeline_queues(strategies: Sequence[str]) -> list[str]:
    """Every queue a run may declare (unprefixed): the consumers' (with a risk service's),
    the market's flow control, the risk service's control, the process runner's progress,
    and the dead letters; deleting a run's topology deletes these."""
    extra = ["market.progress", "risk.control", "pipeline.progress", DEAD_LETTER_QUEUE]
    return default_queues(strategies, risk=True) + extra


def pipeline_exchanges() -> list[str]:
    """Every exchange a run may declare (unprefixed), the dead-letter exchange included."""
    return [MARKET, ORDERS, EXECUTION, CHECKED, DEAD_LETTER_EXCHANGE]
