"""Typed, immutable trading events, their stable ids, routing keys and JSON codec.

Every event is a frozen dataclass with slots, so a handler can neither change it nor hang
extra data (say, the next bar) on it. Money is exact: prices, quantities and fees are
:class:`~decimal.Decimal`, never floats (aioquant keeps money in floats). Times are integer
milliseconds since the Unix epoch, and every event carries two of them:

* ``ts``: when it happened at its source (exchange time for market data, the strategy's
  clock for an order, the matching time for an update or fill);
* ``recv_ts``: when our system received it. The backtest orders events by ``recv_ts``.

Public API (stable; the pipeline services build on it):

* events: :class:`Kline`, :class:`OrderBook`, :class:`Trade` (market data);
  :class:`Order`, :class:`Cancel` (requests a strategy sends); :class:`OrderUpdate`,
  :class:`Fill` (what the exchange answers). Enums :class:`Side`, :class:`OrderType`,
  :class:`OrderStatus`, :class:`Liquidity`.
* ``event.id``: a deterministic, unique id derived from the content (e.g.
  ``kline.binance.BTCUSDT.1m.1704067200000``; orders use the client id ``<strategy>-<seq>``,
  fills ``<order id>.f<n>``), so bus consumers can drop duplicates.
* :func:`routing_key` (one function per event type: :func:`kline_key`, :func:`orderbook_key`,
  :func:`trade_key`, :func:`order_key`, :func:`order_update_key`, :func:`fill_key`; called
  with ``"*"``/``"#"`` they give binding patterns). Keys follow aioquant's
  ``{platform}.{symbol}`` style, and klines add the interval aioquant left out:
  ``kline.binance.BTCUSDT.1m``. Orders and cancels share ``order.<strategy>.<platform>.<symbol>``
  so one queue sees them in the order they were sent.
* :func:`encode` (event → JSON bytes: ``{"event": "kline", "id": ..., <fields>}``) and
  :func:`decode` (bytes → event), which validates every field and raises
  :class:`EventDecodeError` naming the field that is wrong.
* :func:`validate`: the semantic checks ``decode`` runs (constructors trust their arguments,
  because the backtest builds millions of events).
"""

from __future__ import annotations

import contextlib
import json
import re
import typing
from collections.abc import Iterable
from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

__all__ = [
    "INTERVAL_MS",
    "ZERO",
    "Cancel",
    "Event",
    "EventDecodeError",
    "Fill",
    "Kline",
    "Liquidity",
    "MarketEvent",
    "Order",
    "OrderBook",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Side",
    "Trade",
    "decode",
    "decode_batch",
    "encode",
    "encode_batch",
    "event_type",
    "fill_key",
    "from_payload",
    "kline_key",
    "order_key",
    "order_update_key",
    "orderbook_key",
    "routing_key",
    "trade_key",
    "validate",
]

ZERO = Decimal(0)

#: Binance kline intervals and their length in milliseconds.
INTERVAL_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


