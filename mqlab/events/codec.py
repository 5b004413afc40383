"""The events' JSON codec: :func:`encode` (event → ``{"event": "kline", "id": ..., <fields>}``
bytes) and :func:`decode` (bytes → event), which validates every field and raises
:class:`EventDecodeError` naming the field that is wrong; :func:`validate` is the semantic
check ``decode`` runs (constructors trust their arguments, because the backtest builds millions
of events).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterable
from dataclasses import MISSING, fields
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from mqlab.events.keys import _PART
from mqlab.events.model import (
    _TYPES,
    INTERVAL_MS,
    Event,
    Fill,
    Kline,
    Level,
    Order,
    OrderBook,
    OrderType,
    Trade,
    _article,
    event_type,
)

__all__ = [
    "EventDecodeError",
    "compact_json",
    "decode",
    "decode_batch",
    "encode",
    "encode_batch",
    "from_payload",
    "validate",
]


class EventDecodeError(ValueError):
    """A payload that is not a valid event; ``field`` names the culprit (None: the whole)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message if field is None else f"field {field!r}: {message}")
        self.field = field


def _kind(hint: Any) -> str:
    if hint is str:
        return "str"
    if hint is int:
        return "int"
    if hint is Decimal:
        return "dec"
    if hint == Decimal | None:
        return "dec?"
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return "enum"
    if hint == tuple[Level, ...]:
        return "levels"
    raise TypeError(f"no codec for {hint!r}")  # pragma: no cover - a new field type


# wire name -> (type hint, codec kind, required) for every field, in declaration order
_SPECS: dict[type, list[tuple[str, Any, str, bool]]] = {}
for _cls in _TYPES.values():
    _hints = typing.get_type_hints(_cls)
    _SPECS[_cls] = [
        (f.name, _hints[f.name], _kind(_hints[f.name]), f.default is MISSING) for f in fields(_cls)
    ]


#: The names an event of each type may carry on the wire (its fields, ``event`` and ``id``).
_KNOWN: dict[type, frozenset[str]] = {
    cls: frozenset(name for name, *_ in spec) | {"event", "id"} for cls, spec in _SPECS.items()
}
_ABSENT = object()
#: Codec kinds whose wire value is the field's value when it has exactly this type.
_PLAIN: dict[str, type] = {"str": str, "int": int}


def _an_event(kind: str) -> str:
    return f"{_article(kind)} {kind} event"


def _dec(value: Decimal) -> str:
    return format(value, "f")


#: ``json.dumps(..., separators=...)`` builds a new encoder on every call; this one is reused.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
#: JSON text without spaces, as events and journal lines are written.
compact_json = _COMPACT.encode


def encode(event: Event) -> bytes:
    """Serialise an event to compact JSON bytes; Decimals travel as strings, never floats."""
    out: dict[str, Any] = {"event": event_type(event), "id": event.id}
    for name, _hint, kind, _req in _SPECS[type(event)]:
        value = getattr(event, name)
        if kind == "dec" or (kind == "dec?" and value is not None):
            value = _dec(value)
        elif kind == "enum":
            value = value.value
        elif kind == "levels":
            value = [[_dec(p), _dec(q)] for p, q in value]
        out[name] = value
    return compact_json(out).encode()


def encode_batch(events: Iterable[Event]) -> bytes:
    """Several events as one JSON array (:func:`decode_batch` reads it back)."""
    return b"[" + b",".join(encode(e) for e in events) + b"]"


