"""What a pipeline run did: :class:`PipelineResult`, and fills as comparable rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mqlab.config import RunConfig

if TYPE_CHECKING:
    import pandas as pd

    from mqlab.events import Fill
    from mqlab.faults import Malformed

__all__ = [
    "FillRow",
    "PipelineResult",
    "fill_rows",
    "injected_table",
    "message_groups",
    "read_fill_rows",
    "sum_counts",
]

FillRow = tuple[str, str, int, str, str, str, str]


def fill_rows(fills: list[Fill]) -> list[FillRow]:
    """Fills as comparable rows: (id, order_id, ts, side, qty, price, fee), money as text."""
    return [
        (f.id, f.order_id, f.ts, f.side.value, f"{f.qty:f}", f"{f.price:f}", f"{f.fee:f}")
        for f in fills
    ]


def injected_table(ids: list[str], messages: list[Malformed]) -> pd.DataFrame:
    """The malformed messages injected (``mqlab.faults.inject``), one row per message id:
    the exchange and routing key each went to, and what is wrong with it."""
    import pandas as pd

    rows = [(i, m.exchange, m.routing_key, m.what) for i, m in zip(ids, messages, strict=True)]
    columns = ["message", "exchange", "routing key", "what is wrong"]
    return pd.DataFrame(rows, columns=columns).set_index("message")


def read_fill_rows(path: Path) -> list[FillRow]:
    """The rows :func:`fill_rows` gives, read back from the ``fills.csv`` a portfolio wrote."""
    rows = []
    for line in path.read_text().splitlines()[1:]:
        fid, order_id, ts, side, qty, price, fee = line.split(",")
        rows.append((fid, order_id, int(ts), side, qty, price, fee))
    return rows


#: Routing keys' first words of the orders and the exchange's answers to them.
_ORDER_KINDS = frozenset({"order", "cancel", "order_update", "fill"})
#: ... of the protocol's own messages: dones, progress markers, calls, end and pause.
_SYNC_KINDS = frozenset({"done", "step", "call", "end", "control", "pause"})


def sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    """Counters by kind (each service's, each subscription's), added up."""
    total: dict[str, int] = {}
    for one in counts:
        for kind, n in one.items():
            total[kind] = total.get(kind, 0) + int(n)
    return total


def message_groups(kinds: dict[str, int]) -> dict[str, int]:
    """Messages (published + delivered) by what they carry: ``market`` events (at one event
    per message, each is one publish and a delivery to the exchange and to every strategy),
    ``orders`` and their answers, and ``sync``, the protocol's own dones and markers."""
    groups = {"market": 0, "orders": 0, "sync": 0}
    for kind, count in kinds.items():
        group = "orders" if kind in _ORDER_KINDS else "sync" if kind in _SYNC_KINDS else "market"
        groups[group] += count
    return groups


@dataclass
class PipelineResult:
    """What a pipeline run did; :meth:`summary` is what the CLI prints (or emits as JSON)."""

    config: RunConfig
    mode: str
    broker: str
    events: int
    orders: int
    fills: list[FillRow]
    equity: Decimal
    pnl: Decimal
    elapsed: float
    latency_ms: list[float]
    complete: bool
    #: Event → decision latency (ms) of every step: publish → the strategy's ``done``.
    decision_ms: list[float] = field(default_factory=list)
    #: Events handled by this run (``events`` minus those replayed from an earlier one).
    events_run: int | None = None
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    dead_lettered: int = 0
    duplicates_dropped: int = 0
    parity: bool | None = None
    #: With ``processes=True``: each service's command line (password masked).
    commands: dict[str, str] = field(default_factory=dict)
    #: Messages the services published, and the broker delivered to them, in this run.
    published: int = 0
    delivered: int = 0
    #: Both, by the first word of their routing key (see :func:`message_groups`).
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def messages_per_event(self) -> dict[str, Any]:
        """Broker messages per market event of this run: published, delivered, and both;
        ``by_group``: both, split as :func:`message_groups` does."""
        n = self.events if self.events_run is None else self.events_run
        if not n:
            return {"published": None, "delivered": None, "total": None}
        return {
            "published": round(self.published / n, 3),
            "delivered": round(self.delivered / n, 3),
            "total": round((self.published + self.delivered) / n, 3),
            "by_group": {k: round(v / n, 3) for k, v in message_groups(self.kinds).items()},
        }

    @property
    def broker_label(self) -> str:
        """``embedded broker`` or ``broker at host:port``, for titles."""
        # Several node URLs (a cluster): name every node, "h1:p1, h2:p2".
        where = ", ".join(u.split("@")[-1].rstrip("/") for u in self.broker.split(","))
        return "embedded broker" if self.broker.startswith("embedded") else f"broker at {where}"

    @property
    def events_per_s(self) -> float:
        done = self.events if self.events_run is None else self.events_run
        return done / self.elapsed if self.elapsed else 0.0

    def latency(self, q: float) -> float | None:
        import numpy as np

        return float(np.percentile(self.latency_ms, q)) if self.latency_ms else None

    def summary(self) -> dict[str, Any]:
        p50, p99 = self.latency(50), self.latency(99)
        return {
            "strategy": self.config.strategy,
            "data": self.config.label,
            "mode": self.mode,
            "broker": self.broker,
            "complete": self.complete,
            "events": self.events,
            "orders": self.orders,
            "fills": len(self.fills),
            "final_equity": f"{self.equity:f}",
            "final_pnl": f"{self.pnl:f}",
            "elapsed_s": round(self.elapsed, 3),
            "events_per_s": round(self.events_per_s, 1),
            "latency_ms_p50": None if p50 is None else round(p50, 3),
            "latency_ms_p99": None if p99 is None else round(p99, 3),
            "duplicates_dropped": self.duplicates_dropped,
            "dead_lettered": self.dead_lettered,
            "messages_per_event": self.messages_per_event,
            "same_as_backtest": self.parity,
            "paths": {k: str(v) for k, v in self.paths.items()},
        }
