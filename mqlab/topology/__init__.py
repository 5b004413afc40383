"""Declare, then draw what was declared: exchanges → bindings (with keys) → queues.

* :mod:`mqlab.topology.recorder`: :class:`TopologyRecorder` declares through aio-pika, records
  each declaration, and verifies it with passive declares (:class:`Verification`).
* :mod:`mqlab.topology.graph`: the :class:`Topology` it records into (exchanges, queues,
  bindings, producers, consumers) and its drawing.
"""

from __future__ import annotations

from mqlab.topology.graph import (
    DEFAULT_EXCHANGE,
    Binding,
    ExchangeSpec,
    QueueSpec,
    Topology,
    routing_keys,
    short_name,
)
from mqlab.topology.recorder import TopologyRecorder, Verification

__all__ = [
    "DEFAULT_EXCHANGE",
    "Binding",
    "ExchangeSpec",
    "QueueSpec",
    "Topology",
    "TopologyRecorder",
    "Verification",
    "routing_keys",
    "short_name",
]
