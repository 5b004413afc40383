"""Events: immutable, exact, stable ids, one routing-key scheme, a codec that names bad fields."""

from __future__ import annotations

import dataclasses
import inspect
import json
from decimal import Decimal as D

import pytest
from event_builders import T0
from hypothesis import given
from hypothesis import strategies as st

from mqlab.events import (
    Cancel,
    EventDecodeError,
    Fill,
    Kline,
    Liquidity,
    Order,
    OrderBook,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    Trade,
    decode,
    encode,
    kline_key,
    order_key,
    routing_key,
)
from mqlab.events.model import mutable_twin

KLINE = Kline("binance", "BTCUSDT", "1m", T0, D("42000.10"), D("42010"), D("41990.5"),
              D("42005.25"), D("1.23456"), T0 + 60_000, T0 + 60_003, D("51800.1"), 17)  # fmt: skip
BOOK = OrderBook("binance", "BTCUSDT", ((D("100.0"), D("1")), (D("99.9"), D("2"))),
                 ((D("100.1"), D("0.5")),), 42, T0, T0 + 1)  # fmt: skip
TRADE = Trade("binance", "BTCUSDT", 7, D("100.05"), D("0.01"), Side.SELL, T0, T0)
ORDER = Order("sma-1", "sma", "binance", "BTCUSDT", Side.BUY, OrderType.LIMIT, D("0.1"),
              D("99.5"), T0, T0)  # fmt: skip
MARKET = dataclasses.replace(ORDER, id="sma-2", type=OrderType.MARKET, price=None)
CANCEL = Cancel("sma-3", "sma", "binance", "BTCUSDT", "sma-1", T0, T0)
UPDATE = OrderUpdate("sma-1", "sma", "binance", "BTCUSDT", OrderStatus.PARTIALLY_FILLED,
                     D("0.05"), D("99.5"), "", 2, T0, T0)  # fmt: skip
FILL = Fill("sma-1", "sma", "binance", "BTCUSDT", Side.BUY, D("0.05"), D("99.5"), D("0.004975"),
            "USDT", Liquidity.MAKER, 1, T0, T0)  # fmt: skip
ALL = [KLINE, BOOK, TRADE, ORDER, MARKET, CANCEL, UPDATE, FILL]


@pytest.mark.parametrize("event", ALL, ids=lambda e: type(e).__name__)
def test_round_trip_is_exact(event: object) -> None:
    assert decode(encode(event)) == event  # type: ignore[arg-type]


@pytest.mark.parametrize("event", ALL, ids=lambda e: type(e).__name__)
def test_events_are_immutable_and_slotted(event: object) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.ts = 0  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"immutable.*'next_bar'"):
        event.next_bar = KLINE  # type: ignore[attr-defined]  # not a TypeError from super()
    with pytest.raises(dataclasses.FrozenInstanceError):
        del event.ts  # type: ignore[attr-defined]
    assert not hasattr(event, "__dict__")


def test_money_travels_as_strings_never_floats() -> None:
    payload = json.loads(encode(KLINE))
    assert payload["close"] == "42005.25" and isinstance(payload["close"], str)
    assert payload["id"] == "kline.binance.BTCUSDT.1m.1704067200000"


def test_ids_are_deterministic_and_distinct() -> None:
    assert KLINE.id == dataclasses.replace(KLINE).id
    assert KLINE.id != dataclasses.replace(KLINE, open_time=T0 + 60_000).id
    assert len({e.id for e in ALL}) == len(ALL)
    assert (FILL.id, UPDATE.id, BOOK.id, TRADE.id) == (
        "sma-1.f1", "sma-1.u2", "orderbook.binance.BTCUSDT.42", "trade.binance.BTCUSDT.7",
    )  # fmt: skip


def test_routing_keys_carry_the_kline_interval() -> None:
    assert [routing_key(e) for e in ALL] == [
        "kline.binance.BTCUSDT.1m",
        "orderbook.binance.BTCUSDT",
        "trade.binance.BTCUSDT",
        "order.sma.binance.BTCUSDT",
        "order.sma.binance.BTCUSDT",
        "order.sma.binance.BTCUSDT",  # cancels share the orders' key, so they stay in order
        "order_update.sma.binance.BTCUSDT",
        "fill.sma.binance.BTCUSDT",
    ]
    assert kline_key(symbol="BTCUSDT") == "kline.*.BTCUSDT.*"
    assert order_key() == "order.*.*.*"
    with pytest.raises(ValueError, match="routing-key part"):
        kline_key("binance", "BTC.USDT", "1m")


