"""Frames and Kline events: a DataFrame in Binance's 12 columns becomes :class:`~mqlab.events.Kline`
events (:func:`frame_to_klines`, and its lazy twin :func:`iter_frame_klines`, a chunk at a time),
and events become a float frame again (:func:`klines_to_frame`)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import chain
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from mqlab.events import INTERVAL_MS, KLINE_DEFERRED, ZERO, Kline
from mqlab.events.model import mutable_twin

__all__ = [
    "frame_to_klines",
    "iter_frame_klines",
    "klines_to_frame",
]

_T = TypeVar("_T")


class _DecimalColumn:
    """A float column that becomes exact Decimals, a slice at a time.

    Prices and quantities carry at most 8 decimal places, so each float is an integer number
    of ticks (42000.12 is 4200012 ticks of 0.01) plus float noise; the whole column shares
    one tick size, so every row gets the same exponent (42000.10 stays 42000.10).
    """

    __slots__ = ("floats", "places", "ticks", "unit")

    def __init__(self, values: np.ndarray) -> None:
        self.floats, self.ticks, self.places, self.unit = values, None, None, Decimal(1)
        for places in range(9):
            if not _whole(values[:256], places):  # a cheap look at a sample first
                continue
            if _whole(values, places):
                ticks = np.rint(values * 10.0**places).astype(np.int64)
                self.ticks, self.places, self.unit = ticks, places, Decimal(1).scaleb(-places)
                return

    def __getitem__(self, rows: slice) -> list[Decimal]:
        # map() runs these loops in C: no bytecode per value, only the Decimal work itself.
        if self.ticks is None:  # repr is a float's shortest round-tripping decimal, exactly
            return list(map(Decimal, map(repr, self.floats[rows].tolist())))
        # unit * ticks, e.g. 0.01 * 4200012 = 42000.12: exact, and with the column's exponent.
        # (Decimal * int converts the int inside the multiply: a Decimal(int) call first would
        # cost as much again, in argument parsing.)
        return list(map(self.unit.__mul__, self.ticks[rows].tolist()))

    def at(self, row: int) -> Decimal:
        """The Decimal of one row, the same as ``self[row : row + 1][0]``."""
        if self.ticks is None:
            return Decimal(repr(self.floats.item(row)))
        return self.unit.__mul__(self.ticks.item(row))


def _whole(values: np.ndarray, places: int) -> bool:
    """Whether every value is a whole number of 10**-places, up to float noise."""
    scaled = values * 10.0**places
    return bool(np.all(np.abs(scaled - np.rint(scaled)) <= np.abs(scaled) * 1e-14 + 1e-9))


def _bulk(
    cls: type[_T],
    n: int,
    columns: dict[str, Iterable[Any]],
    deferred: Iterable[str] = (),
    same: dict[str, Any] | None = None,
) -> list[_T]:
    """``n`` instances of a frozen, slotted dataclass, built from one column per field.

    Frozen events refuse ``self.x = ...``, so their ``__init__`` sets each slot through its
    descriptor, a C call of about 50 ns a field. Here one generated function builds every
    row in a loop: it makes each row as an instance of the class's mutable *twin*
    (:func:`mqlab.events.model.mutable_twin`: the same layout, an ``__init__`` that does
    nothing), stores the fields with plain (specialised, ~5 ns) attribute stores and then
    turns it into ``cls`` by assigning ``__class__``, which CPython allows between classes of
    identical layout. (A call of the twin class per row, from ``map``, cost twice as much:
    the interpreter is entered afresh for each ``__init__``.) The results are ordinary
    ``cls`` instances, equal to ``cls(...)`` with the same values and as immutable (tests
    check both).

    ``same`` gives the fields every row shares (a symbol, an interval): set from a local,
    no column to walk. Every other field must be in ``columns``, except those ``deferred``:
    they are made on first read by the ``_source`` and ``_row`` fields (Kline only, see
    :class:`mqlab.events.model._Deferred`). Every column must be finite: the rows stop at the
    shortest, and must number ``n``.
    """
    fields = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    same = same or {}
    left_out = set(deferred) | same.keys()
    hidden = ("_source", "_row") if deferred else ()
    names = tuple(f for f in (*fields, *hidden) if f not in left_out)
    for name in names:
        values = columns[name]
        if isinstance(values, list) and len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values for {n} rows")
    build = _builder(cast("Hashable", cls), tuple(same), names)
    built: list[_T] = build(*same.values(), *(columns[name] for name in names))
    if len(built) != n:
        raise ValueError(f"{len(built)} rows built, {n} expected: a column is too short")
    return built


@functools.cache
def _builder(cls: Any, same: tuple[str, ...], names: tuple[str, ...]) -> Callable[..., Any]:
    """A function of the ``same`` values and the ``names`` columns that builds the rows as
    instances of the slotted dataclass ``cls``, through a mutable twin (see :func:`_bulk`)."""
    slots = getattr(cls, "__slots__", None)
    if slots != tuple(f.name for f in dataclasses.fields(cls)):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")  # pragma: no cover
    if not names:
        raise ValueError("give at least one column: it sets the number of rows")
    twin = mutable_twin(cls)
    column = {name: f"_{name}_column" for name in names}
    body = "".join(f"        _obj.{name} = {name}\n" for name in (*same, *names))
    source = (
        f"def build({', '.join((*same, *column.values()))}):\n"
        "    _rows = []\n"
        "    _append = _rows.append\n"
        f"    for {', '.join(names)}, in zip({', '.join(column.values())}):\n"
        "        _obj = _twin()\n"
        f"{body}"
        "        _obj.__class__ = _cls\n"
        "        _append(_obj)\n"
        "    return _rows\n"
    )
    scope: dict[str, Any] = {"_cls": cls, "_twin": twin}
    exec(source, scope)
    build: Callable[..., Any] = scope["build"]
    return build


class _IntColumn:
    """An integer column (a bar's trade count), read one row at a time as a Python int."""

    __slots__ = ("values",)

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def at(self, row: int) -> int:
        return int(self.values.item(row))


class _Filler:
    """Makes the fields a lazily built Kline left out, from the frame's columns, on first read
    (see :class:`mqlab.events.model._Deferred`): ``fill(kline, row)``. Even each column's tick
    size is found only then: a run that reads no high never scans the highs. Float columns
    become exact Decimals (:class:`_DecimalColumn`), integer ones (``trades``) ints."""

    __slots__ = ("columns", "first", "step", "values")

    def __init__(self, values: dict[str, np.ndarray], first: int = 0, step: int = 0) -> None:
        self.values = values
        self.columns: list[tuple[Callable[[Kline, Any], None], _DecimalColumn | _IntColumn]] = []
        # Given a step, each event's ``_row`` is its open time: the row is found from it.
        self.first, self.step = first, step

    def fill(self, kline: Kline, row: int) -> None:
        if self.step:
            row = (row - self.first) // self.step
        if not self.columns:
            self.columns = [
                (
                    getattr(Kline, name).__set__,
                    _IntColumn(values) if values.dtype.kind == "i" else _DecimalColumn(values),
                )
                for name, values in self.values.items()
            ]
        for set_field, column in self.columns:
            set_field(kline, column.at(row))


def iter_frame_klines(
    frame: pd.DataFrame,
    *,
    symbol: str = "BTCUSDT",
    platform: str = "binance",
    interval: str = "1m",
    feed_latency_ms: int = 0,
    chunk: int = 1024,
) -> Iterator[Kline]:
    """Kline events from a frame in Binance's columns, built ``chunk`` rows at a time as they
    are pulled: the lazy twin of :func:`frame_to_klines`, as :func:`iter_binance_csv` is for
    files. Only the floats exist ahead of the engine, never the future events.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    # chain hands out the bars of each chunk from C; the generator below runs once a chunk
    return chain.from_iterable(
        _frame_chunks(frame, symbol, platform, interval, feed_latency_ms, chunk)
    )


def _frame_chunks(
    frame: pd.DataFrame, symbol: str, platform: str, interval: str, feed_latency_ms: int, chunk: int
) -> Iterator[list[Kline]]:
    step = INTERVAL_MS[interval]
    n = len(frame)
    open_time = frame["open_time"].to_numpy(np.int64)
    # Making Decimals is most of what building the events costs, and a backtest mostly reads
    # closes (opens are mostly shared): the rest is made on first read (events.model._Deferred).
    # (copies: what the events hold must not change if the frame is changed afterwards)
    # The trade count is made on first read too: a Python int a bar is an allocation when
    # the count is above 256, and a backtest seldom reads it.
    deferred = {
        c: frame[c].to_numpy(float, copy=True)
        for c in KLINE_DEFERRED
        if c in frame and c != "trades"
    } | ({"trades": frame["count"].to_numpy(np.int64, copy=True)} if "count" in frame else {})
    decimals = {c: _DecimalColumn(frame[c].to_numpy(float)) for c in ("open", "close")}
    opens, closes = decimals.get("open"), decimals.get("close")
    # Each open is normally the previous bar's close: where it is, share that Decimal.
    reuse = None
    if (
        opens is not None
        and closes is not None
        and opens.ticks is not None
        and closes.ticks is not None
        and opens.places == closes.places
    ):
        reuse = np.concatenate(([False], opens.ticks[1:] == closes.ticks[:-1]))
    # The row of a deferred field is found from ``_row``. Where the bars follow one another
    # at the interval (the usual frame), it holds the bar's open time, an int the event holds
    # anyway, rather than a new int a bar for its row number.
    regular = n > 1 and bool(np.all(np.diff(open_time) == step))
    fill = (_Filler(deferred, int(open_time[0]), step) if regular else _Filler(deferred)).fill
    previous = ZERO  # the close before the chunk; unused at row 0, where reuse is False
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        times = open_time[rows]
        size = len(times)
        closed = (times + step).tolist()
        same: dict[str, Any] = {
            "platform": platform,
            "symbol": symbol,
            "interval": interval,
            "_source": fill,
        }
        opened = times.tolist()
        columns: dict[str, Iterable[Any]] = {
            "open_time": opened,
            "ts": closed,
            "recv_ts": (times + (step + feed_latency_ms)).tolist() if feed_latency_ms else closed,
            "_row": opened if regular else range(start, start + size),
        }
        if "trades" not in deferred:
            same["trades"] = 0
        if "quote_volume" not in deferred:
            same["quote_volume"] = ZERO
        for name, column in decimals.items():
            if name != "open" or reuse is None:
                columns[name] = column[rows]
        if reuse is not None and opens is not None:
            close: list[Decimal] = columns["close"]  # type: ignore[assignment]
            shared = [previous, *close[:-1]]
            for i in np.flatnonzero(~reuse[rows]).tolist():
                shared[i] = opens[start + i : start + i + 1][0]
            columns["open"], previous = shared, close[-1]
        with _gc_paused():  # events hold no reference cycles: nothing for the collector to find
            built = _bulk(Kline, size, columns, deferred, same)
        yield built


def frame_to_klines(
    frame: pd.DataFrame,
    *,
    symbol: str = "BTCUSDT",
    platform: str = "binance",
    interval: str = "1m",
    feed_latency_ms: int = 0,
) -> list[Kline]:
    """Kline events from a frame in Binance's columns; ``recv_ts = ts + feed_latency_ms``."""
    with _gc_paused():
        return list(
            iter_frame_klines(
                frame,
                symbol=symbol,
                platform=platform,
                interval=interval,
                feed_latency_ms=feed_latency_ms,
                chunk=max(len(frame), 1),
            )
        )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a long list of acyclic events is allocated.

    Every few hundred allocations CPython would otherwise scan the young objects, and now
    and then all of them, to look for reference cycles; events hold none, so the scans find
    nothing. This is the standard remedy for bulk loads; the collector is restored after.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def klines_to_frame(klines: Sequence[Kline]) -> pd.DataFrame:
    """A float DataFrame (open_time, OHLCV, ts) for numpy/pandas work such as :mod:`vectorised`."""
    return pd.DataFrame(
        {
            "open_time": np.fromiter((k.open_time for k in klines), np.int64, len(klines)),
            "open": np.fromiter((k.open for k in klines), float, len(klines)),
            "high": np.fromiter((k.high for k in klines), float, len(klines)),
            "low": np.fromiter((k.low for k in klines), float, len(klines)),
            "close": np.fromiter((k.close for k in klines), float, len(klines)),
            "volume": np.fromiter((k.volume for k in klines), float, len(klines)),
            "ts": np.fromiter((k.ts for k in klines), np.int64, len(klines)),
        }
    )
