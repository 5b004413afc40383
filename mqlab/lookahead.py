"""Hunting for the future from inside a strategy: the evidence that look-ahead (未来函数) fails.

A vectorised backtest hands the strategy the whole history; the event-driven engine hands it
one event. These helpers let a chapter (and the tests) *search* for a later bar, instead of
taking that on trust:

* :func:`reachable`: every object the given root leads to by following references
  (``gc.get_referents``), such as everything a strategy holds;
* :func:`later_klines`: the :class:`~mqlab.events.Kline` events among some objects that
  opened after a given bar (the future, as seen from that bar).

``later_klines(gc.get_objects(), kline)`` searches the whole process; with a lazy source the
future has not been read yet, so there is nothing to find. ``later_klines(reachable(strategy),
kline)`` follows only what the strategy holds, which finds nothing even when the whole
history sits in a list in memory.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Iterable, Iterator

from mqlab.events import Kline

__all__ = ["later_klines", "reachable"]


def reachable(root: object) -> Iterator[object]:
    """Yield every object reachable from ``root`` through references, ``root`` first.

    Functions and classes are not followed: through them any code reaches the globals of its
    own module, which is the author's doing, not something the engine handed over.
    """
    seen, todo = {id(root)}, [root]
    while todo:
        obj = todo.pop()
        yield obj
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not isinstance(ref, type | types.FunctionType):
                seen.add(id(ref))
                todo.append(ref)


def later_klines(objects: Iterable[object], kline: Kline) -> list[Kline]:
    """The klines among ``objects`` from ``kline``'s stream that opened after it."""
    return [
        o
        for o in objects
        if type(o) is Kline
        and o.open_time > kline.open_time
        and o.platform == kline.platform
        and o.symbol == kline.symbol
    ]