class Side(StrEnum):
    """Which way an order or fill goes: BUY or SELL."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class OrderStatus(StrEnum):
    NEW = "NEW"  # accepted and working
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"  # the order was refused; ``reason`` says why
    CANCEL_REJECTED = "CANCEL_REJECTED"  # a cancel was refused; the order is unchanged


class Liquidity(StrEnum):
    MAKER = "MAKER"  # our resting order was hit
    TAKER = "TAKER"  # our order crossed the book


# Enum members looked up on their class cost ~50 ns each (the enum metaclass hooks attribute
# access); the per-event paths of the venue, the strategy and the portfolio import these
# module-level aliases instead (as ``from mqlab.events import BUY as _BUY``).
BUY, SELL = Side.BUY, Side.SELL
MARKET_ORDER, LIMIT_ORDER = OrderType.MARKET, OrderType.LIMIT
NEW, FILLED, PARTIALLY_FILLED = OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED
CANCELED, REJECTED = OrderStatus.CANCELED, OrderStatus.REJECTED
CANCEL_REJECTED = OrderStatus.CANCEL_REJECTED
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER


Level = tuple[Decimal, Decimal]  # (price, quantity)


# --- market data -------------------------------------------------------------------------------


class _Deferred:
    """The one extra slot of an event whose builder may leave some fields to be made later.

    Turning a long price history into events spends most of its time making Decimals, and a
    backtest reads few of them (an SMA strategy: the close). So a bulk builder such as
    :func:`mqlab.market.iter_frame_klines` may leave the fields in ``KLINE_DEFERRED`` unset
    and put ``(fill, row)`` in ``_source``: the first read of one of them calls
    ``fill(event, row)``, which sets them all, exactly as they would have been. Equality,
    hashing, ``repr``, pickling and :func:`encode` read through attributes, so such an event
    is indistinguishable from one built whole.
    """

    __slots__ = ("_source",)


class _DeferredField:
    """Stands in for the slot of a deferred field: reads it, making it first if unset.

    Only these fields pay for it (a Python-level read, ~0.1 µs); the others stay plain
    slots, as fast as ever, which a ``__getattr__`` hook on the class would not allow.
    """

    __slots__ = ("slot",)

    def __init__(self, slot: Any) -> None:
        self.slot = slot  # the slot's own member descriptor

    def __get__(self, event: Any, owner: type | None = None) -> Any:
        if event is None:
            return self
        try:
            return self.slot.__get__(event, owner)
        except AttributeError:
            pass
        try:
            fill, row = _source_get(event)
        except AttributeError:  # made meanwhile (by another thread), or never deferred
            return self.slot.__get__(event, owner)
        fill(event, row)  # sets every deferred field; doing it twice does no harm
        with contextlib.suppress(AttributeError):
            _source_del(event)
        return self.slot.__get__(event, owner)

    def __set__(self, event: Any, value: Any) -> None:
        self.slot.__set__(event, value)

    def __delete__(self, event: Any) -> None:
        self.slot.__delete__(event)


#: The Kline fields a bulk builder may leave to be made on first read (see ``_Deferred``).
KLINE_DEFERRED = ("high", "low", "volume", "quote_volume")
_source_get = _Deferred._source.__get__  # type: ignore[attr-defined]
_source_del = _Deferred._source.__delete__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Kline(_Deferred):
    """One candlestick (K线). ``ts`` is when the bar closed: only then is it known."""

    platform: str
    symbol: str
    interval: str
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    ts: int
    recv_ts: int
    quote_volume: Decimal = ZERO
    trades: int = 0

    @property
    def id(self) -> str:
        return f"kline.{self.platform}.{self.symbol}.{self.interval}.{self.open_time}"


@dataclass(frozen=True, slots=True)
class OrderBook:
    """A depth snapshot: bids best (highest) first, asks best (lowest) first."""

    platform: str
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    seq: int  # the venue's update id; unique and increasing per symbol
    ts: int
    recv_ts: int

    @property
    def id(self) -> str:
        return f"orderbook.{self.platform}.{self.symbol}.{self.seq}"

    @property
    def mid(self) -> Decimal:
        return (self.bids[0][0] + self.asks[0][0]) / 2


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade; ``side`` is the aggressor's (BUY: a buyer lifted the ask)."""

    platform: str
    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    side: Side
    ts: int
    recv_ts: int

    @property
    def id(self) -> str:
        return f"trade.{self.platform}.{self.symbol}.{self.trade_id}"


# --- requests from a strategy -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Order:
    """A new order. ``id`` is the client order id ``<strategy>-<seq>``: deterministic.

    A market order may give ``quote_qty`` (an amount of the quote asset, as Binance's
    ``quoteOrderQty``) instead of ``qty``, which is then 0: the venue turns the amount into a
    quantity at the price it fills at.
    """

    id: str
    strategy: str
    platform: str
    symbol: str
    side: Side
    type: OrderType
    qty: Decimal
    price: Decimal | None  # None for market orders
    ts: int
    recv_ts: int
    quote_qty: Decimal | None = None  # spend (buy) or raise (sell) this much quote instead


@dataclass(frozen=True, slots=True)
class Cancel:
    """A request to cancel ``order_id``; it has its own client id from the same sequence."""

    id: str
    strategy: str
    platform: str
    symbol: str
    order_id: str
    ts: int
    recv_ts: int


# --- answers from the exchange ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """The order's state after the ``seq``-th change the exchange made to it."""

    order_id: str
    strategy: str
    platform: str
    symbol: str
    status: OrderStatus
    filled_qty: Decimal
    avg_price: Decimal  # ZERO until something filled
    reason: str
    seq: int
    ts: int
    recv_ts: int

    @property
    def id(self) -> str:
        return f"{self.order_id}.u{self.seq}"


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of ``qty`` at ``price``; ``fee`` is in the quote asset (``fee_asset``)."""

    order_id: str
    strategy: str
    platform: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    liquidity: Liquidity
    seq: int
    ts: int
    recv_ts: int

    @property
    def id(self) -> str:
        return f"{self.order_id}.f{self.seq}"


MarketEvent = Kline | OrderBook | Trade
Event = Kline | OrderBook | Trade | Order | Cancel | OrderUpdate | Fill

_TYPES: dict[str, type] = {
    "kline": Kline,
    "orderbook": OrderBook,
    "trade": Trade,
    "order": Order,
    "cancel": Cancel,
    "order_update": OrderUpdate,
    "fill": Fill,
}
_NAMES: dict[type, str] = {cls: name for name, cls in _TYPES.items()}


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _refuse(self: Any, name: str, *value: Any) -> None:
    raise FrozenInstanceError(
        f"{type(self).__name__} events are immutable: cannot set or delete {name!r}"
    )


def _slot_init(cls: type) -> Any:
    """An ``__init__`` for a frozen, slotted dataclass that fills each slot directly.

    The one ``dataclass`` writes sets every field through ``object.__setattr__``, which
    looks the name up in the class each time; a backtest builds an event per bar, order and
    fill, so this one calls each slot's descriptor instead (same signature and defaults; a
    third to a half faster). It is generated the way ``dataclasses`` generates its own.
    """
    params: list[str] = []
    lines: list[str] = []
    scope: dict[str, Any] = {}
    for f in fields(cls):
        params.append(f.name if f.default is MISSING else f"{f.name}=_default_{f.name}")
        if f.default is not MISSING:
            scope[f"_default_{f.name}"] = f.default
        scope[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        lines.append(f"    _set_{f.name}(self, {f.name})")
    exec(f"def __init__(self, {', '.join(params)}):\n" + "\n".join(lines), scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


for _cls in _TYPES.values():
    _cls.__init__ = _slot_init(_cls)  # type: ignore[misc]
    # A frozen dataclass with slots answers an *unknown* attribute name with a confusing
    # TypeError from super() (a CPython quirk); refuse every name alike, with a clear message.
    _cls.__setattr__ = _refuse  # type: ignore[method-assign,assignment]
    _cls.__delattr__ = _refuse  # type: ignore[method-assign,assignment]
for _name in KLINE_DEFERRED:  # after _slot_init, which sets the slots directly
    setattr(Kline, _name, _DeferredField(getattr(Kline, _name)))


def event_type(event: Event) -> str:
    """The wire name of an event's type: ``kline``, ``orderbook``, ``order_update``, ..."""
    try:
        return _NAMES[type(event)]
    except KeyError:
        raise TypeError(f"not an mqlab event: {type(event).__name__}") from None


