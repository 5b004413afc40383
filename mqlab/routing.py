"""How an exchange (交换机) picks queues: the four AMQP routing rules as pure functions, shared
by the embedded broker (which routes with them) and the services (which filter keys).

Chapters 08–09 read this module. Each rule answers one question, "does this binding match
this message?", and :func:`route` applies a rule to every binding of an exchange:

========  ===========================================================================
direct    the binding key equals the routing key
fanout    always: every bound queue gets a copy
topic     binding keys are dot-separated words; ``*`` stands for exactly one word and
          ``#`` for zero or more words (``kline.*.btcusdt`` / ``kline.#``)
headers   the binding's arguments are compared with the message's headers;
          ``x-match=all`` (default) needs every pair to match, ``x-match=any`` one
========  ===========================================================================

Nothing here knows about sockets, frames or queues, so every rule can be tried in a notebook
with plain strings and dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = [
    "EXCHANGE_TYPES",
    "Binding",
    "direct_match",
    "fanout_match",
    "headers_match",
    "matches",
    "route",
    "topic_match",
]

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")


@dataclass(frozen=True)
class Binding:
    """A rule "messages from ``source`` that match ``routing_key``/``arguments`` go to
    ``destination``". ``destination`` is a queue name, or an exchange name when
    ``to_exchange`` is true (exchange-to-exchange bindings, a RabbitMQ extension)."""

    source: str
    destination: str
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    to_exchange: bool = False

    @property
    def key(self) -> tuple[str, str, str, bool, tuple[tuple[str, str], ...]]:
        """Identity of the binding: the same key and arguments bind only once."""
        args = tuple(sorted((k, repr(v)) for k, v in self.arguments.items()))
        return (self.source, self.destination, self.routing_key, self.to_exchange, args)


def direct_match(binding_key: str, routing_key: str) -> bool:
    """Direct exchange: an exact, case-sensitive string comparison."""
    return binding_key == routing_key


def fanout_match(binding_key: str, routing_key: str) -> bool:
    """Fanout exchange: keys are ignored, every binding matches."""
    return True


@lru_cache(maxsize=8192)
def topic_match(binding_key: str, routing_key: str) -> bool:
    """Topic exchange: match dot-separated words, ``*`` = one word, ``#`` = zero or more.

    >>> topic_match("kline.*.btcusdt", "kline.1m.btcusdt")
    True
    >>> topic_match("kline.#", "kline")
    True
    >>> topic_match("*.btcusdt", "kline.1m.btcusdt")
    False
    """
    return _match_words(_words(binding_key), _words(routing_key))


def _words(key: str) -> tuple[str, ...]:
    # The empty key has no words at all, so "*" does not match it but "#" does.
    return tuple(key.split(".")) if key else ()


def _match_words(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    # Walk both word lists; on "#" try every possible number of swallowed words.
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match_words(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match_words(rest, words[1:])


def headers_match(binding_args: Mapping[str, Any], headers: Mapping[str, Any] | None) -> bool:
    """Headers exchange: compare the binding's arguments with the message headers.

    ``x-match`` is ``all`` (every argument must be present and equal) or ``any`` (at least
    one). Arguments starting with ``x-`` are not compared, as in RabbitMQ; ``all-with-x`` and
    ``any-with-x`` compare them too.
    """
    headers = headers or {}
    mode = str(binding_args.get("x-match", "all"))
    with_x = mode.endswith("-with-x")
    wanted = [
        (k, v)
        for k, v in binding_args.items()
        if k != "x-match" and (with_x or not k.startswith("x-"))
    ]
    hits = (k in headers and (v is None or headers[k] == v) for k, v in wanted)
    return any(hits) if mode.startswith("any") else all(hits)


def matches(
    kind: str, binding: Binding, routing_key: str, headers: Mapping[str, Any] | None
) -> bool:
    """Does ``binding`` (on an exchange of type ``kind``) accept this message?"""
    if kind == "direct":
        return direct_match(binding.routing_key, routing_key)
    if kind == "fanout":
        return fanout_match(binding.routing_key, routing_key)
    if kind == "topic":
        return topic_match(binding.routing_key, routing_key)
    if kind == "headers":
        return headers_match(binding.arguments, headers)
    raise ValueError(f"unknown exchange type {kind!r}; expected one of {EXCHANGE_TYPES}")


def route(
    kind: str,
    bindings: Iterable[Binding],
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
) -> list[Binding]:
    """The bindings of one exchange that accept the message, in binding order.

    >>> b = [Binding("md", "q1", "kline.#"), Binding("md", "q2", "depth.*")]
    >>> [x.destination for x in route("topic", b, "kline.1m.btcusdt")]
    ['q1']
    """
    return [b for b in bindings if matches(kind, b, routing_key, headers)]