def _parse_dec(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EventDecodeError(
            f'expected a decimal string such as "42000.5", got {type(value).__name__} '
            f"{value!r} (floats are refused: money must be exact)",
            name,
        )
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise EventDecodeError(f"not a decimal number: {value!r}", name) from None
    if not result.is_finite():
        raise EventDecodeError(f"must be finite, got {value!r}", name)
    return result


def _parse(value: Any, hint: Any, kind: str, name: str) -> Any:
    if kind == "str":
        if not isinstance(value, str):
            raise EventDecodeError(f"expected a string, got {value!r}", name)
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EventDecodeError(f"expected an integer, got {value!r}", name)
        return value
    if kind == "dec":
        return _parse_dec(value, name)
    if kind == "dec?":
        return None if value is None else _parse_dec(value, name)
    if kind == "enum":
        try:
            return hint(value)
        except ValueError:
            allowed = ", ".join(m.value for m in hint)
            raise EventDecodeError(f"expected one of {allowed}, got {value!r}", name) from None
    # levels
    if not isinstance(value, list):
        raise EventDecodeError(f"expected a list of [price, qty] pairs, got {value!r}", name)
    levels = []
    for i, level in enumerate(value):
        if not isinstance(level, list) or len(level) != 2:
            raise EventDecodeError(f"expected [price, qty], got {level!r}", f"{name}[{i}]")
        levels.append((_parse_dec(level[0], f"{name}[{i}]"), _parse_dec(level[1], f"{name}[{i}]")))
    return tuple(levels)


#: The events :func:`decode` made last, by their bytes. The services of one process decode the
#: same message more than once (a market event reaches both the exchange and the strategy
#: host, a fill both the strategy host and the portfolio); events are immutable, so they share.
_DECODED: dict[bytes, Event] = {}
_DECODED_MAX = 256


def decode(data: bytes | bytearray | memoryview | str) -> Event:
    """Parse and validate JSON from :func:`encode`; raise :class:`EventDecodeError` if bad."""
    if type(data) is not bytes:
        return from_payload(_json(data))
    event = _DECODED.get(data)
    if event is None:
        event = from_payload(_json(data))
        if len(_DECODED) >= _DECODED_MAX:
            del _DECODED[next(iter(_DECODED))]  # the oldest
        _DECODED[data] = event
    return event


def decode_batch(data: bytes | bytearray | memoryview | str) -> list[Event]:
    """Parse a JSON array of encoded events (several events in one message)."""
    payload = _json(data)
    if not isinstance(payload, list) or not payload:
        raise EventDecodeError("a batch must be a non-empty JSON array of events")
    return [from_payload(item) for item in payload]


def _json(data: bytes | bytearray | memoryview | str) -> Any:
    try:
        return json.loads(bytes(data) if not isinstance(data, str) else data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError(f"payload is not JSON: {exc}") from None


def from_payload(payload: Any) -> Event:
    """Build and validate an event from its decoded JSON object."""
    if not isinstance(payload, dict):
        raise EventDecodeError(f"payload must be a JSON object, got {type(payload).__name__}")
    kind = payload.get("event")
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown event type {kind!r}; known: {', '.join(_TYPES)}", "event")
    if not _KNOWN[cls].issuperset(payload):
        for name in payload:
            if name not in _KNOWN[cls]:
                raise EventDecodeError(f"unknown field for {_an_event(str(kind))}", name)
    values = {}
    for name, hint, fkind, required in _SPECS[cls]:
        value = payload.get(name, _ABSENT)
        if value is _ABSENT:
            if required:
                raise EventDecodeError(f"missing from {_an_event(str(kind))}", name)
            continue
        # A plain str or int (most fields) needs no call: what _parse would accept as is.
        if type(value) is _PLAIN.get(fkind):
            values[name] = value
        else:
            values[name] = _parse(value, hint, fkind, name)
    event = cls(**values)
    if "id" in payload and payload["id"] != event.id:
        raise EventDecodeError(
            f"{payload['id']!r} does not match the content (expected {event.id!r})", "id"
        )
    validate(event)
    return event


def _check(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise EventDecodeError(message, field)


#: Names (platform, symbol, strategy) that passed the check once: a run repeats a handful.
_GOOD_NAMES: set[str] = set()


def validate(event: Event) -> Event:
    """Check an event's meaning (not just its types); return it or raise EventDecodeError."""
    for name in ("platform", "symbol", "strategy"):
        value = getattr(event, name, "x")
        if value not in _GOOD_NAMES:
            ok = bool(_PART.fullmatch(value)) and value not in ("*", "#")
            _check(ok, name, f"bad name {value!r}")
            if len(_GOOD_NAMES) < 10_000:  # a run has a handful; bounded against a flood
                _GOOD_NAMES.add(value)
    _check(event.recv_ts >= event.ts, "recv_ts", "received before it happened (recv_ts < ts)")
    match event:
        case Kline():
            _check(event.interval in INTERVAL_MS, "interval", f"unknown {event.interval!r}")
            _check(event.low <= min(event.open, event.close), "low", "above open or close")
            _check(event.high >= max(event.open, event.close), "high", "below open or close")
            _check(event.low > 0, "low", "prices must be positive")
            _check(event.volume >= 0, "volume", "must not be negative")
            _check(event.ts > event.open_time, "ts", "a bar closes after it opens")
        case OrderBook():
            for side, better in (("bids", Decimal.__gt__), ("asks", Decimal.__lt__)):
                levels = getattr(event, side)
                _check(len(levels) > 0, side, "empty side")
                for i, (price, qty) in enumerate(levels):
                    _check(price > 0 and qty > 0, f"{side}[{i}]", "price and qty must be > 0")
                    if i:
                        _check(better(levels[i - 1][0], price), f"{side}[{i}]", "out of order")
            _check(event.bids[0][0] < event.asks[0][0], "asks", "book is crossed")
        case Trade():
            _check(event.price > 0 and event.qty > 0, "price", "price and qty must be > 0")
        case Order():
            if event.quote_qty is None:
                _check(event.qty > 0, "qty", "must be > 0")
            else:
                _check(event.quote_qty > 0, "quote_qty", "must be > 0")
                _check(event.qty == 0, "qty", "give qty or quote_qty, not both")
                _check(event.type is OrderType.MARKET, "quote_qty", "only market orders")
            if event.type is OrderType.LIMIT:
                _check(event.price is not None and event.price > 0, "price", "limit needs > 0")
            else:
                _check(event.price is None, "price", "a market order takes no price")
        case Fill():
            _check(event.qty > 0 and event.price > 0, "qty", "qty and price must be > 0")
            _check(event.fee >= 0, "fee", "must not be negative")
    return event
