"""Declare, then draw what was declared: exchanges → bindings (with keys) → queues.

* :mod:`mqlab.topology.recorder`: :class:`TopologyRecorder` declares through aio-pika, records
  each declaration, and verifies it with passive declares (:class:`Verification`).
* :mod:`mqlab.topology.graph`: the :class:`Topology` it records into (exchanges, queues,
  bindings, producers, consumers) and its drawing.
"""

from __future__ import annotations

# Every name lives in one submodule and is listed once, in its __all__ (asyncio's pattern).
from mqlab.topology import graph, recorder
from mqlab.topology.graph import *  # noqa: F403
from mqlab.topology.recorder import *  # noqa: F403

__all__ = graph.__all__ + recorder.__all__
