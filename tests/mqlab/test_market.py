"""Market data: a realistic seeded generator, and a strict, helpful Binance CSV loader."""

from __future__ import annotations

import gc
import itertools
import pickle
import zipfile
from dataclasses import FrozenInstanceError
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mqlab.events import Kline, OrderBook, Side, Trade, encode, validate
from mqlab.market import (
    SAMPLE_DATA,
    DataError,
    MissingDataError,
    frame_to_klines,
    iter_binance_csv,
    iter_frame_klines,
    klines_to_frame,
    load_binance_csv,
    synthetic_book_events,
    synthetic_frame,
    synthetic_klines,
    write_binance_csv,
)
from mqlab.market.frames import _bulk

ROW = "1704067200000,42000.00,42010.00,41990.00,42005.00,1.5,1704067259999,63000.1,12,0.7,29400,0"


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    pd.testing.assert_frame_equal(synthetic_frame(500, seed=3), synthetic_frame(500, seed=3))
    assert not synthetic_frame(500, seed=3).equals(synthetic_frame(500, seed=4))


def test_bars_are_consistent_and_on_the_tick() -> None:
    klines = synthetic_klines(3000, seed=5)
    for prev, k in itertools.pairwise(klines):
        assert k.open == prev.close and k.open_time == prev.open_time + 60_000
    for k in klines:
        validate(k)
        assert k.close == k.close.quantize(D("0.01")) and k.ts == k.open_time + 60_000


def test_returns_cluster_and_have_fat_tails() -> None:
    close = synthetic_frame(40_000, seed=1)["close"]
    r = np.log(close).diff().dropna()
    assert pd.Series(np.abs(r.to_numpy())).autocorr(1) > 0.05, "no volatility clustering"
    assert r.kurt() > 3, "tails as thin as a normal's"
    assert abs(r.autocorr(1)) < 0.05, "returns should not be predictable from the last one"


def test_bundled_sample_is_small_labelled_and_loads() -> None:
    assert "synthetic" in SAMPLE_DATA.name and SAMPLE_DATA.stat().st_size < 1_000_000
    assert SAMPLE_DATA.read_text().splitlines()[0].startswith("# SYNTHETIC")
    klines = load_binance_csv(SAMPLE_DATA)
    assert len(klines) == 4320 and {k.symbol for k in klines} == {"BTCUSDT"}
    assert {k.interval for k in klines} == {"1m"} and isinstance(klines[0].close, D)


def test_write_then_load_round_trips(tmp_path: Path) -> None:
    frame = synthetic_frame(200, seed=9)
    path = write_binance_csv(frame, tmp_path / "ETHUSDT-1m-2024-01-01.csv")
    assert load_binance_csv(path) == frame_to_klines(frame, symbol="ETHUSDT")
    again = klines_to_frame(load_binance_csv(path))
    np.testing.assert_array_equal(again["close"].to_numpy(), frame["close"].to_numpy())


def _one_by_one(frame: pd.DataFrame, latency: int = 0) -> list[Kline]:
    """The plain way: Kline(...) per row, each column's Decimals at that column's precision."""

    def exact(column: str) -> list[D]:
        values = frame[column].to_numpy(float)
        for places in range(9):  # the fewest places that leave only float noise
            scaled = values * 10.0**places
            if np.all(np.abs(scaled - np.rint(scaled)) <= np.abs(scaled) * 1e-14 + 1e-9):
                return [D(round(x)).scaleb(-places) for x in scaled.tolist()]
        return [D(repr(v)) for v in values.tolist()]

    columns = {c: exact(c) for c in ("open", "high", "low", "close", "volume")}
    quote = exact("quote_volume") if "quote_volume" in frame else [D(0)] * len(frame)
    counts = frame["count"].tolist() if "count" in frame else [0] * len(frame)
    return [
        Kline("binance", "BTCUSDT", "1m", t, o, h, lo, c, v, t + 60_000, t + 60_000 + latency, q, k)
        for t, o, h, lo, c, v, q, k in zip(
            frame["open_time"].tolist(), *columns.values(), quote, counts, strict=True
        )
    ]


def _wire(klines: list[Kline]) -> list[bytes]:
    return [encode(k) for k in klines]  # the JSON shows each Decimal's exponent too


