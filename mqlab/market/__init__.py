"""Market data (行情): a seeded synthetic generator and a loader for Binance's kline CSV files.

There is no network here, so the chapters run on *synthetic* data that looks like Bitcoin's
1-minute bars; everything it makes is labelled synthetic. Real data plugs in through
:func:`iter_binance_csv`, which reads the files published at https://data.binance.vision.

* :mod:`mqlab.market.synthetic`: :func:`synthetic_frame` (a DataFrame in Binance's 12 columns),
  :func:`synthetic_klines`, and :func:`synthetic_book_events` (order-book snapshots
  interleaved with public trades).
* :mod:`mqlab.market.frames`: :func:`frame_to_klines` (and its lazy twin
  :func:`iter_frame_klines`) and :func:`klines_to_frame`.
* :mod:`mqlab.market.binance_csv`: :func:`iter_binance_csv` (lazy) and
  :func:`load_binance_csv` (``.csv`` or ``.zip``, with or without the header row, ms or µs
  timestamps), :func:`write_binance_csv`, :data:`BINANCE_COLUMNS`, :data:`SAMPLE_DATA` (the
  bundled ``data/synthetic_BTCUSDT_1m.csv``, 3 days), :class:`DataError` for corrupt data (it
  names the file, line and column) and :class:`MissingDataError` for a missing file.

Any OHLCV data (Binance CSV, a CSV with a header such as Yahoo's, a DataFrame, Parquet)
becomes :class:`~mqlab.bars.Bars` through :func:`mqlab.bars.load_bars`.
"""

from __future__ import annotations

# Every name lives in one submodule and is listed once, in its __all__ (asyncio's pattern).
from mqlab.market import binance_csv, frames, synthetic
from mqlab.market.binance_csv import *  # noqa: F403
from mqlab.market.frames import *  # noqa: F403
from mqlab.market.synthetic import *  # noqa: F403

__all__ = synthetic.__all__ + frames.__all__ + binance_csv.__all__