def _broken(original: object, **changes: object) -> bytes:
    payload = json.loads(encode(original))  # type: ignore[arg-type]
    for key, value in changes.items():
        if value is ...:
            del payload[key]
        else:
            payload[key] = value
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"not json", None, "not JSON"),
        (b"[1, 2]", None, "JSON object"),
        (_broken(KLINE, event="candle"), "event", "unknown event type"),
        (_broken(KLINE, close=...), "close", "missing"),
        (_broken(KLINE, close=42005.25), "close", "floats are refused"),
        (_broken(KLINE, close="abc"), "close", "not a decimal"),
        (_broken(KLINE, close="NaN"), "close", "finite"),
        (_broken(KLINE, open_time="1"), "open_time", "integer"),
        (_broken(KLINE, colour="red"), "colour", "unknown field"),
        (
            _broken(KLINE, interval="7m", id="kline.binance.BTCUSDT.7m.1704067200000"),
            "interval",
            "unknown",
        ),
        (_broken(KLINE, high="41000"), "high", "below open or close"),
        (_broken(KLINE, id="kline.binance.BTCUSDT.1m.0"), "id", "does not match"),
        (_broken(TRADE, side="SIDEWAYS"), "side", "one of BUY, SELL"),
        (_broken(BOOK, asks=[["99", "1"]]), "asks", "crossed"),
        (_broken(BOOK, bids=[["100", "1"], ["101", "1"]]), "bids[1]", "out of order"),
        (_broken(BOOK, bids=[["100"]]), "bids[0]", "[price, qty]"),
        (_broken(ORDER, price=None), "price", "limit needs"),
        (_broken(MARKET, price="1"), "price", "market order takes no price"),
        (_broken(ORDER, qty="0"), "qty", "> 0"),
        (_broken(ORDER, strategy="a.b"), "strategy", "bad name"),
        (_broken(FILL, recv_ts=T0 - 1), "recv_ts", "before it happened"),
    ],
)
def test_bad_payloads_name_the_field(payload: bytes, field: str | None, words: str) -> None:
    with pytest.raises(EventDecodeError, match=words) as info:
        decode(payload)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


prices = st.decimals(min_value=D("0.01"), max_value=D("1e9"), places=8)


@given(price=prices, qty=prices, trade_id=st.integers(0, 2**62), side=st.sampled_from(Side))
def test_any_trade_round_trips(price: D, qty: D, trade_id: int, side: Side) -> None:
    trade = Trade("binance", "ETHUSDT", trade_id, price, qty, side, T0, T0 + 5)
    assert decode(encode(trade)) == trade


@pytest.mark.parametrize("event", ALL, ids=lambda e: type(e).__name__)
def test_constructors_keep_the_dataclass_signature(event: object) -> None:
    cls = type(event)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    assert list(inspect.signature(cls).parameters) == names
    values = {name: getattr(event, name) for name in names}
    assert cls(**values) == event == cls(*values.values())
    assert dataclasses.replace(event) == event  # type: ignore[type-var]
    with pytest.raises(TypeError):
        cls(*list(values.values())[:2])  # required fields missing
    with pytest.raises(TypeError):
        cls(**values, colour="red")


@pytest.mark.parametrize("event", ALL, ids=lambda e: type(e).__name__)
def test_events_are_built_through_a_twin_of_the_same_layout(event: object) -> None:
    cls = type(event)
    twin = mutable_twin(cls)
    # a subclass adding no slot: the same layout, so __class__ can go back and forth
    assert twin.__mro__[1] is cls and twin.__basicsize__ == cls.__basicsize__
    assert twin.__slots__ == () and mutable_twin(cls) is twin
    values = [getattr(event, f.name) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    built = cls(*values)
    assert type(built) is cls and built == event  # what leaves the constructor is the class
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.ts = 0  # type: ignore[attr-defined]


def test_kline_defaults_still_apply() -> None:
    required = [f.name for f in dataclasses.fields(Kline) if f.default is dataclasses.MISSING]
    bare = Kline(*[getattr(KLINE, name) for name in required])
    assert bare.quote_volume == 0 and bare.trades == 0
