"""Bring your own bars: any OHLCV CSV, a pandas DataFrame or a Parquet file, as Kline events.

:func:`load_bars` (also importable as :func:`mqlab.market.load_bars`) reads

* a Binance kline CSV or ``.zip`` (what :func:`mqlab.market.load_binance_csv` reads);
* a CSV with a header row, such as Yahoo Finance's ``Date,Open,High,Low,Close,Adj Close,Volume``:
  column names are matched case-insensitively (``date``/``datetime``/``time``/``timestamp``,
  ``open``, ``high``, ``low``, ``close``, optional ``volume``; others are ignored), dates are
  parsed (naive times are taken as UTC), prices are read exactly as written (Decimal);
* a pandas DataFrame with a DatetimeIndex (what yfinance, backtesting.py and vectorbt use),
  or with a date column;
* a Parquet file, when pyarrow is installed.

Each row becomes a :class:`~mqlab.events.Kline` that opened at the row's time and closes one
interval later. The interval is given, or the smallest gap between rows (daily stock bars skip
weekends, yet are ``1d``). Every problem raises :class:`~mqlab.market.DataError` with one line
that names the file, the line (or DataFrame row) and what was expected: a missing column, a
price that is not a number, a time that is not after the previous one, an empty or a binary
file.

Symbols that do not end in a known quote asset (``AAPL``) need no renaming: the quote asset is
given (``quote="USD"``), or read from the symbol (``BTCUSDT`` → ``USDT``), or else ``USD``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd

from mqlab.events import INTERVAL_MS, Kline
from mqlab.market import (
    BINANCE_COLUMNS,
    DataError,
    MissingDataError,
    _gc_paused,
    _guess,
    load_binance_csv,
)
from mqlab.venue import split_symbol

__all__ = ["SAMPLE_STOCK", "Bars", "load_bars", "synthetic_daily_frame", "write_yahoo_csv"]

#: The bundled synthetic daily stock bars, in Yahoo Finance's CSV format.
SAMPLE_STOCK = Path(__file__).parent / "data" / "synthetic_ACME_1d.csv"
#: The learner's strategy file that chapter 07 runs on them.
SAMPLE_STRATEGY = Path(__file__).parent / "data" / "sma_long_short.py"

#: Accepted names (lower case) for each column; the first column found wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("date", "datetime", "time", "timestamp", "open_time", "open time", "date/time"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close", "price", "last"),
    "volume": ("volume", "vol"),
}
_REQUIRED = ("time", "open", "high", "low", "close")
_SYMBOL = re.compile(r"[A-Za-z0-9_\-]{1,30}")
_TICKER_FILE = re.compile(r"[A-Za-z0-9\-]{1,12}")
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Bars(Sequence[Kline]):
    """Kline events of one symbol, in time order, with what they are: a Backtest source."""

    klines: list[Kline] = field(repr=False)
    symbol: str
    interval: str
    quote: str
    #: Where they came from: a file name, or ``DataFrame``.
    source: str
    #: Whether the data says it is synthetic (its name or a ``#`` comment line).
    synthetic: bool = False

    @overload
    def __getitem__(self, index: int) -> Kline: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Kline]: ...
    def __getitem__(self, index: int | slice) -> Kline | Sequence[Kline]:
        return self.klines[index]

    def __len__(self) -> int:
        return len(self.klines)

    def __iter__(self) -> Iterator[Kline]:
        return iter(self.klines)

    @property
    def label(self) -> str:
        """``AAPL 1d bars from AAPL.csv``, with ``(synthetic)`` when they are."""
        tag = " (synthetic)" if self.synthetic else ""
        return f"{self.symbol} {self.interval} bars from {self.source}{tag}"

    def frame(self) -> pd.DataFrame:
        """The bars as a float DataFrame indexed by open time (UTC): for plots and pandas."""
        index = pd.to_datetime([k.open_time for k in self.klines], unit="ms", utc=True)
        return pd.DataFrame(
            {
                c: np.fromiter((float(getattr(k, c)) for k in self.klines), float, len(self))
                for c in ("open", "high", "low", "close", "volume")
            },
            index=index,
        )


def load_bars(
    source: str | Path | pd.DataFrame,
    *,
    symbol: str | None = None,
    interval: str | None = None,
    quote: str | None = None,
    platform: str = "binance",
) -> Bars:
    """Kline events from a CSV (Binance's or one with a header), a DataFrame or Parquet.

    ``symbol``, ``interval`` and ``quote`` override what the file name or the data say.
    Raises :class:`~mqlab.market.DataError` (one line: file, line, what was expected).
    """
    if interval is not None and interval not in INTERVAL_MS:
        raise DataError(f"unknown interval {interval!r}; use one of {', '.join(INTERVAL_MS)}")
    if isinstance(source, pd.DataFrame):
        name = symbol or "ASSET"
        return _finish(_from_frame(source, "DataFrame", "row"), name, interval, quote, platform)
    path = Path(source)
    if path.is_dir():
        raise DataError(f"{path} is a folder; give the path of one data file inside it")
    if not path.is_file():
        raise MissingDataError(
            f"data file {path} not found; give a CSV (Binance klines, or with a header such as "
            "Date,Open,High,Low,Close,Volume), a .parquet file, or leave --data out"
        )
    head = path.read_bytes()[:8192] if path.stat().st_size else b""
    if not head:
        raise DataError(
            f"{path}: empty file; expected a header line such as Date,Open,High,Low,Close,Volume"
        )
    if path.suffix.lower() in {".parquet", ".pq"} or head.startswith(b"PAR1"):
        rows = _from_frame(_read_parquet(path), str(path), "row")
        return _finish(rows, _symbol_for(path, symbol), interval, quote, platform)
    if path.suffix.lower() == ".zip" or head.startswith(b"PK\x03\x04"):
        return _binance(path, symbol, interval, quote, platform)
    _check_text(path, head)
    first = _first_row(path)
    if first is None:
        raise DataError(f"{path}: no data, only blank or # comment lines; expected a header line")
    line_no, cells = first
    if len(cells) == len(BINANCE_COLUMNS) and (
        cells[0].strip().isdigit() or cells[0].strip().lower() in {"open_time", "open time"}
    ):
        return _binance(path, symbol, interval, quote, platform)
    rows = _from_csv(path, line_no, cells)
    return _finish(rows, _symbol_for(path, symbol), interval, quote, platform)


# --- the sources ---------------------------------------------------------------------------------


@dataclass
class _Rows:
    """Parsed rows before they become events: times in ms, exact prices, where each came from."""

    where: str  # a file name, or "DataFrame"
    unit: str  # "line" or "row"
    numbers: list[int]  # the line (or row) number of each bar
    times: np.ndarray  # int64 ms
    columns: dict[str, list[Decimal]]
    synthetic: bool = False

    def at(self, i: int) -> str:
        return f"{self.where}, {self.unit} {self.numbers[i]}"


def _binance(
    path: Path, symbol: str | None, interval: str | None, quote: str | None, platform: str
) -> Bars:
    name, guessed = _guess(path, symbol, interval)
    klines = load_binance_csv(path, symbol=name, interval=guessed, platform=platform)
    return Bars(
        klines,
        name,
        klines[0].interval,
        _quote_for(name, quote),
        path.name,
        "synthetic" in path.name.lower() or _commented_synthetic(path),
    )


def _check_text(path: Path, head: bytes) -> None:
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataError(
            f"{path}: a binary file (a NUL byte at offset {nul}), not a CSV; "
            "give a text CSV, a Binance .zip, or a .parquet file"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut in two by the 8 kB window
            raise DataError(
                f"{path}: not a UTF-8 text file (undecodable byte at offset {exc.start}); "
                "give a text CSV, a Binance .zip, or a .parquet file"
            ) from None


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every row that is neither blank nor a ``#`` comment."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as text:
            reader = csv.reader(text)
            for cells in reader:
                if cells and any(c.strip() for c in cells) and not cells[0].startswith("#"):
                    yield reader.line_num, cells
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a UTF-8 text file (undecodable byte at offset {exc.start})"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None


def _first_row(path: Path) -> tuple[int, list[str]] | None:
    return next(_lines(path), None)


def _commented_synthetic(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as text:
        for line in text:
            if not line.startswith("#"):
                return False
            if "synthetic" in line.lower():
                return True
    return False


def _match_columns(names: Sequence[str], where: str) -> dict[str, int]:
    """Our column -> its position among ``names``; DataError naming what is missing."""
    lowered = [str(n).strip().lower() for n in names]
    found: dict[str, int] = {}
    for ours, aliases in ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                found[ours] = lowered.index(alias)
                break
    missing = [c for c in _REQUIRED if c not in found]
    if missing:
        wanted = ", ".join(("date" if c == "time" else c) for c in missing)
        raise DataError(
            f"{where}: missing column(s) {wanted}; expected date, open, high, low, close "
            f"(and optionally volume), in any case; found: {', '.join(map(str, names)) or 'none'}"
        )
    return found


def _from_csv(path: Path, header_line: int, header: list[str]) -> _Rows:
    if all(_is_number(c) for c in header if c.strip()):
        raise DataError(
            f"{path}, line {header_line}: expected a header row naming the columns "
            f"(e.g. Date,Open,High,Low,Close,Volume), found data: {','.join(header)[:60]!r}"
        )
    columns = _match_columns(header, f"{path}, line {header_line} (the header)")
    numbers: list[int] = []
    stamps: list[str] = []
    values: dict[str, list[Decimal]] = {c: [] for c in columns if c != "time"}
    width = max(columns.values()) + 1
    for line_no, cells in _lines(path):
        if line_no <= header_line:
            continue
        if len(cells) < width:
            raise DataError(
                f"{path}, line {line_no}: expected {len(header)} columns like the header, "
                f"found {len(cells)}"
            )
        numbers.append(line_no)
        stamps.append(cells[columns["time"]].strip())
        for name, column in values.items():
            column.append(_decimal(cells[columns[name]], f"{path}, line {line_no}", name))
    if not numbers:
        raise DataError(f"{path}: no bars after the header on line {header_line}")
    times = _parse_times(stamps, lambda i: f"{path}, line {numbers[i]}")
    return _Rows(str(path), "line", numbers, times, values, _commented_synthetic(path))


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow  # noqa: F401  (only to say clearly what is missing)
    except ImportError:
        raise DataError(
            f"{path}: reading Parquet needs pyarrow (pip install pyarrow); or save it as CSV"
        ) from None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None


def _from_frame(frame: pd.DataFrame, where: str, unit: str) -> _Rows:
    if isinstance(frame.columns, pd.MultiIndex):  # yfinance: (Price, Ticker) columns
        tickers = frame.columns.get_level_values(-1).unique()
        if len(tickers) > 1:
            raise DataError(
                f"{where}: columns for several tickers ({', '.join(map(str, tickers))}); "
                "select one, e.g. frame.xs('AAPL', axis=1, level=-1)"
            )
        frame = frame.droplevel(-1, axis=1)
    if len(frame) == 0:
        raise DataError(f"{where}: no rows; expected one bar per row")
    names = [str(c) for c in frame.columns]
    has_index_time = isinstance(frame.index, pd.DatetimeIndex)
    columns = _match_columns(
        names + (["date"] if has_index_time else []),
        f"{where} (columns)"
        + ("" if has_index_time else ": give it a DatetimeIndex or a date column"),
    )
    numbers = list(range(len(frame)))

    def at(i: int) -> str:
        return f"{where}, {unit} {i} ({frame.index[i]})"

    if has_index_time and columns["time"] == len(names):
        index = frame.index
        if index.hasnans:
            bad = int(np.flatnonzero(index.isna())[0])
            raise DataError(f"{at(bad)}: missing timestamp in the index")
        utc = index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
        times = _to_ms(utc)
    else:
        stamps = frame.iloc[:, columns["time"]]
        times = _parse_times([str(s) for s in stamps.tolist()], at, stamps)
    values: dict[str, list[Decimal]] = {}
    for name, position in columns.items():
        if name == "time":
            continue
        raw = frame.iloc[:, position].tolist()
        values[name] = [_decimal(v, at(i), name) for i, v in enumerate(raw)]
    return _Rows(where, unit, numbers, times, values)


# --- checks and conversion ---------------------------------------------------------------------


def _is_number(text: str) -> bool:
    try:
        Decimal(text.strip())
    except InvalidOperation:
        return False
    return True


def _decimal(value: Any, where: str, column: str) -> Decimal:
    """An exact price or volume: text as written, a float by its shortest repr."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, float | np.floating):
        number = Decimal(repr(float(value))) if np.isfinite(value) else Decimal("NaN")
    elif isinstance(value, int | np.integer) and not isinstance(value, bool):
        number = Decimal(int(value))
    else:
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            number = Decimal("NaN")
    if not number.is_finite() or number < 0 or (column != "volume" and number == 0):
        expected = "a number >= 0" if column == "volume" else "a price > 0"
        raise DataError(f"{where}, column {column}: expected {expected}, found {value!r}")
    return number


def _to_ms(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.as_unit("ms").asi8, dtype=np.int64)


def _parse_times(stamps: list[str], at: Any, raw: Any = None) -> np.ndarray:
    """Epoch numbers (s, ms or µs) or date strings, to int64 ms UTC; DataError naming the row."""
    if stamps and all(s.isdigit() for s in stamps):
        numbers = np.array([int(s) for s in stamps], dtype=np.int64)
        if numbers.max() < 10**11:  # seconds (ms reach 10**11 in 1973)
            return numbers * 1000
        return numbers // 1000 if numbers.max() >= 10**14 else numbers
    try:
        parsed = pd.to_datetime(stamps, utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError):
        parsed = None
    if parsed is None or parsed.hasnans:
        for i, text in enumerate(stamps):
            try:
                ok = not pd.isna(pd.to_datetime(text, utc=True))
            except (ValueError, TypeError, OverflowError):
                ok = False
            if not ok:
                raise DataError(
                    f"{at(i)}, column date: expected a date or time such as 2024-01-31 or "
                    f"2024-01-31 14:30:00, found {text!r}"
                )
    assert parsed is not None
    return _to_ms(pd.DatetimeIndex(parsed))


def _finish(
    rows: _Rows, symbol: str, interval: str | None, quote: str | None, platform: str
) -> Bars:
    if not _SYMBOL.fullmatch(symbol):
        raise DataError(f"symbol {symbol!r}: use letters, digits, '_' or '-' (e.g. BRK-B)")
    times = rows.times
    steps = np.diff(times)
    if len(steps) and steps.min() <= 0:
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        when, before = _stamp(times[i]), _stamp(times[i - 1])
        if steps[i - 1] == 0:
            raise DataError(
                f"{rows.at(i)}: duplicate timestamp {when} (also at {rows.unit} "
                f"{rows.numbers[i - 1]}); remove one of them"
            )
        raise DataError(
            f"{rows.at(i)}: timestamp {when} is before the previous bar's {before}; sort the "
            "data by time"
        )
    if interval is None:
        if not len(steps):
            raise DataError(f"{rows.where}: one bar only; pass interval= (e.g. '1d') to use it")
        smallest = int(steps.min())
        interval = next((k for k, ms in INTERVAL_MS.items() if ms == smallest), None)
        if interval is None:
            i = int(np.argmin(steps)) + 1
            raise DataError(
                f"{rows.at(i)}: bars {pd.Timedelta(milliseconds=smallest)} apart are no known "
                f"interval ({', '.join(INTERVAL_MS)}); pass interval="
            )
    step = INTERVAL_MS[interval]
    if len(steps) and steps.min() < step:
        i = int(np.argmin(steps)) + 1
        raise DataError(
            f"{rows.at(i)}: this bar starts {int(steps[i - 1]) / 1000:g} s after the previous "
            f"one, less than one {interval} interval; wrong interval?"
        )
    cols = rows.columns
    volume = cols.get("volume") or [_ZERO] * len(times)
    klines: list[Kline] = []
    with _gc_paused():
        for i, (t, o, h, low, c, v) in enumerate(
            zip(
                times.tolist(),
                cols["open"],
                cols["high"],
                cols["low"],
                cols["close"],
                volume,
                strict=True,
            )
        ):
            if not (low <= o <= h and low <= c <= h):
                raise DataError(
                    f"{rows.at(i)}: inconsistent bar (open {o}, high {h}, low {low}, close {c}); "
                    "expected low <= open, close <= high"
                )
            klines.append(Kline(platform, symbol, interval, t, o, h, low, c, v, t + step, t + step))
    source = Path(rows.where).name
    synthetic = rows.synthetic or "synthetic" in source.lower()
    return Bars(klines, symbol, interval, _quote_for(symbol, quote), source, synthetic)


def _stamp(ms: int) -> str:
    text = pd.Timestamp(int(ms), unit="ms", tz="UTC").isoformat()
    return text.removesuffix("+00:00").removesuffix("T00:00:00")


def _symbol_for(path: Path, symbol: str | None) -> str:
    """The given symbol, else one read from a Binance-style name, else a ticker-like stem."""
    if symbol is not None:
        return symbol
    try:
        return _guess(path, None, None)[0]
    except DataError:
        pass
    if _TICKER_FILE.fullmatch(path.stem):
        return path.stem.upper()
    raise DataError(
        f"{path}: cannot tell the symbol from the file name; pass symbol='AAPL' (--symbol AAPL)"
    )


def _quote_for(symbol: str, quote: str | None) -> str:
    if quote is not None:
        return quote
    try:
        return split_symbol(symbol)[1]
    except ValueError:
        return "USD"


# --- a synthetic stock, Yahoo-style -------------------------------------------------------------


def synthetic_daily_frame(
    n: int = 756,
    *,
    seed: int = 3,
    price: float = 100.0,
    start: str = "2021-01-04",
    sigma: float = 0.015,
    drift: float = 0.0003,
) -> pd.DataFrame:
    """``n`` synthetic daily bars of a stock, weekdays only, in Yahoo Finance's columns
    (``Date, Open, High, Low, Close, Adj Close, Volume``; prices on a 0.01 tick).

    Log returns are normal with ``sigma`` a day (1.5 %: a large-cap stock), with regimes of
    drift that flip sign now and then so that trend followers have something to find; each
    open gaps a little from the previous close. Same seed, same bars. It is not market data.
    """
    if n < 2:
        raise ValueError("n must be at least 2")
    rng = np.random.default_rng(seed)
    regime = np.sign(np.cumsum(rng.normal(0.0, 1.0, n) * (rng.random(n) < 0.02)) + 0.5)
    ret = rng.normal(0.0, sigma, n) + drift * 3 * regime
    close = np.round(price * np.exp(np.cumsum(ret)), 2)
    gap = rng.normal(0.0, sigma / 4, n)
    open_ = np.round(np.concatenate(([price], close[:-1])) * np.exp(gap), 2)
    wick = np.abs(rng.normal(0.0, sigma / 2, (2, n)))
    high = np.round(np.maximum(open_, close) * np.exp(wick[0]), 2)
    low = np.round(np.minimum(open_, close) * np.exp(-wick[1]), 2)
    high, low = (
        np.maximum(high, np.maximum(open_, close)),
        np.minimum(low, np.minimum(open_, close)),
    )
    volume = np.round(rng.lognormal(15.0, 0.4, n) * (1 + 20 * np.abs(ret))).astype(np.int64)
    dates = pd.bdate_range(start, periods=n)
    return pd.DataFrame(
        {
            "Date": dates.strftime("%Y-%m-%d"),
            "Open": open_,
            "High": high,
            "Low": low,
            "Close": close,
            "Adj Close": close,
            "Volume": volume,
        }
    )


def write_yahoo_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame from :func:`synthetic_daily_frame` as Yahoo Finance writes its CSVs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.2f", lineterminator="\n")
    return path
