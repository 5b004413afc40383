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

from mqlab.venue.margin import MarginExchange
from mqlab.venue.spot import QUOTE_ASSETS, Latency, SimulatedExchange, split_symbol

__all__ = ["QUOTE_ASSETS", "Latency", "MarginExchange", "SimulatedExchange", "split_symbol"]