@pytest.mark.parametrize("chunk", [1, 7, 1024])
def test_frame_events_equal_the_plain_construction(chunk: int) -> None:
    frame = synthetic_frame(50, seed=2)
    frame.loc[[0, 6, 7, 13, 14], "open"] += 0.01  # opens that are not the previous close
    frame.loc[[0, 6, 7, 13, 14], "high"] += 0.01
    want = _wire(_one_by_one(frame))
    assert _wire(list(iter_frame_klines(frame, chunk=chunk))) == want
    assert _wire(frame_to_klines(frame)) == want
    bars = frame_to_klines(frame)
    assert bars[4].close is bars[5].open  # the same Decimal where the open is the last close
    assert bars[6].open == bars[5].close + D("0.01")  # moved by the test: built on its own


def test_frame_events_make_their_deferred_fields_on_first_read() -> None:
    frame = synthetic_frame(40, seed=5)
    frame.loc[[3, 9], "volume"] = 0.1234567891  # off the column's tick: kept exactly as written
    plain, lazy = _one_by_one(frame), frame_to_klines(frame)

    def made(k: Kline, name: str) -> bool:
        try:
            Kline.__dict__[name].slot.__get__(k, Kline)  # the slot itself, bypassing the hook
        except AttributeError:
            return False
        return True

    k = lazy[3]
    assert (k.open, k.close, k.ts) == (plain[3].open, plain[3].close, plain[3].ts)
    assert not any(made(k, name) for name in ("high", "low", "volume", "quote_volume", "trades"))
    assert k.low == plain[3].low  # the first read makes them all, as built whole
    assert all(made(k, name) for name in ("high", "low", "volume", "quote_volume", "trades"))
    assert k.volume == D("0.1234567891") and _wire([k]) == _wire([plain[3]])
    assert type(k.trades) is int and k.trades == plain[3].trades > 0
    # Indistinguishable from events built whole: equality, hash, repr, pickle, the codec.
    assert lazy[4] == plain[4] and hash(lazy[5]) == hash(plain[5])
    assert repr(lazy[6]) == repr(plain[6]) and pickle.loads(pickle.dumps(lazy[7])) == plain[7]
    assert validate(lazy[8]) is lazy[8]
    with pytest.raises(FrozenInstanceError):
        lazy[9].high = D(1)  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lazy[10].nope  # type: ignore[attr-defined]  # noqa: B018
    assert lazy[11].__class__ is Kline and not made(lazy[11], "high")  # nothing read it yet
    frame.loc[11, "high"] += 1.0  # the events are what the frame was when they were built
    assert lazy[11].high == plain[11].high


def test_bulk_builds_ordinary_frozen_events() -> None:
    columns = {"platform": ["binance"] * 2, "symbol": ["BTCUSDT"] * 2, "trade_id": [1, 2],
               "price": [D("1.5"), D("2")], "qty": [D(1), D("0.1")], "side": [Side.BUY, Side.SELL],
               "ts": [5, 6], "recv_ts": [7, 8]}  # fmt: skip
    built = _bulk(Trade, 2, columns)
    assert built == [Trade(*row) for row in zip(*columns.values(), strict=True)]
    assert type(built[0]) is Trade and hash(built[1]) == hash(
        Trade(*[c[1] for c in columns.values()])
    )
    with pytest.raises(FrozenInstanceError):
        built[0].price = D(3)  # type: ignore[misc]


def test_frame_events_with_odd_columns() -> None:
    frame = synthetic_frame(30, seed=4).drop(columns=["quote_volume", "count"])
    frame["open"] = frame["open"].round(0)  # whole numbers: a different exponent than closes
    frame.loc[3, "volume"] = 0.1234567891  # more than 8 places: kept exactly as written
    want = _wire(_one_by_one(frame, latency=250))
    got = _wire(list(iter_frame_klines(frame, chunk=4, feed_latency_ms=250)))
    assert got == want and frame_to_klines(frame.iloc[:0]) == []
    assert frame_to_klines(frame)[3].volume == D("0.1234567891")


def test_building_events_restores_the_garbage_collector() -> None:
    frame = synthetic_frame(20, seed=1)
    frame_to_klines(frame)
    assert gc.isenabled()
    gc.disable()
    try:
        list(iter_frame_klines(frame, chunk=3))
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
    with pytest.raises(ValueError, match="chunk"):
        next(iter_frame_klines(frame, chunk=0))
    with pytest.raises(ValueError, match="'ts' has 1 values for 2 rows"):
        _bulk(Kline, 2, {name: [None, None] for name in Kline.__dataclass_fields__} | {"ts": [1]})


