"""Typed, immutable trading events (事件) and their stable ids.

Every event is a frozen dataclass with slots, so a handler can neither change it nor hang
extra data (say, the next bar) on it. Money is exact: prices, quantities and fees are
:class:`~decimal.Decimal`, never floats (aioquant keeps money in floats). Times are integer
milliseconds since the Unix epoch, and every event carries two of them:

* ``ts``: when it happened at its source (exchange time for market data, the strategy's
  clock for an order, the matching time for an update or fill);
* ``recv_ts``: when our system received it. The backtest orders events by ``recv_ts``.

``event.id`` is a deterministic, unique id derived from the content (e.g.
``kline.binance.BTCUSDT.1m.1704067200000``; orders use the client id ``<strategy>-<seq>``,
fills ``<order id>.f<n>``), so bus consumers can drop duplicates.
"""

from __future__ import annotations

import contextlib
from dataclasses import MISSING, FrozenInstanceError, dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

__all__ = [
    "BUY",
    "CANCELED",
    "CANCEL_REJECTED",
    "FILLED",
    "INTERVAL_MS",
    "KLINE_DEFERRED",
    "LIMIT_ORDER",
    "MAKER",
    "MARKET_ORDER",
    "NEW",
    "PARTIALLY_FILLED",
    "REJECTED",
    "SELL",
    "TAKER",
    "ZERO",
    "Cancel",
    "Event",
    "Fill",
    "Kline",
    "Level",
    "Liquidity",
    "MarketEvent",
    "Order",
    "OrderBook",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Side",
    "Trade",
    "event_type",
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
    and put ``fill`` in ``_source`` and the event's row in ``_row``: the first read of one of
    them calls ``fill(event, row)``, which sets them all, exactly as they would have been.
    (Two slots, not one ``(fill, row)`` tuple: a tuple a bar would cost an allocation, and
    one more object for the garbage collector to scan, per event built.) Equality,
    hashing, ``repr``, pickling and :func:`encode` read through attributes, so such an event
    is indistinguishable from one built whole.
    """

    __slots__ = ("_row", "_source")


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
            fill = _source_get(event)
        except AttributeError:  # made meanwhile (by another thread), or never deferred
            return self.slot.__get__(event, owner)
        fill(event, _row_get(event))  # sets every deferred field; twice does no harm
        with contextlib.suppress(AttributeError):
            _source_del(event)
        return self.slot.__get__(event, owner)

    def __set__(self, event: Any, value: Any) -> None:
        self.slot.__set__(event, value)

    def __delete__(self, event: Any) -> None:
        self.slot.__delete__(event)


#: The Kline fields a bulk builder may leave to be made on first read (see ``_Deferred``).
KLINE_DEFERRED = ("high", "low", "volume", "quote_volume", "trades")
_source_get = _Deferred._source.__get__  # type: ignore[attr-defined]
_source_del = _Deferred._source.__delete__  # type: ignore[attr-defined]
_row_get = _Deferred._row.__get__  # type: ignore[attr-defined]


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


def mutable_twin(cls: type) -> type:
    """A subclass of the frozen, slotted event class ``cls`` that adds no slot and lets plain
    attribute stores through: what event builders fill an instance through before turning it
    into a ``cls`` (``obj.__class__ = cls``, which CPython allows between these two).

    A frozen event refuses ``self.x = ...`` (its ``__setattr__``), so a builder would set each
    field through its slot descriptor, a C call of ~50 ns a field. On the twin a store is
    plain and specialised by the interpreter (~5 ns): ``__setattr__``/``__delattr__`` are
    object's own again and ``__init__`` does nothing. Being a subclass that adds nothing,
    the twin has the very layout of ``cls``, so the ``__class__`` assignment checks no more
    than that (a sibling class with the same slots made CPython compare both slot tuples
    name by name on every assignment). Fields that ``cls`` reads through another descriptor
    (a Kline's deferred ones) are plain slots again on the twin. Cached: one per class.
    """
    twin = _TWINS.get(cls)
    if twin is None:
        namespace: dict[str, Any] = {
            "__slots__": (),
            "__init__": object.__init__,
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        }
        for f in fields(cls):
            attribute = cls.__dict__.get(f.name)
            if isinstance(attribute, _DeferredField):
                namespace[f.name] = attribute.slot
        twin = _TWINS[cls] = type(f"_{cls.__name__}Twin", (cls,), namespace)
    return twin


_TWINS: dict[type, type] = {}


def _slot_init(cls: type) -> Any:
    """An ``__init__`` for a frozen, slotted dataclass that fills the slots with plain stores.

    The one ``dataclass`` writes sets every field through ``object.__setattr__``, a C call
    of ~50 ns a field that looks the name up in the class each time; a backtest builds an
    event per bar, order and fill. This one turns the new object, for the time of its
    ``__init__``, into an instance of its :func:`mutable_twin`, stores each field with a
    plain attribute store (~5 ns, specialised by the interpreter), and turns it back: half
    the cost for an event of 11 fields or more. Same signature and defaults; generated the
    way ``dataclasses`` generates its own.
    """
    params: list[str] = []
    lines: list[str] = []
    scope: dict[str, Any] = {"_cls": cls, "_twin": mutable_twin(cls), "_set_class": _SET_CLASS}
    for f in fields(cls):
        params.append(f.name if f.default is MISSING else f"{f.name}=_default_{f.name}")
        if f.default is not MISSING:
            scope[f"_default_{f.name}"] = f.default
        lines.append(f"    self.{f.name} = {f.name}")
    body = "\n".join(["    _set_class(self, _twin)", *lines, "    self.__class__ = _cls"])
    exec(f"def __init__(self, {', '.join(params)}):\n{body}", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


#: ``obj.__class__ = cls`` past a class's own ``__setattr__`` (events refuse every name).
_SET_CLASS = object.__dict__["__class__"].__set__


for _name in KLINE_DEFERRED:
    setattr(Kline, _name, _DeferredField(getattr(Kline, _name)))
for _cls in _TYPES.values():
    # A frozen dataclass with slots answers an *unknown* attribute name with a confusing
    # TypeError from super() (a CPython quirk); refuse every name alike, with a clear message.
    _cls.__setattr__ = _refuse  # type: ignore[method-assign,assignment]
    _cls.__delattr__ = _refuse  # type: ignore[method-assign,assignment]
    _cls.__init__ = _slot_init(_cls)  # type: ignore[misc]  # (its twin sets the slots directly)


def event_type(event: Event) -> str:
    """The wire name of an event's type: ``kline``, ``orderbook``, ``order_update``, ..."""
    try:
        return _NAMES[type(event)]
    except KeyError:
        raise TypeError(f"not an mqlab event: {type(event).__name__}") from None
