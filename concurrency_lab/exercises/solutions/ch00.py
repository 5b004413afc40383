"""Reference solutions for chapter 00 (start here)."""

from __future__ import annotations

__all__ = ["SWITCH_ORDER", "WORKLOAD_KINDS"]

#: Most expensive switch first.
SWITCH_ORDER = ["process", "thread", "coroutine", "generator"]

WORKLOAD_KINDS = {
    "download": "io",  # waits for the network
    "moving_average": "cpu",  # arithmetic in the interpreter
    "subscribe": "io",  # waits for the broker
    "grid_search": "cpu",  # 400 backtests: pure computation
    "insert_fills": "io",  # waits for the database's round trip and its disk
    "hash_ids": "cpu",  # arithmetic in the interpreter
}
