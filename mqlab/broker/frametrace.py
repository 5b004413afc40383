"""Frame tracer: every AMQP frame between clients and the embedded broker, as data.

The broker decodes every frame with pamqp anyway, so it can hand each one to a hook.
:class:`FrameTrace` is such a hook. It records the direction, connection, channel, frame
name and its key fields, then shows them as a pandas table or a sequence diagram::

    trace = FrameTrace()
    async with Broker(port=0, trace=trace) as broker:
        ...  # publish one message, consume it
    trace.table()          # one row per frame
    trace.plot()           # client/broker lifelines with an arrow per frame

To trace the broker that ``mqlab.connect()`` started, use
``with trace.attach(mqlab.connection.embedded_broker()): ...``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from mqlab.broker import Broker, BrokerThread

__all__ = ["FrameRecord", "FrameTrace", "describe", "print_frame"]

CLIENT_TO_BROKER = "client→broker"
BROKER_TO_CLIENT = "broker→client"

# Fields never worth showing: deprecated, always-default or bulky.
_SKIP = {"ticket", "nowait", "capabilities", "insist", "out_of_band", "known_hosts"}
_BULKY = {"server_properties", "client_properties"}


@dataclass(frozen=True)
class FrameRecord:
    """One frame as the broker saw it."""

    time: float  # seconds since the trace started
    connection: int
    direction: str  # CLIENT_TO_BROKER or BROKER_TO_CLIENT
    channel: int
    name: str  # "Basic.Publish", "ContentHeader", "ContentBody", "Heartbeat"...
    fields: dict[str, Any] = field(default_factory=dict)

    def summary(self, width: int = 60) -> str:
        """``key=value`` pairs, shortened to ``width`` characters."""
        text = " ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return text if len(text) <= width else text[: width - 1] + "…"


def describe(frame: Any) -> tuple[str, dict[str, Any]]:
    """Name and key fields of a pamqp frame object."""
    name = getattr(frame, "name", type(frame).__name__)
    if name == "ContentHeader":
        props = {
            k: v
            for k, v in frame.properties
            if v is not None and v != "" and v != {}  # only the properties that are set
        }
        return name, {"body_size": frame.body_size, **props}
    if name == "ContentBody":
        value = frame.value or b""
        preview = value[:32] + (b"..." if len(value) > 32 else b"")
        return name, {"size": len(value), "body": preview}
    if name == "Heartbeat":
        return name, {}
    fields: dict[str, Any] = {}
    for key in getattr(frame, "__slots__", ()):
        value = getattr(frame, key, None)
        if key in _SKIP or value is None or value == {} or (value is False and key != "active"):
            continue
        if key in _BULKY:
            value = f"<{len(value)} entries>"
        elif key == "response":
            value = "****"  # the login: user and password
        fields[key] = value
    return name, fields


def print_frame(connection: int, direction: str, channel: int, frame: Any) -> None:
    """A trace hook that prints one line per frame (``python -m mqlab broker --trace``)."""
    name, fields = describe(frame)
    arrow = "->" if direction == "in" else "<-"
    text = " ".join(f"{k}={v!r}" for k, v in fields.items())
    print(f"#{connection} ch{channel} {arrow} {name} {text}"[:200], flush=True)


class FrameTrace:
    """Collects frames from a broker's ``trace`` hook (thread-safe, bounded)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self.records: list[FrameRecord] = []
        self.dropped = 0
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()

    def __call__(self, connection: int, direction: str, channel: int, frame: Any) -> None:
        name, fields = describe(frame)
        record = FrameRecord(
            time.perf_counter() - self._t0,
            connection,
            CLIENT_TO_BROKER if direction == "in" else BROKER_TO_CLIENT,
            channel,
            name,
            fields,
        )
        with self._lock:
            if len(self.records) < self.limit:
                self.records.append(record)
            else:
                self.dropped += 1

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[FrameRecord]:
        return iter(list(self.records))

    def clear(self) -> None:
        """Forget what was recorded so far (e.g. the connection handshake)."""
        with self._lock:
            self.records.clear()
            self.dropped = 0
            self._t0 = time.perf_counter()

    @contextlib.contextmanager
    def attach(self, broker: Broker | BrokerThread) -> Iterator[FrameTrace]:
        """Record the frames of a running broker for the duration of a ``with`` block."""
        target: Any = getattr(broker, "broker", broker)
        previous = target.trace
        target.trace = self
        try:
            yield self
        finally:
            target.trace = previous

    def select(
        self,
        names: Iterable[str] | None = None,
        *,
        connection: int | None = None,
        skip_heartbeats: bool = True,
    ) -> list[FrameRecord]:
        """Records filtered by frame-name prefix (``"Basic."``) and/or connection."""
        prefixes = tuple(names) if names is not None else None
        return [
            r
            for r in self
            if (prefixes is None or r.name.startswith(prefixes))
            and (connection is None or r.connection == connection)
            and not (skip_heartbeats and r.name == "Heartbeat")
        ]

    def table(self, records: Iterable[FrameRecord] | None = None) -> pd.DataFrame:
        """One row per frame: time (ms), connection, direction, channel, frame, fields."""
        import pandas as pd

        rows = [
            {
                "time_ms": round(r.time * 1000, 3),
                "connection": r.connection,
                "direction": r.direction,
                "channel": r.channel,
                "frame": r.name,
                "fields": r.summary(),
            }
            for r in (self.select() if records is None else records)
        ]
        columns = ["time_ms", "connection", "direction", "channel", "frame", "fields"]
        return pd.DataFrame(rows, columns=columns)

    def plot(
        self,
        records: Iterable[FrameRecord] | None = None,
        *,
        ax: Axes | None = None,
        title: str = "AMQP frames between clients and the broker",
        labels: dict[int, str] | None = None,
    ) -> Axes:
        """A sequence diagram: a lifeline per client connection and one for the broker.

        ``labels`` names connections, e.g. ``{1: "publisher", 2: "consumer"}``.
        """
        import matplotlib.pyplot as plt

        rows = self.select() if records is None else list(records)
        conns = sorted({r.connection for r in rows})
        labels = labels or {}
        # Broker in the middle, clients alternating left and right of it.
        left = conns[::2]
        right = conns[1::2]
        xs = {c: -(i + 1) for i, c in enumerate(left)} | {c: i + 1 for i, c in enumerate(right)}
        if ax is None:
            height = max(3.0, 0.38 * len(rows) + 1.5)
            _, ax = plt.subplots(figsize=(9, height))
        bottom = len(rows) - 0.3
        for c, x in [*xs.items(), (None, 0)]:
            ax.plot([x, x], [-0.5, bottom], color="0.6", lw=1, zorder=1)
            name = "broker" if c is None else labels.get(c, f"client #{c}")
            ax.text(x, -0.9, name, ha="center", va="bottom", fontsize=10, weight="bold")
        for y, r in enumerate(rows):
            xc = xs[r.connection]
            start, end = (xc, 0) if r.direction == CLIENT_TO_BROKER else (0, xc)
            color = {"Basic": "tab:blue", "Content": "tab:green"}.get(
                r.name.split(".")[0].replace("Header", "").replace("Body", ""), "tab:gray"
            )
            ax.annotate(
                "",
                xy=(end, y),
                xytext=(start, y),
                arrowprops={"arrowstyle": "->", "color": color, "lw": 1.4},
            )
            label = f"{r.name} (ch {r.channel})"
            key = _key_field(r)
            if key:
                label += f" {key}"
            ax.text((start + end) / 2, y - 0.12, label, ha="center", va="bottom", fontsize=8)
        ax.set_xlim(min([*xs.values(), 0]) - 0.6, max([*xs.values(), 0]) + 0.6)
        ax.set_ylim(bottom, -1.2)
        ax.set_xticks([])
        ax.set_yticks(range(len(rows)))
        ax.set_ylabel("frame number (time flows down)")
        ax.set_xlabel("participants (one lifeline per TCP connection)")
        ax.set_title(title)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        return ax


def _key_field(r: FrameRecord) -> str:
    f = r.fields
    keys = ("routing_key", "queue", "delivery_tag", "body", "body_size", "exchange", "reply_code")
    for key in keys:
        if key in f and f[key] not in ("", None):
            return f"{key}={f[key]!r}"[:40]
    return ""