def test_header_microseconds_zip_and_interval_from_rows(tmp_path: Path) -> None:
    micros = ROW.replace("1704067200000", "1704067200000000").replace(
        "1704067259999", "1704067259999999"
    )
    path = tmp_path / "prices.csv"
    path.write_text("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                    f"taker_buy_volume,taker_buy_quote_volume,ignore\n{micros}\n")  # fmt: skip
    (k,) = load_binance_csv(path, symbol="BTCUSDT")
    assert (k.open_time, k.ts, k.interval, k.close) == (
        1704067200000, 1704067260000, "1m", D("42005.00"),
    )  # fmt: skip
    archive = tmp_path / "BTCUSDT-1m-2024-01.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("BTCUSDT-1m-2024-01.csv", ROW + "\n")
    assert load_binance_csv(archive)[0].close == D("42005.00")


def test_iteration_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m.csv"
    path.write_text(ROW + "\nthis line is garbage\n")
    bars = iter_binance_csv(path)
    assert isinstance(next(bars), Kline)  # the bad line is not read until it is asked for
    with pytest.raises(DataError, match="line 2"):
        next(bars)


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match=r"not found.*bundled synthetic sample"):
        iter_binance_csv(tmp_path / "BTCUSDT-1m-nope.csv")
    assert issubclass(MissingDataError, FileNotFoundError)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1,2,3\n", r"line 1: expected the 12 columns"),
        (ROW.replace("42005.00", "4x"), r"line 1, column close: not a price"),
        (ROW.replace("42005.00", "-1"), r"line 1, column close"),
        (ROW.replace("42010.00", "41000"), r"line 1: inconsistent bar"),
        (ROW + "\n" + ROW, r"line 2: open_time .* not after .* sort the file"),
        (ROW.replace("1704067259999", "1704067206999"), r"7000 ms, not the 1m interval"),
        ("garbage," * 11 + "x", r"line 1, column open_time: not a timestamp"),
        ("", r"no bars"),
    ],
)
def test_corrupt_files_name_file_line_and_column(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "BTCUSDT-1m-bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=words) as info:
        load_binance_csv(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\xff\xfe\x00binary", r"not a text CSV file"),
        (b"", r"no bars in the file"),
        (b"# only a comment\n", r"no bars in the file"),
    ],
)
def test_unreadable_or_empty_files_fail_lazily_too(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "BTCUSDT-1m-odd.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=words) as info:
        list(iter_binance_csv(path))  # the lazy reader, as the backtest CLI uses it
    assert str(path) in str(info.value)


def test_a_folder_is_not_a_data_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder") as info:
        iter_binance_csv(tmp_path)
    assert not isinstance(info.value, MissingDataError)


def test_symbol_is_required_when_the_name_does_not_say(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(ROW)
    with pytest.raises(DataError, match="pass symbol="):
        load_binance_csv(path)
    odd = tmp_path / "odd.csv"
    odd.write_text(ROW.replace("1704067259999", "1704067206999"))
    with pytest.raises(DataError, match="7000 ms is no Binance interval"):
        load_binance_csv(odd, symbol="BTCUSDT")


def test_book_events_are_valid_ordered_and_imbalance_is_informative() -> None:
    events = synthetic_book_events(1500, seed=2)
    assert [e.recv_ts for e in events] == sorted(e.recv_ts for e in events)
    books = [e for e in events if isinstance(e, OrderBook)]
    assert len(books) == 1500 and any(isinstance(e, Trade) for e in events)
    for e in events:
        validate(e)

    def imbalance(b: OrderBook) -> float:
        bid, ask = sum(q for _, q in b.bids[:5]), sum(q for _, q in b.asks[:5])
        return float(bid / (bid + ask))

    mids = np.array([float(b.mid) for b in books])
    signal = np.array([imbalance(b) for b in books])
    assert np.corrcoef(signal[:-1], np.diff(mids))[0, 1] > 0.05


@pytest.mark.parametrize("gap", [False, True])
def test_deferred_fields_find_their_row_with_or_without_gaps(gap: bool) -> None:
    """Bars one interval apart find the row of a deferred field from their open time; a frame
    with a gap (or out of order) keeps row numbers: both make every field as built whole."""
    frame = synthetic_frame(60, seed=6)
    if gap:
        frame = frame.drop(index=[10, 11, 40]).reset_index(drop=True)
    plain, lazy = _one_by_one(frame), list(iter_frame_klines(frame, chunk=16))
    regular = lazy[20]._row == lazy[20].open_time  # type: ignore[attr-defined]
    assert regular is not gap
    for i in (0, 9, 10, 30, len(frame) - 1):
        k, p = lazy[i], plain[i]
        assert (k.high, k.low, k.volume, k.quote_volume, k.trades) == (
            p.high, p.low, p.volume, p.quote_volume, p.trades
        )  # fmt: skip
    assert _wire(lazy) == _wire(plain)
