"""Market data: a seeded synthetic generator and a loader for Binance's public kline CSV files.

There is no network here, so the chapters run on *synthetic* data that looks like Bitcoin's
1-minute bars: GARCH(1,1) volatility clustering, fat-tailed shocks, rare jumps, a daily volume
cycle, consistent OHLC (``open`` = previous ``close``, ``low <= open, close <= high``), all on
a 0.01 tick. Everything it makes is labelled synthetic. Real data plugs in through
:func:`iter_binance_csv`, which reads the files published at https://data.binance.vision.

Public API:

* :data:`SAMPLE_DATA`: the bundled ``data/synthetic_BTCUSDT_1m.csv`` (3 days, Binance format).
* :func:`synthetic_frame` (a DataFrame in Binance's 12 columns), :func:`synthetic_klines`,
  :func:`frame_to_klines` (and its lazy twin :func:`iter_frame_klines`),
  :func:`klines_to_frame`, :func:`write_binance_csv`.
* :func:`synthetic_book_events`: order-book snapshots interleaved with public trades; the book
  imbalance carries a little information about the next move, as in real books.
* :func:`iter_binance_csv` (lazy: the next bar is read only when asked for) and
  :func:`load_binance_csv`. Both accept ``.csv`` or Binance's ``.zip``, with or without the
  header row, with millisecond or (newer files) microsecond timestamps.
* any OHLCV data (Binance CSV, a CSV with a header such as Yahoo's, a DataFrame, Parquet)
  becomes :class:`~mqlab.bars.Bars` through :func:`mqlab.bars.load_bars`.
* :class:`DataError` for corrupt data (it names the file, line and column) and
  :class:`MissingDataError` for a missing file.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import gc
import io
import math
import re
import zipfile
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from itertools import chain, islice, repeat
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import numpy as np
import pandas as pd

from mqlab.events import INTERVAL_MS, KLINE_DEFERRED, ZERO, Kline, OrderBook, Side, Trade

__all__ = [
    "BINANCE_COLUMNS",
    "SAMPLE_DATA",
    "DataError",
    "MissingDataError",
    "frame_to_klines",
    "iter_binance_csv",
    "iter_frame_klines",
    "klines_to_frame",
    "load_binance_csv",
    "synthetic_book_events",
    "synthetic_frame",
    "synthetic_klines",
    "write_binance_csv",
]

SAMPLE_DATA = Path(__file__).parent / "data" / "synthetic_BTCUSDT_1m.csv"

#: Column names of Binance's kline CSV files (the header row newer files carry).
BINANCE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
_MINUTES_PER_DAY = 1440
_MICROS = 10**14  # a ms timestamp stays below this until the year 5138
_T = TypeVar("_T")


class DataError(ValueError):
    """Market data that cannot be used; the message names the file, line and what to do."""


class MissingDataError(DataError, FileNotFoundError):
    """The data file does not exist."""


# --- the synthetic generator -------------------------------------------------------------------


def _garch_returns(
    rng: np.random.Generator, n: int, sigma: float, alpha: float = 0.06, beta: float = 0.92
) -> tuple[np.ndarray, np.ndarray]:
    """Log returns with GARCH(1,1) variance and Student-t(5) shocks, and their volatility."""
    shocks = rng.standard_t(5, n) / math.sqrt(5 / 3)  # unit variance
    omega = sigma * sigma * (1 - alpha - beta)
    var = np.empty(n)
    ret = np.empty(n)
    v, r = sigma * sigma, 0.0
    for i, z in enumerate(shocks.tolist()):  # a recursion: numpy cannot vectorise it
        v = omega + alpha * r * r + beta * v
        r = math.sqrt(v) * z
        var[i], ret[i] = v, r
    return ret, np.sqrt(var)


def synthetic_frame(
    n: int = 4320,
    *,
    seed: int = 7,
    price: float = 42_000.0,
    start_ms: int = START_MS,
    interval: str = "1m",
    sigma: float = 0.0009,
    jump_rate: float = 1 / 1500,
) -> pd.DataFrame:
    """``n`` synthetic bars in Binance's 12 kline columns (times in ms, prices on a 0.01 tick).

    ``sigma`` is the long-run volatility per bar (0.09 %: roughly Bitcoin's, per minute);
    jumps of about 8 sigma arrive at ``jump_rate`` per bar. Same seed, same bars.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    step = INTERVAL_MS[interval]
    rng = np.random.default_rng(seed)
    ret, vol = _garch_returns(rng, n, sigma)
    jumps = rng.random(n) < jump_rate
    ret = ret + jumps * rng.normal(0.0, 8 * sigma, n)
    close = np.rint(price * np.exp(np.cumsum(ret)) * 100).astype(np.int64)  # ticks
    close = np.maximum(close, 1)
    open_ = np.concatenate(([round(price * 100)], close[:-1]))
    wick = np.abs(rng.normal(0.0, 0.6, (2, n))) * vol
    high = np.maximum(np.ceil(np.maximum(open_, close) * np.exp(wick[0])), np.maximum(open_, close))
    low = np.minimum(
        np.floor(np.minimum(open_, close) * np.exp(-wick[1])), np.minimum(open_, close)
    )
    low = np.maximum(low, 1)
    open_time = start_ms + step * np.arange(n, dtype=np.int64)
    minute = (open_time // 60_000) % _MINUTES_PER_DAY
    daily = 1.0 + 0.5 * np.sin(2 * np.pi * (minute - 480) / _MINUTES_PER_DAY)  # peaks ~14:00 UTC
    surprise = np.abs(ret) / vol
    volume = np.round(8.0 * daily * rng.lognormal(0.0, 0.5, n) * (0.5 + surprise), 5)
    typical = (open_ + high + low + close) / 400
    taker = np.clip(0.5 + 0.3 * np.tanh(ret / vol) + rng.normal(0, 0.05, n), 0.0, 1.0)
    taker_volume = np.round(volume * taker, 5)
    return pd.DataFrame(
        {
            "open_time": open_time,
            "open": open_ / 100,
            "high": high / 100,
            "low": low / 100,
            "close": close / 100,
            "volume": volume,
            "close_time": open_time + step - 1,
            "quote_volume": np.round(volume * typical, 8),
            "count": rng.poisson(volume * 40) + 1,
            "taker_buy_volume": taker_volume,
            "taker_buy_quote_volume": np.round(taker_volume * typical, 8),
            "ignore": 0,
        }
    )


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
        # unit * ticks, e.g. 0.01 * 4200012 = 42000.12: exact, and with the column's exponent
        return list(map(self.unit.__mul__, map(Decimal, self.ticks[rows].tolist())))

    def at(self, row: int) -> Decimal:
        """The Decimal of one row, the same as ``self[row : row + 1][0]``."""
        if self.ticks is None:
            return Decimal(repr(self.floats.item(row)))
        return self.unit.__mul__(Decimal(self.ticks.item(row)))


def _whole(values: np.ndarray, places: int) -> bool:
    """Whether every value is a whole number of 10**-places, up to float noise."""
    scaled = values * 10.0**places
    return bool(np.all(np.abs(scaled - np.rint(scaled)) <= np.abs(scaled) * 1e-14 + 1e-9))


def _bulk(
    cls: type[_T], n: int, columns: dict[str, Iterable[Any]], deferred: Iterable[str] = ()
) -> list[_T]:
    """``n`` instances of a frozen, slotted dataclass, built from one column per field.

    Frozen events refuse ``self.x = ...``, so their ``__init__`` sets each slot through its
    descriptor, a C call of about 50 ns a field. Here each row is built as an instance of a
    mutable *twin* class with exactly the same slots, whose ``__init__`` stores the fields
    with plain (specialised, ~5 ns) attribute stores and then turns the object into ``cls``
    by assigning ``__class__``, which CPython allows between classes of identical layout.
    ``map`` calls it row by row from C. The results are ordinary ``cls`` instances, equal to
    ``cls(...)`` with the same values and as immutable (tests check both).

    Every field must be given, except those ``deferred``: they are made on first read by the
    ``_source`` column (Kline only, see :class:`mqlab.events._Deferred`).
    """
    fields = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    left_out = set(deferred)
    names = tuple(f for f in fields if f not in left_out) + (("_source",) if left_out else ())
    for name in names:
        values = columns[name]
        if isinstance(values, list) and len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values for {n} rows")
    build: Callable[..., _T] = _twin(cast("Hashable", cls), names)
    return list(islice(map(build, *(columns[name] for name in names)), n))


@functools.cache
def _twin(cls: Any, names: tuple[str, ...]) -> Callable[..., Any]:
    """A mutable class laid out like the slotted dataclass ``cls``, whose ``__init__`` sets
    ``names`` and then makes the object a ``cls`` instance (see :func:`_bulk`)."""
    slots = getattr(cls, "__slots__", None)
    if slots != tuple(f.name for f in dataclasses.fields(cls)):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")  # pragma: no cover
    twin = type(f"_{cls.__name__}Twin", cls.__bases__, {"__slots__": slots})
    body = "".join(f"    self.{name} = {name}\n" for name in names)
    scope: dict[str, Any] = {"_cls": cls}
    exec(f"def __init__(self, {', '.join(names)}):\n{body}    self.__class__ = _cls\n", scope)
    twin.__init__ = scope["__init__"]  # type: ignore[misc]
    return twin


class _Filler:
    """Makes the fields a lazily built Kline left out, from the frame's columns, on first read
    (see :class:`mqlab.events._Deferred`): ``fill(kline, row)``. Even each column's tick
    size is found only then: a run that reads no high never scans the highs."""

    __slots__ = ("columns", "floats")

    def __init__(self, floats: dict[str, np.ndarray]) -> None:
        self.floats = floats
        self.columns: list[tuple[Callable[[Kline, Decimal], None], _DecimalColumn]] = []

    def fill(self, kline: Kline, row: int) -> None:
        if not self.columns:
            self.columns = [
                (getattr(Kline, name).__set__, _DecimalColumn(values))
                for name, values in self.floats.items()
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
    # closes (opens are mostly shared): the rest is made on first read (events._Deferred).
    # (copies: what the events hold must not change if the frame is changed afterwards)
    deferred = {c: frame[c].to_numpy(float, copy=True) for c in KLINE_DEFERRED if c in frame}
    decimals = {c: _DecimalColumn(frame[c].to_numpy(float)) for c in ("open", "close")}
    counts = frame["count"].to_numpy(np.int64) if "count" in frame else None
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
    fill = _Filler(deferred).fill
    previous = ZERO  # the close before the chunk; unused at row 0, where reuse is False
    for start in range(0, n, chunk):
        rows = slice(start, min(start + chunk, n))
        times = open_time[rows]
        size = len(times)
        closed = (times + step).tolist()
        columns: dict[str, Iterable[Any]] = {
            "platform": repeat(platform, size),
            "symbol": repeat(symbol, size),
            "interval": repeat(interval, size),
            "open_time": times.tolist(),
            "ts": closed,
            "recv_ts": (times + (step + feed_latency_ms)).tolist() if feed_latency_ms else closed,
            "trades": repeat(0, size) if counts is None else counts[rows].tolist(),
            "_source": zip(repeat(fill), range(start, start + size)),
        }
        if "quote_volume" not in deferred:
            columns["quote_volume"] = repeat(ZERO, size)
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
            built = _bulk(Kline, size, columns, deferred)
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


def synthetic_klines(n: int = 4320, *, seed: int = 7, symbol: str = "BTCUSDT", **kw) -> list[Kline]:
    """``frame_to_klines(synthetic_frame(n, seed=seed))``: n synthetic 1-minute Kline events."""
    latency = kw.pop("feed_latency_ms", 0)
    interval = kw.get("interval", "1m")
    frame = synthetic_frame(n, seed=seed, **kw)
    return frame_to_klines(frame, symbol=symbol, interval=interval, feed_latency_ms=latency)


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


def write_binance_csv(frame: pd.DataFrame, path: str | Path, *, note: str | None = None) -> Path:
    """Write a frame as a headerless Binance kline CSV; ``note`` becomes a leading ``#`` line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        if note:
            out.write(f"# {note}\n")
        fmt = {"open": "%.2f", "high": "%.2f", "low": "%.2f", "close": "%.2f", "volume": "%.5f"}
        for row in frame[list(BINANCE_COLUMNS)].itertuples(index=False):
            cells = [
                (fmt[c] % v) if c in fmt else (repr(float(v)) if isinstance(v, float) else str(v))
                for c, v in zip(BINANCE_COLUMNS, row, strict=True)
            ]
            out.write(",".join(cells) + "\n")
    return path


# --- synthetic order books and trades ----------------------------------------------------------


def synthetic_book_events(
    n: int = 2000,
    *,
    seed: int = 11,
    symbol: str = "BTCUSDT",
    platform: str = "binance",
    price: float = 42_000.0,
    levels: int = 10,
    every_ms: int = 1000,
    start_ms: int = START_MS,
    feed_latency_ms: int = 0,
    trades: bool = True,
) -> list[OrderBook | Trade]:
    """``n`` synthetic depth snapshots (``levels`` a side) with public trades in between.

    The imbalance of resting size (more bids than asks) follows a persistent AR(1) process and
    tilts the next move of the mid price, as real order-book imbalance does, weakly.
    Events are in time order; ``recv_ts = ts + feed_latency_ms``.
    """
    rng = np.random.default_rng(seed)
    tick = 1  # prices in ticks of 0.01
    ret, vol = _garch_returns(rng, n, 0.00012)
    imbalance = np.empty(n)
    x = 0.0
    for i, e in enumerate(rng.normal(0.0, 0.25, n).tolist()):
        x = 0.9 * x + e
        imbalance[i] = math.tanh(x)
    drift = np.concatenate(([0.0], 0.5 * imbalance[:-1] * vol[1:]))
    mid = price * 100 * np.exp(np.cumsum(ret + drift))
    spread = rng.choice([1, 1, 1, 2, 3], n)
    size = rng.lognormal(-1.0, 0.8, (n, 2, levels))
    gaps = rng.choice([1, 1, 2, 3], (n, 2, levels))
    out: list[OrderBook | Trade] = []
    trade_id = 1
    cent, lot = Decimal("0.01"), Decimal("0.00001")
    for i in range(n):
        ts = start_ms + i * every_ms
        bid0 = int(mid[i] - spread[i] / 2)
        ask0 = bid0 + int(spread[i]) * tick
        bid_px = bid0 - np.concatenate(([0], np.cumsum(gaps[i, 0, 1:])))
        ask_px = ask0 + np.concatenate(([0], np.cumsum(gaps[i, 1, 1:])))
        tilt = imbalance[i]
        bid_q = np.maximum(np.rint(size[i, 0] * (1 + tilt) * 1e5), 1).astype(np.int64)
        ask_q = np.maximum(np.rint(size[i, 1] * (1 - tilt) * 1e5), 1).astype(np.int64)
        bids = tuple(
            (Decimal(p) * cent, Decimal(q) * lot)
            for p, q in zip(bid_px.tolist(), bid_q.tolist(), strict=True)
        )
        asks = tuple(
            (Decimal(p) * cent, Decimal(q) * lot)
            for p, q in zip(ask_px.tolist(), ask_q.tolist(), strict=True)
        )
        out.append(OrderBook(platform, symbol, bids, asks, i + 1, ts, ts + feed_latency_ms))
        if not trades:
            continue
        for _ in range(int(rng.poisson(2.0))):
            buy = rng.random() < (1 + tilt) / 2
            t = ts + 1 + int(rng.integers(0, every_ms - 1)) if every_ms > 2 else ts
            px = asks[0][0] if buy else bids[0][0]
            qty = Decimal(max(1, round(float(rng.lognormal(-3.0, 1.0)) * 1e5))) * lot
            side = Side.BUY if buy else Side.SELL
            out.append(Trade(platform, symbol, trade_id, px, qty, side, t, t + feed_latency_ms))
            trade_id += 1
    out.sort(key=lambda e: (e.recv_ts, isinstance(e, Trade)))
    return out


# --- Binance CSV loader ------------------------------------------------------------------------

_NAME = re.compile(r"([A-Z0-9]{4,20})[-_](" + "|".join(INTERVAL_MS) + r")(?=[-_.])")


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    if path.suffix != ".zip":
        with path.open(newline="") as text:
            yield text
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not a zip archive; download it again") from None
    with archive:
        members = [m for m in archive.namelist() if m.endswith(".csv")]
        if not members:
            raise DataError(f"{path}: the zip archive holds no .csv file")
        with io.TextIOWrapper(archive.open(members[0]), newline="") as text:
            yield text


def _guess(path: Path, symbol: str | None, interval: str | None) -> tuple[str, str | None]:
    found = _NAME.search(path.name)
    if symbol is None:
        if found is None:
            raise DataError(
                f"{path}: cannot tell the symbol from the file name; pass symbol='BTCUSDT' "
                "(or name the file like Binance does: BTCUSDT-1m-2024-01-01.csv)"
            )
        symbol = found.group(1)
    if interval is None and found is not None:
        interval = found.group(2)
    return symbol, interval


def iter_binance_csv(
    path: str | Path,
    *,
    symbol: str | None = None,
    interval: str | None = None,
    platform: str = "binance",
    feed_latency_ms: int = 0,
) -> Iterator[Kline]:
    """Yield Kline events from a Binance kline CSV (or .zip), one line at a time.

    Symbol and interval come from the file name (``BTCUSDT-1m-2024-01-01.csv`` or
    ``synthetic_BTCUSDT_1m.csv``) unless given; otherwise the interval is read from the first
    row. Lines starting with ``#`` are comments. Microsecond timestamps (Binance spot files
    from 2025 on) are converted to milliseconds. A bad line raises :class:`DataError` when it
    is reached, and so does a file that turns out to hold no bars.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the path of one kline CSV (or .zip) inside it")
    if not path.is_file():
        raise MissingDataError(
            f"data file {path} not found; give the path to a Binance kline CSV (from "
            "https://data.binance.vision), or leave --data out to use the bundled synthetic "
            f"sample {SAMPLE_DATA.name}"
        )
    symbol, interval = _guess(path, symbol, interval)
    return _read(path, symbol, interval, platform, feed_latency_ms)


def _read(
    path: Path, symbol: str, interval: str | None, platform: str, latency: int
) -> Iterator[Kline]:
    try:
        yield from _parse_rows(path, symbol, interval, platform, latency)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a text CSV file (undecodable byte at offset {exc.start}); give a "
            "Binance kline .csv, or the .zip as downloaded"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None


def _number(text: str, path: Path, line_no: int, column: int) -> Decimal:
    """A price or quantity from a CSV cell: exact, finite and not negative."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise DataError(
            f"{path}, line {line_no}, column {BINANCE_COLUMNS[column]}: not a price or "
            f"quantity: {text!r}"
        )
    return value


def _parse_rows(
    path: Path, symbol: str, interval: str | None, platform: str, latency: int
) -> Iterator[Kline]:
    step = INTERVAL_MS[interval] if interval else None
    last_open = -1
    close_text, close = "", ZERO  # the previous bar's close: usually this bar's open
    with _open_text(path) as text:
        for line_no, row in enumerate(csv.reader(text), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != len(BINANCE_COLUMNS):
                raise DataError(
                    f"{path}, line {line_no}: expected the {len(BINANCE_COLUMNS)} columns of a "
                    f"Binance kline file ({', '.join(BINANCE_COLUMNS)}), found {len(row)}"
                )
            try:
                open_time, close_time, count = int(row[0]), int(row[6]), int(row[8])
            except ValueError:
                if last_open < 0 and row[0].strip().lower() in {"open_time", "open time"}:
                    continue  # the header row newer files carry
                where = f"{path}, line {line_no}"
                if not row[0].strip().lstrip("-").isdigit():
                    raise DataError(
                        f"{where}, column open_time: not a timestamp: {row[0]!r}"
                    ) from None
                raise DataError(
                    f"{where}: open_time, close_time and count must be integers"
                ) from None
            if open_time >= _MICROS:
                open_time, close_time = open_time // 1000, close_time // 1000
            o = close if row[1] == close_text else _number(row[1], path, line_no, 1)
            h = _number(row[2], path, line_no, 2)
            low = _number(row[3], path, line_no, 3)
            c = _number(row[4], path, line_no, 4)
            v = _number(row[5], path, line_no, 5)
            q = _number(row[7], path, line_no, 7)
            close_text, close = row[4], c
            if not (low <= o and low <= c and h >= o and h >= c and low > 0):
                raise DataError(
                    f"{path}, line {line_no}: inconsistent bar "
                    "(need 0 < low <= open, close <= high)"
                )
            span = close_time - open_time + 1
            if step is None:
                interval = next((k for k, ms in INTERVAL_MS.items() if ms == span), None)
                if interval is None:
                    raise DataError(
                        f"{path}, line {line_no}: bar length {span} ms is no Binance interval"
                    )
                step = span
            elif span != step:
                raise DataError(
                    f"{path}, line {line_no}: close_time - open_time is {span} ms, not the "
                    f"{interval} interval; pass interval= if the file name misleads"
                )
            if open_time <= last_open:
                raise DataError(
                    f"{path}, line {line_no}: open_time {open_time} is not after the previous "
                    f"bar's {last_open}; sort the file by time and remove duplicates"
                )
            last_open = open_time
            ts = open_time + step
            assert interval is not None
            yield Kline(
                platform, symbol, interval, open_time, o, h, low, c, v, ts, ts + latency, q, count
            )
    if last_open < 0:
        raise DataError(f"{path}: no bars in the file; is it a Binance kline CSV?")


def load_binance_csv(path: str | Path, **kw) -> list[Kline]:
    """All of :func:`iter_binance_csv` as a list (a file without bars raises DataError)."""
    bars = iter_binance_csv(path, **kw)
    with _gc_paused():
        return list(bars)
