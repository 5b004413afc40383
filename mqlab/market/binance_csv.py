"""Binance's public kline CSV files (https://data.binance.vision): read and write them.

:func:`iter_binance_csv` (lazy: the next bar is read only when asked for) and
:func:`load_binance_csv` accept ``.csv`` or Binance's ``.zip``, with or without the header row,
with millisecond or (newer files) microsecond timestamps; :func:`write_binance_csv` writes a
frame as a headerless file; :data:`SAMPLE_DATA` is the bundled synthetic sample in that
format. :class:`DataError` names the file, line and column of corrupt data;
:class:`MissingDataError` is a missing file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

import pandas as pd

from mqlab.events import INTERVAL_MS, ZERO, Kline
from mqlab.market.frames import _gc_paused

__all__ = [
    "BINANCE_COLUMNS",
    "SAMPLE_DATA",
    "DataError",
    "MissingDataError",
    "iter_binance_csv",
    "load_binance_csv",
    "write_binance_csv",
]

#: The bundled sample: 3 days of synthetic BTCUSDT 1m bars in Binance's format.
SAMPLE_DATA = Path(__file__).parents[1] / "data" / "synthetic_BTCUSDT_1m.csv"

#: Column names of Binance's kline CSV files (the header row newer files carry).
#: The bundled sample: 3 days of synthetic BTCUSDT 1m bars in Binance's format.
SAMPLE_DATA = Path(__file__).parents[1] / "data" / "synthetic_BTCUSDT_1m.csv"

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
_MICROS = 10**14  # a ms timestamp stays below this until the year 5138


class DataError(ValueError):
    """Market data that cannot be used; the message names the file, line and what to do."""


class MissingDataError(DataError, FileNotFoundError):
    """The data file does not exist."""


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


def _data_file(path: Path, one: str, give: str) -> Path:
    """``path`` if it is a file; else a DataError (a folder) or MissingDataError, each saying
    what to give instead (``one`` file kind inside a folder, or ``give``)."""
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the path of {one} inside it")
    if not path.is_file():
        raise MissingDataError(f"data file {path} not found; give {give}")
    return path


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
    path = _data_file(
        Path(path),
        "one kline CSV (or .zip)",
        "the path to a Binance kline CSV (from https://data.binance.vision), or leave --data "
        f"out to use the bundled synthetic sample {SAMPLE_DATA.name}",
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
