"""mqlab: AMQP with aio-pika, an embedded broker, and an event-driven trading pipeline.

``await mqlab.connect()`` gives a robust aio-pika connection: to ``MQLAB_AMQP_URL`` when it is
set, otherwise to an embedded broker started for you. Chapters 07–10 import from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqlab.connection import connect

__all__ = ["connect"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import mqlab` stays cheap for chapters that never touch a broker.
    if name == "connect":
        from mqlab.connection import connect

        return connect
    raise AttributeError(f"module 'mqlab' has no attribute {name!r}")
