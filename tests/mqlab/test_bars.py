"""load_bars: Binance CSVs, CSVs with a header (Yahoo's), DataFrames and Parquet; and every
bad input gets one line naming the file, the line and what was expected."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mqlab.bars import SAMPLE_STOCK, Bars, load_bars, synthetic_daily_frame, write_yahoo_csv
from mqlab.events import validate
from mqlab.market import SAMPLE_DATA, DataError, MissingDataError

YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume\n"


def _csv(tmp_path: Path, text: str, name: str = "AAPL.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_yahoo_csv_loads_with_exact_prices_and_a_daily_interval(tmp_path: Path) -> None:
    rows = "2024-01-04,9,10,9,10,10,900\n2024-01-05,10,11,9,10.5,10.4,1000\n"
    rows += "2024-01-08,10.5,12.25,10,11.75,11.7,1200\n"
    bars = load_bars(_csv(tmp_path, YAHOO + rows))
    assert (bars.symbol, bars.interval, bars.quote, len(bars)) == ("AAPL", "1d", "USD", 3)
    second = bars[2]
    assert second.close == Decimal("11.75") and second.high == Decimal("12.25")
    assert second.open_time == 1_704_672_000_000  # 2024-01-08 00:00 UTC (the weekend skipped)
    assert second.ts == second.open_time + 86_400_000
    assert all(validate(k) for k in bars)  # events the bus would accept


def test_columns_match_in_any_case_and_order_and_overrides_win(tmp_path: Path) -> None:
    text = "close,VOLUME,low,HIGH,Open,timestamp\n10,5,9,11,10,2024-01-01 00:00\n"
    text += "11,6,10,12,10,2024-01-01 01:00\n"
    bars = load_bars(_csv(tmp_path, text, "x.csv"), symbol="SPY", quote="EUR")
    assert (bars.symbol, bars.quote, bars.interval) == ("SPY", "EUR", "1h")
    assert bars[0].open == 10 and bars[0].volume == 5
    assert load_bars(_csv(tmp_path, text, "x.csv"), symbol="SPY", interval="1m").interval == "1m"


def test_binance_files_still_load_with_their_quote() -> None:
    bars = load_bars(SAMPLE_DATA)
    assert (bars.symbol, bars.quote, bars.interval, len(bars)) == ("BTCUSDT", "USDT", "1m", 4320)
    assert bars.synthetic and "(synthetic)" in bars.label
    assert load_bars(SAMPLE_DATA, symbol="ETHBTC").quote == "BTC"


def test_a_dataframe_with_a_datetime_index_as_yfinance_gives_it() -> None:
    frame = pd.read_csv(SAMPLE_STOCK, parse_dates=["Date"]).set_index("Date")
    from_frame = load_bars(frame, symbol="ACME")
    from_file = load_bars(SAMPLE_STOCK)
    assert list(from_frame) == list(from_file)  # same events, to the last Decimal
    tickers = pd.concat({"ACME": frame}, axis=1).swaplevel(axis=1)  # yfinance's (Price, Ticker)
    assert list(load_bars(tickers, symbol="ACME")) == list(from_file)


def test_parquet_needs_pyarrow_or_says_so(tmp_path: Path) -> None:
    frame = pd.read_csv(SAMPLE_STOCK, parse_dates=["Date"]).set_index("Date")
    path = tmp_path / "acme.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        path.write_bytes(b"PAR1 not really")
        with pytest.raises(DataError, match="needs pyarrow"):
            load_bars(path)
        return
    frame.to_parquet(path)
    assert list(load_bars(path)) == list(load_bars(SAMPLE_STOCK))


def test_the_bundled_stock_csv_is_what_the_generator_makes(tmp_path: Path) -> None:
    again = write_yahoo_csv(synthetic_daily_frame(), tmp_path / "again.csv")
    assert again.read_bytes() == SAMPLE_STOCK.read_bytes()
    bars = load_bars(SAMPLE_STOCK)
    assert isinstance(bars, Bars) and bars.synthetic and bars.interval == "1d"
    frame = bars.frame()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert frame.index.day_of_week.max() == 4  # weekdays only, like a stock


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty.csv: empty file; expected a header line"),
        ("# only a comment\n\n", "no data, only blank or # comment lines"),
        (YAHOO, "no bars after the header on line 1"),
        (
            "Date,Open,High,Low,Volume\n2024-01-01,1,2,1,5\n",
            "line 1 (the header): missing column(s) close",
        ),
        ("Open,High,Low,Close\n1,2,1,1\n", "missing column(s) date"),
        (
            YAHOO + "2024-01-01,1,2,1,1,1,5\n2024-01-02,1,2,1,null,1,5\n",
            "line 3, column close: expected a price > 0, found 'null'",
        ),
        (
            YAHOO + "2024-01-01,1,2,1,abc,1,5\n",
            "line 2, column close: expected a price > 0, found 'abc'",
        ),
        (YAHOO + "2024-01-01,1,2,1,1,1,-5\n", "line 2, column volume: expected a number >= 0"),
        (
            YAHOO + "2024-01-02,1,2,1,1,1,5\n2024-01-01,1,2,1,1,1,5\n",
            "line 3: timestamp 2024-01-01 is before the previous bar's 2024-01-02; sort",
        ),
        (
            YAHOO + "2024-01-02,1,2,1,1,1,5\n2024-01-02,1,2,1,1,1,5\n",
            "line 3: duplicate timestamp 2024-01-02 (also at line 2)",
        ),
        (
            YAHOO + "2024-01-02,1,2,1,1,1,5\nsoon,1,2,1,1,1,5\n",
            "line 3, column date: expected a date or time",
        ),
        (YAHOO + "2024-01-02,1,2,1,3,3,5\n2024-01-03,1,2,1,1,1,5\n", "line 2: inconsistent bar"),
        (YAHOO + "2024-01-02,1,2\n", "line 2: expected 7 columns like the header, found 3"),
        ("1,2,3,4,5\n6,7,8,9,10\n", "line 1: expected a header row naming the columns"),
    ],
)
def test_bad_csvs_get_one_line_naming_file_line_and_expectation(
    tmp_path: Path, text: str, words: str
) -> None:
    path = _csv(tmp_path, text, "empty.csv")
    with pytest.raises(DataError) as info:
        load_bars(path)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert str(path) in message


def test_a_binary_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes(b"Date,Open\x00\x01\x02" + bytes(range(256)))
    with pytest.raises(DataError, match=r"prices.csv: a binary file \(a NUL byte at offset 9\)"):
        load_bars(path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"Date,Open,High,Low,Close\n2024-01-01,\xff\xfe,1,1,1\n" * 3)
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        load_bars(latin)


def test_missing_files_folders_and_names(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match="not found"):
        load_bars(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        load_bars(tmp_path)
    with pytest.raises(DataError, match="cannot tell the symbol"):
        load_bars(_csv(tmp_path, YAHOO + "2024-01-01,1,2,1,1,1,5\n", "my prices.csv"))
    with pytest.raises(DataError, match=r"symbol 'BRK\.B'"):
        load_bars(_csv(tmp_path, YAHOO + "2024-01-01,1,2,1,1,1,5\n"), symbol="BRK.B")
    with pytest.raises(DataError, match="unknown interval '2d'"):
        load_bars(SAMPLE_DATA, interval="2d")
    with pytest.raises(DataError, match="one bar only; pass interval="):
        load_bars(_csv(tmp_path, YAHOO + "2024-01-01,1,2,1,1,1,5\n"))
    odd = YAHOO + "2024-01-01 00:00,1,2,1,1,1,5\n2024-01-01 00:07,1,2,1,1,1,5\n"
    with pytest.raises(DataError, match="0 days 00:07:00 apart are no known interval"):
        load_bars(_csv(tmp_path, odd))
    with pytest.raises(DataError, match="less than one 1h interval"):
        load_bars(_csv(tmp_path, odd), interval="1h")


def test_bad_dataframes_name_the_row() -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="D")
    good = pd.DataFrame(
        {"Open": [1.0, 2, 3], "High": [2.0, 3, 4], "Low": [0.5, 1, 2], "Close": [1.5, 2.5, 3.5]},
        index=index,
    )
    holed = good.copy()
    holed.iloc[1, 3] = np.nan
    cases = [
        (holed, "DataFrame, row 1 (2024-01-02 00:00:00), column close: expected a price > 0"),
        (good.iloc[::-1], "DataFrame, row 1: timestamp 2024-01-02 is before"),
        (good.drop(columns="Low"), "missing column(s) low"),
        (good.reset_index(drop=True), "give it a DatetimeIndex or a date column"),
        (good.iloc[:0], "DataFrame: no rows"),
    ]
    for frame, words in cases:
        with pytest.raises(DataError) as info:
            load_bars(frame)
        assert words in str(info.value)
    dated = good.reset_index(names="Datetime")
    assert len(load_bars(dated, symbol="X")) == 3  # a date column works as well as an index
