"""The routing rules chapters 08–09 teach: pure functions, checked case by case."""

from __future__ import annotations

import doctest

import pytest

from mqlab import routing
from mqlab.broker.exchange import Exchange
from mqlab.routing import Binding, headers_match, route, topic_match


def test_doctests_in_the_module_hold() -> None:
    assert doctest.testmod(routing).failed == 0


def test_direct_is_exact_and_case_sensitive() -> None:
    assert routing.direct_match("kline", "kline")
    assert not routing.direct_match("kline", "Kline")
    assert not routing.direct_match("kline", "kline.1m")


def test_fanout_ignores_the_key() -> None:
    assert routing.fanout_match("", "anything.at.all")


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("kline.1m.btcusdt", "kline.1m.btcusdt", True),
        ("kline.*.btcusdt", "kline.1m.btcusdt", True),
        ("kline.*.btcusdt", "kline.btcusdt", False),  # * is exactly one word
        ("kline.*", "kline.1m.btcusdt", False),
        ("kline.#", "kline.1m.btcusdt", True),
        ("kline.#", "kline", True),  # # may be zero words
        ("#", "", True),
        ("*", "", False),  # the empty key has no word for * to match
        ("#.btcusdt", "depth.btcusdt", True),
        ("#.btcusdt", "btcusdt", True),
        ("a.#.c", "a.x.y.c", True),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.x.y", False),
        ("*.*", "a.b", True),
        ("*.*", "a.b.c", False),
        ("#.#", "a.b", True),
        ("a.*.#", "a", False),
        ("", "", True),
        ("", "a", False),
    ],
)
def test_topic(pattern: str, key: str, expected: bool) -> None:
    assert topic_match(pattern, key) is expected


def test_headers_all_and_any() -> None:
    args = {"x-match": "all", "symbol": "BTCUSDT", "interval": "1m"}
    assert headers_match(args, {"symbol": "BTCUSDT", "interval": "1m", "extra": 1})
    assert not headers_match(args, {"symbol": "BTCUSDT"})
    assert not headers_match(args, None)
    anyof = dict(args, **{"x-match": "any"})
    assert headers_match(anyof, {"symbol": "BTCUSDT"})
    assert not headers_match(anyof, {"symbol": "ETHUSDT"})


def test_headers_default_is_all_and_x_arguments_are_not_compared() -> None:
    assert headers_match({"a": 1, "x-other": 2}, {"a": 1})
    assert not headers_match({"a": 1, "b": 2}, {"a": 1})
    assert headers_match({"x-match": "all-with-x", "x-k": 1}, {"x-k": 1})
    assert not headers_match({"x-match": "all-with-x", "x-k": 1}, {})


def test_route_keeps_binding_order_and_unknown_type_fails() -> None:
    bindings = [Binding("md", "q1", "kline.#"), Binding("md", "q2", "#"), Binding("md", "q3", "x")]
    assert [b.destination for b in route("topic", bindings, "kline.1m")] == ["q1", "q2"]
    assert [b.destination for b in route("fanout", bindings, "zzz")] == ["q1", "q2", "q3"]
    with pytest.raises(ValueError, match="unknown exchange type"):
        route("nope", bindings, "x")


def test_exchange_binds_once_and_default_exchange_routes_by_queue_name() -> None:
    ex = Exchange("md", "direct")
    ex.bind(Binding("md", "q1", "k"))
    ex.bind(Binding("md", "q1", "k"))
    assert len(ex.bindings) == 1
    assert [b.destination for b in ex.route("k")] == ["q1"]
    assert ex.unbind(Binding("md", "q1", "k")) and not ex.route("k")
    assert [b.destination for b in Exchange("", "direct").route("orders")] == ["orders"]
