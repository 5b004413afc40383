"""What was declared, as a picture: exchanges → bindings (with keys) → queues.

A :class:`Topology` holds exchanges, queues and bindings (from a
:class:`~mqlab.topology.recorder.TopologyRecorder`, from the embedded broker with
:meth:`Topology.from_broker`, or from a management-API snapshot), plus the producers (with the
routing keys they publish) and consumers around them. :meth:`Topology.draw` draws it with
matplotlib: the exchanges and queues inside a box for the broker's virtual host, the clients
outside it, so the figure shows the whole path of a message.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_EXCHANGE",
    "Binding",
    "ExchangeSpec",
    "QueueSpec",
    "Topology",
    "routing_keys",
    "short_name",
]

#: The nameless direct exchange every queue is bound to by its own name.
DEFAULT_EXCHANGE = ""


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    type: str = "direct"
    durable: bool = False
    auto_delete: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    durable: bool = False
    exclusive: bool = False
    auto_delete: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dead_letter_exchange(self) -> str | None:
        value = self.arguments.get("x-dead-letter-exchange")
        return None if value is None else str(value)


@dataclass(frozen=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str = ""


def _wrap_dotted(name: str, width: int = 18) -> str:
    """Wrap a dotted name for a box label at its dots, never inside a word."""
    spaced = textwrap.fill(name.replace(".", ". "), width, break_long_words=False)
    return spaced.replace(". ", ".")


def short_name(name: str) -> str:
    """A display name: drop the random suffix of :func:`~mqlab.patterns.unique` names."""
    if name == DEFAULT_EXCHANGE:
        return "(default)"
    if re.match(r"amq[._]", name) and len(name) > 16:  # server- or client-generated names
        return name[:4] + "…" + name[-4:]
    return re.sub(r"-[0-9a-f]{8}(?=$|\.)", "", name)


@dataclass
class Topology:
    """Exchanges, queues, bindings, and optionally the producers and consumers around them."""

    exchanges: dict[str, ExchangeSpec] = field(default_factory=dict)
    queues: dict[str, QueueSpec] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    #: producer name -> (exchange, the routing key it publishes: one, a tuple of them, or None)
    producers: dict[str, tuple[str, str | tuple[str, ...] | None]] = field(default_factory=dict)
    #: consumer name -> queue
    consumers: dict[str, str] = field(default_factory=dict)
    #: queue -> messages ready, filled in by :meth:`TopologyRecorder.verify`
    ready: dict[str, int] = field(default_factory=dict)
    #: where this picture came from, shown in the figure's title
    source: str = "as declared"
    #: the virtual host everything was declared in (drawn as the broker's box)
    vhost: str = "/"

    @classmethod
    def from_broker(cls, broker: Any) -> Topology:
        """Read the live topology of an embedded broker (``mqlab.broker``), not of RabbitMQ.

        Accepts anything with a ``topology()`` method (the broker, or its virtual host) or
        such a snapshot itself: ``exchanges``, ``queues`` and ``bindings`` of records.
        """
        for source in (broker, getattr(broker, "broker", None), getattr(broker, "vhost", None)):
            if callable(getattr(source, "topology", None)):
                return cls.from_snapshot(source.topology())  # type: ignore[union-attr]
        if hasattr(broker, "queues") and hasattr(broker, "bindings"):
            return cls.from_snapshot(broker)
        raise TypeError(
            f"{type(broker).__name__} has no topology() to read; record the declarations with "
            "TopologyRecorder instead (that works on RabbitMQ too)"
        )

    @classmethod
    def from_snapshot(cls, snapshot: Any) -> Topology:
        """Build from a snapshot whose records are objects or dicts (broker's own field names).

        The broker's predeclared ``amq.*`` exchanges and the default exchange are left out.
        """
        top = cls()
        for e in _field(snapshot, "exchanges", []):
            name = _field(e, "name")
            if name and not name.startswith("amq."):
                top.exchanges[name] = ExchangeSpec(
                    name, str(_field(e, "type", "direct")), bool(_field(e, "durable", False)),
                    bool(_field(e, "auto_delete", False)), dict(_field(e, "arguments", {}) or {}),
                )  # fmt: skip
        for q in _field(snapshot, "queues", []):
            name = _field(q, "name")
            top.queues[name] = QueueSpec(
                name, bool(_field(q, "durable", False)), bool(_field(q, "exclusive", False)),
                bool(_field(q, "auto_delete", False)), dict(_field(q, "arguments", {}) or {}),
            )  # fmt: skip
            if _field(q, "messages", None) is not None:
                top.ready[name] = int(_field(q, "messages"))
        for b in _field(snapshot, "bindings", []):
            source = _field(b, "source", None) or _field(b, "exchange", "")
            queue = _field(b, "destination", None) or _field(b, "queue", "")
            if source in top.exchanges and _field(b, "destination_type", "queue") == "queue":
                top.bindings.append(Binding(source, queue, _field(b, "routing_key", "")))
        return top

    def edges(self) -> list[Binding]:
        """Declared bindings plus the default exchange's implicit ones that producers use."""
        implicit = [
            Binding(DEFAULT_EXCHANGE, key, key)
            for exchange, keys in self.producers.values()
            if exchange == DEFAULT_EXCHANGE
            for key in routing_keys(keys)
            if key in self.queues
        ]
        return list(dict.fromkeys(self.bindings + implicit))

    def describe(self) -> str:
        """The topology as text, one declaration a line."""
        lines = [f"exchange {short_name(e.name)} ({e.type})" for e in self.exchanges.values()]
        for q in self.queues.values():
            flags = [k for k in ("durable", "exclusive", "auto_delete") if getattr(q, k)]
            dlx = q.dead_letter_exchange
            flags += [f"dead letters -> {short_name(dlx)}"] if dlx is not None else []
            lines.append(
                f"queue    {short_name(q.name)}" + (f" ({', '.join(flags)})" if flags else "")
            )
        for b in self.edges():
            key = _key_label(b, self)
            lines.append(f"binding  {short_name(b.exchange)} --[{key}]--> {short_name(b.queue)}")
        return "\n".join(lines)

    def draw(self, ax: Axes | None = None, title: str | None = None) -> Figure:
        """Draw producers → exchanges → (binding keys) → queues → consumers."""
        return _draw(self, ax, title or f"AMQP topology ({self.source})")


def routing_keys(keys: str | Sequence[str] | None) -> list[str]:
    """A producer's routing keys as a list (``None`` -> ``[]``)."""
    if keys is None:
        return []
    return [keys] if isinstance(keys, str) else list(keys)


def _by_rank(names: list[str], previous: list[str], feeds: Mapping[str, list[str]]) -> list[str]:
    def rank(name: str) -> float:
        rows = [previous.index(f) for f in feeds.get(name, []) if f in previous]
        return sum(rows) / len(rows) if rows else float(len(previous))

    return sorted(names, key=rank)  # stable: ties keep declaration order


def _field(record: Any, name: str, default: Any = None) -> Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def _key_label(b: Binding, top: Topology) -> str:
    if b.exchange == DEFAULT_EXCHANGE:
        return short_name(b.routing_key)  # the queue's own name
    return b.routing_key or "∅"


_GAP, _HALF = 2.0, 0.55  # least column spacing and half a box's width, in data units
_INCH_X, _INCH_Y = 1.4, 0.95  # inches per data unit, so text keeps its size in any figure
_CHAR = 0.05  # width of one 8 pt monospace character, in data units
_STYLE = {  # column -> (face colour, edge colour)
    "producer": ("#e8f5e9", "#2e7d32"),
    "exchange": ("#fff3e0", "#e65100"),
    "queue": ("#e3f2fd", "#1565c0"),
    "consumer": ("#f3e5f5", "#6a1b9a"),
}
_DEAD = "#c62828"
#: column an edge goes into -> (what its label is, where along the edge, margin before the head)
#: A producer's keys sit left of the broker's box; binding keys past the middle, where the
#: edges of a fan-out have spread apart.
_LABEL_AT = {
    "exchange": ("routing keys published", 0.45, 0.22),
    "queue": ("binding keys", 0.6, 0.0),
    "consumer": ("", 0.5, 0.0),
}


def _draw(top: Topology, ax: Axes | None, title: str) -> Figure:
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    edges = top.edges()
    exchanges = list(top.exchanges)
    if any(b.exchange == DEFAULT_EXCHANGE for b in edges):
        exchanges.insert(0, DEFAULT_EXCHANGE)
    # Order each column by the mean row of what feeds it, so few edges cross.
    queues = _by_rank(
        list(top.queues),
        exchanges,
        {q: [b.exchange for b in edges if b.queue == q] for q in top.queues},
    )
    producers = _by_rank(
        list(top.producers), exchanges, {p: [x] for p, (x, _) in top.producers.items()}
    )
    consumers = _by_rank(list(top.consumers), queues, {c: [q] for c, q in top.consumers.items()})

    # Edge labels: a producer's routing keys, and the binding keys of each exchange -> queue pair.
    published = {
        name: "\n".join(short_name(k) for k in routing_keys(keys))
        for name, (exchange, keys) in top.producers.items()
        if exchange in exchanges
    }
    bound: dict[tuple[str, str], list[str]] = {}  # several bindings of one pair share an arrow
    for b in edges:
        if b.exchange in exchanges and b.queue in top.queues:
            kind = top.exchanges[b.exchange].type if b.exchange in top.exchanges else "direct"
            label = "" if kind == "fanout" else _key_label(b, top)
            bound.setdefault((b.exchange, b.queue), []).append(label)
    bound_labels = {pair: "\n".join(filter(None, keys)) for pair, keys in bound.items()}

    columns: list[tuple[str, list[str], list[str]]] = [  # kind, names, labels on edges into it
        ("producer", producers, []),
        ("exchange", exchanges, list(published.values())),
        ("queue", queues, list(bound_labels.values())),
        ("consumer", consumers, []),
    ]
    columns = [c for c in columns if c[1]]
    # Widen a gap until the widest label on its edges fits at its place (see arrow()).
    xs = [0.0]
    for kind, _, labels in columns[1:]:
        chars = max((len(line) for label in labels for line in label.split("\n")), default=0)
        width = _CHAR * chars + 0.1 if chars else 0.0
        _, at, margin = _LABEL_AT[kind]
        span = (width / 2 + 0.08) / min(at, 1 - at) + margin if chars else 0.0
        xs.append(xs[-1] + max(_GAP, 2 * _HALF + 0.04 + span))
    x_of = {kind: x for (kind, _, _), x in zip(columns, xs, strict=True)}
    tallest = max(len(names) for _, names, _ in columns)
    half_h = (tallest - 1) / 2
    same_row_dlx = False
    pos: dict[tuple[str, str], tuple[float, float]] = {}
    for kind, names, _ in columns:
        for i, name in enumerate(names):
            pos[kind, name] = (x_of[kind], (len(names) - 1) / 2 - i)
    for q in top.queues.values():
        dlx = q.dead_letter_exchange
        if dlx is not None and ("exchange", dlx) in pos:
            same_row_dlx |= abs(pos["queue", q.name][1] - pos["exchange", dlx][1]) < 0.1
    y_low = -half_h - (0.95 if same_row_dlx else 0.55)
    y_high = half_h + 1.25
    x_low, x_high = -_HALF - 0.25, xs[-1] + _HALF + 0.25
    if ax is None:  # axes fill the figure (but the title), so _INCH_X/_INCH_Y hold
        width, height = _INCH_X * (x_high - x_low), _INCH_Y * (y_high - y_low)
        _, ax = plt.subplots(figsize=(width, height + 0.45))
        ax.figure.subplots_adjust(left=0, right=1, bottom=0, top=height / (height + 0.45))
    fig = cast("Figure", ax.figure)

    # The broker: one virtual host holding the exchanges and queues; clients stay outside.
    inside = [x_of[k] for k in ("exchange", "queue") if k in x_of]
    if inside:
        left, right = min(inside) - _HALF - 0.2, max(inside) + _HALF + 0.2
        ax.add_patch(
            FancyBboxPatch(
                (left, y_low + 0.08), right - left, y_high - y_low - 0.16,
                boxstyle="round,pad=0.02,rounding_size=0.15", fc="#fafafa", ec="#9e9e9e",
                lw=1.2, ls=(0, (4, 2)), zorder=0,
            )
        )  # fmt: skip
        ax.text((left + right) / 2, y_high - 0.3, f"broker · virtual host {top.vhost!r}",
                ha="center", va="center", fontsize=9, color="#616161", style="italic")  # fmt: skip

    for kind, names, _ in columns:
        for name in names:
            x, y = pos[kind, name]
            face, edge = _STYLE[kind]
            # Wrap at the dots of a dotted name, never inside a word.
            label = _wrap_dotted(short_name(name))
            if kind == "exchange":
                label += f"\n[{top.exchanges[name].type if name in top.exchanges else 'direct'}]"
            if kind == "queue" and name in top.ready:
                label += f"\n{top.ready[name]} ready"
            ax.add_patch(
                FancyBboxPatch(
                    (x - _HALF, y - 0.3), 2 * _HALF, 0.6,
                    boxstyle="round,pad=0.02", fc=face, ec=edge, lw=1.5, zorder=2,
                )
            )  # fmt: skip
            ax.text(x, y, label, ha="center", va="center", fontsize=8.5, zorder=3)
        ax.text(x_of[kind], half_h + 0.62, kind + "s", ha="center", fontsize=10, weight="bold",
                color=_STYLE[kind][1])  # fmt: skip

    def arrow(a: tuple[float, float], b: tuple[float, float], label: str, into: str) -> None:
        tail, head = (a[0] + _HALF + 0.02, a[1]), (b[0] - _HALF - 0.02, b[1])
        ax.annotate(
            "", xy=head, xytext=tail, zorder=1,
            arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 1.2},
        )  # fmt: skip
        if label:
            _, at, margin = _LABEL_AT[into]
            end = (
                head[0] - margin,
                tail[1] + (head[1] - tail[1]) * (1 - margin / (head[0] - tail[0])),
            )
            mid = tail[0] + at * (end[0] - tail[0]), tail[1] + at * (end[1] - tail[1])
            box = {"fc": "white", "ec": "#bbbbbb", "boxstyle": "round,pad=0.2"}
            ax.text(*mid, label, ha="center", va="center", multialignment="left", fontsize=8,
                    family="monospace", zorder=4, bbox=box)  # fmt: skip

    for name, label in published.items():
        arrow(pos["producer", name], pos["exchange", top.producers[name][0]], label, "exchange")
    for (exchange, queue), label in bound_labels.items():
        arrow(pos["exchange", exchange], pos["queue", queue], label, "queue")
    for name, queue in top.consumers.items():
        if ("queue", queue) in pos:
            arrow(pos["queue", queue], pos["consumer", name], "", "consumer")
    for q in top.queues.values():
        dlx = q.dead_letter_exchange
        if dlx is not None and ("exchange", dlx) in pos:
            _dead_letter_arrow(ax, pos["queue", q.name], pos["exchange", dlx])
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_title(title)
    ax.axis("off")
    return fig


