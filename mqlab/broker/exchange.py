"""An exchange (交换机): a name, a type and a list of bindings; it stores no messages.

Publishing asks the exchange which bindings accept the message (see :mod:`.routing`); the
broker then copies the message into each destination queue. The default exchange ``""`` has
no stored bindings: every queue is implicitly bound to it under its own name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mqlab.routing import Binding, route

__all__ = ["PREDECLARED", "Exchange"]

#: Exchanges every RabbitMQ vhost has from the start (``""`` is the default exchange).
PREDECLARED: dict[str, str] = {
    "": "direct",
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
}


@dataclass(eq=False)
class Exchange:
    """A named router. ``bindings`` is keyed by :attr:`Binding.key`, in binding order."""

    name: str
    type: str
    durable: bool = False
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)
    bindings: dict[tuple, Binding] = field(default_factory=dict)

    @property
    def alternate(self) -> str | None:
        """Where unroutable messages go instead (the ``alternate-exchange`` argument)."""
        value = self.arguments.get("alternate-exchange")
        return value if isinstance(value, str) else None

    @property
    def is_default(self) -> bool:
        return self.name == ""

    def route(self, routing_key: str, headers: Mapping[str, Any] | None = None) -> list[Binding]:
        """Bindings that accept a message with this routing key and headers."""
        if self.is_default:
            return [Binding("", routing_key, routing_key)]
        return route(self.type, self.bindings.values(), routing_key, headers)

    def bind(self, binding: Binding) -> None:
        self.bindings.setdefault(binding.key, binding)

    def unbind(self, binding: Binding) -> bool:
        return self.bindings.pop(binding.key, None) is not None
