"""A simulated exchange (交易所, the trading venue, not an AMQP exchange/交换机) for backtests.

Two venues, one matching engine (撮合):

* :mod:`mqlab.venue.spot`: :class:`SimulatedExchange`, the spot venue (balances, no shorts),
  with its deterministic :class:`Latency` model and :func:`split_symbol`; its docstring gives
  the matching rules and the time-order contract for callers.
* :mod:`mqlab.venue.margin`: :class:`MarginExchange`, the same venue with a margin account
  (shorts, a leverage cap, liquidation).

Both are pure state machines with no clock, thread or I/O of their own, so the backtest calls
them directly and a bus service wraps them unchanged; both pickle.
"""

from __future__ import annotations

# Every name lives in one submodule and is listed once, in its __all__ (asyncio's pattern).
from mqlab.venue import margin, spot
from mqlab.venue.margin import *  # noqa: F403
from mqlab.venue.spot import *  # noqa: F403

__all__ = spot.__all__ + margin.__all__
