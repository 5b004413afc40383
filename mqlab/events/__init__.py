"""Typed, immutable trading events (事件), their stable ids, routing keys and JSON codec.

Every event is a frozen dataclass with slots, so a handler can neither change it nor hang
extra data (say, the next bar) on it. Money is exact: prices, quantities and fees are
:class:`~decimal.Decimal`, never floats (aioquant keeps money in floats). Times are integer
milliseconds since the Unix epoch, and every event carries two of them:

* ``ts``: when it happened at its source (exchange time for market data, the strategy's
  clock for an order, the matching time for an update or fill);
* ``recv_ts``: when our system received it. The backtest orders events by ``recv_ts``.

Public API (stable; the pipeline services build on it):

* events: :class:`Kline`, :class:`OrderBook`, :class:`Trade` (market data);
  :class:`Order`, :class:`Cancel` (requests a strategy sends); :class:`OrderUpdate`,
  :class:`Fill` (what the exchange answers). Enums :class:`Side`, :class:`OrderType`,
  :class:`OrderStatus`, :class:`Liquidity`.
* ``event.id``: a deterministic, unique id derived from the content (e.g.
  ``kline.binance.BTCUSDT.1m.1704067200000``; orders use the client id ``<strategy>-<seq>``,
  fills ``<order id>.f<n>``), so bus consumers can drop duplicates.
* :func:`routing_key` (one function per event type: :func:`kline_key`, :func:`orderbook_key`,
  :func:`trade_key`, :func:`order_key`, :func:`order_update_key`, :func:`fill_key`; called
  with ``"*"``/``"#"`` they give binding patterns). Keys follow aioquant's
  ``{platform}.{symbol}`` style, and klines add the interval aioquant left out:
  ``kline.binance.BTCUSDT.1m``. Orders and cancels share ``order.<strategy>.<platform>.<symbol>``
  so one queue sees them in the order they were sent.
* :func:`encode` (event → JSON bytes: ``{"event": "kline", "id": ..., <fields>}``) and
  :func:`decode` (bytes → event), which validates every field and raises
  :class:`EventDecodeError` naming the field that is wrong.
* :func:`validate`: the semantic checks ``decode`` runs (constructors trust their arguments,
  because the backtest builds millions of events).

Home modules: :mod:`mqlab.events.model` (the events, enums, ids), :mod:`mqlab.events.keys`
(routing keys), :mod:`mqlab.events.codec` (JSON). Everything is importable from here, as
before, including the module-level enum aliases (``BUY``, ``FILLED``, ...) the per-event paths
use.
"""

from __future__ import annotations

# Every name lives in one submodule and is listed once, in its __all__ (asyncio's pattern).
from mqlab.events import codec, keys, model
from mqlab.events.codec import *  # noqa: F403
from mqlab.events.keys import *  # noqa: F403
from mqlab.events.model import *  # noqa: F403

__all__ = model.__all__ + keys.__all__ + codec.__all__
