"""What the in-process and the bus paper sessions share: the venue a session's settings
describe, and the summary a replay must reproduce."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from mqlab.backtest import BacktestResult
from mqlab.events import Fill, encode
from mqlab.venue import Latency, SimulatedExchange

__all__ = ["fills_digest", "make_venue", "session_summary"]


def make_venue(meta: dict[str, Any]) -> SimulatedExchange:
    """The simulated venue a session's settings describe (paper and replay build it alike)."""
    return SimulatedExchange(
        {meta.get("quote", "USDT"): Decimal(meta["cash"])},
        maker_fee=Decimal(meta.get("maker_fee", "0.0002")),
        taker_fee=Decimal(meta["fee"]),
        platform=meta.get("platform", "binance"),
        latency=Latency(int(meta.get("latency_ms", 0)), int(meta.get("jitter_ms", 0))),
    )


def fills_digest(fills: list[Fill]) -> str:
    """SHA-256 over the fills' exact JSON, in order: equal digests, equal fills."""
    h = hashlib.sha256()
    for fill in fills:
        h.update(encode(fill) + b"\n")
    return h.hexdigest()


def session_summary(result: BacktestResult) -> dict[str, Any]:
    """What a replay must reproduce: counts, money (exact strings) and the fills' digest."""
    s = result.summary()
    keep = ("events", "orders_sent", "rejected", "fills", "equity", "realised", "unrealised")
    out = {k: s[k] for k in (*keep, "fees", "turnover")}
    out["fills_sha256"] = fills_digest(result.fills)
    return out