def _dead_letter_arrow(ax: Axes, queue: tuple[float, float], dlx: tuple[float, float]) -> None:
    """Dashed, from the queue's left edge to the DLX's facing edge, clear of their bindings."""
    (qx, qy), (ex, ey) = queue, dlx
    if abs(qy - ey) < 0.1:  # same row: curve underneath both boxes
        start, end, bend = (qx - 0.25, qy - 0.3), (ex + 0.25, ey - 0.3), -0.35
        mid = ((start[0] + end[0]) / 2, min(start[1], end[1]) - 0.3)
    else:  # leave the queue low (or high) on its left side, enter the DLX from above (below)
        down = ey < qy
        start = (qx - _HALF - 0.02, qy - 0.18 if down else qy + 0.18)
        end, bend = (ex + 0.2, ey + 0.31 if down else ey - 0.31), 0.0
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    ax.annotate(
        "", xy=end, xytext=start, zorder=1,
        arrowprops={"arrowstyle": "-|>", "color": _DEAD, "lw": 1.2, "ls": "--",
                    "connectionstyle": f"arc3,rad={bend}"},
    )  # fmt: skip
    ax.text(*mid, "dead letters\n(on reject)", color=_DEAD, ha="center", va="center",
            fontsize=7.5, zorder=4,
            bbox={"fc": "white", "ec": _DEAD, "boxstyle": "round,pad=0.2"})  # fmt: skip