# --- routing keys ------------------------------------------------------------------------------

_PART = re.compile(r"[A-Za-z0-9_\-]+|\*|#")


def _key(*parts: str) -> str:
    for part in parts:
        if not isinstance(part, str) or not _PART.fullmatch(part):
            raise ValueError(
                f"bad routing-key part {part!r}: use letters, digits, '_' or '-' "
                "(or '*'/'#' in a binding pattern)"
            )
    return ".".join(parts)


def kline_key(platform: str = "*", symbol: str = "*", interval: str = "*") -> str:
    """``kline.{platform}.{symbol}.{interval}``, e.g. ``kline.binance.BTCUSDT.1m``."""
    return _key("kline", platform, symbol, interval)


def orderbook_key(platform: str = "*", symbol: str = "*") -> str:
    """``orderbook.{platform}.{symbol}``."""
    return _key("orderbook", platform, symbol)


def trade_key(platform: str = "*", symbol: str = "*") -> str:
    """``trade.{platform}.{symbol}``."""
    return _key("trade", platform, symbol)


def order_key(strategy: str = "*", platform: str = "*", symbol: str = "*") -> str:
    """``order.{strategy}.{platform}.{symbol}``: orders *and* cancels, so they stay in order."""
    return _key("order", strategy, platform, symbol)


def order_update_key(strategy: str = "*", platform: str = "*", symbol: str = "*") -> str:
    """``order_update.{strategy}.{platform}.{symbol}``."""
    return _key("order_update", strategy, platform, symbol)


def fill_key(strategy: str = "*", platform: str = "*", symbol: str = "*") -> str:
    """``fill.{strategy}.{platform}.{symbol}``."""
    return _key("fill", strategy, platform, symbol)


def routing_key(event: Event) -> str:
    """The topic routing key an event is published under."""
    match event:
        case Kline():
            return kline_key(event.platform, event.symbol, event.interval)
        case OrderBook():
            return orderbook_key(event.platform, event.symbol)
        case Trade():
            return trade_key(event.platform, event.symbol)
        case Order() | Cancel():
            return order_key(event.strategy, event.platform, event.symbol)
        case OrderUpdate():
            return order_update_key(event.strategy, event.platform, event.symbol)
        case Fill():
            return fill_key(event.strategy, event.platform, event.symbol)
    raise TypeError(f"not an mqlab event: {type(event).__name__}")


# --- JSON codec ---------------------------------------------------------------------------------


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


def _dec(value: Decimal) -> str:
    return format(value, "f")


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
    return json.dumps(out, separators=(",", ":")).encode()


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


def decode(data: bytes | bytearray | memoryview | str) -> Event:
    """Parse and validate JSON from :func:`encode`; raise :class:`EventDecodeError` if bad."""
    return from_payload(_json(data))


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
    spec = _SPECS[cls]
    known = {name for name, *_ in spec} | {"event", "id"}
    an_event = f"{_article(str(kind))} {kind} event"
    for name in payload:
        if name not in known:
            raise EventDecodeError(f"unknown field for {an_event}", name)
    values = {}
    for name, hint, fkind, required in spec:
        if name not in payload:
            if required:
                raise EventDecodeError(f"missing from {an_event}", name)
            continue
        values[name] = _parse(payload[name], hint, fkind, name)
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


def validate(event: Event) -> Event:
    """Check an event's meaning (not just its types); return it or raise EventDecodeError."""
    for name in ("platform", "symbol", "strategy"):
        value = getattr(event, name, "x")
        _check(
            bool(_PART.fullmatch(value)) and value not in ("*", "#"), name, f"bad name {value!r}"
        )
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
