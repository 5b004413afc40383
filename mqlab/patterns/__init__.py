"""The messaging patterns of chapter 09, one module each, over aio-pika.

Each module has building blocks later chapters reuse and a ``demo(connection)`` that runs the
pattern end to end and returns a :class:`PatternRun`: who received which message (print it),
what was declared (``run.topology.draw()``) and counters.

* :mod:`.simple`: one queue through the default exchange
* :mod:`.work_queue`: competing workers, ack after the work, fair dispatch, crash redelivery
* :mod:`.pubsub`: fanout
* :mod:`.routing`: direct exchange, exact keys
* :mod:`.topics`: topic exchange, ``*`` and ``#``
* :mod:`.rpc`: request/reply with ``reply_to``, ``correlation_id`` and timeouts
* :mod:`.confirms`: publisher confirms, three strategies measured
* :mod:`.durability`: durable queues, persistent messages, a broker restart
* :mod:`.dead_letter`: poison messages parked with a reason
* :mod:`.mandatory`: unroutable messages returned to the publisher
"""

from mqlab.patterns import (
    confirms,
    dead_letter,
    durability,
    mandatory,
    pubsub,
    routing,
    rpc,
    simple,
    topics,
    work_queue,
)
from mqlab.patterns._common import Delivery, DeliveryLog, PatternRun, consume_into, unique
from mqlab.patterns.confirms import ConfirmResult
from mqlab.patterns.dead_letter import (
    death_reason,
    declare_with_dead_letters,
    handle_or_dead_letter,
)
from mqlab.patterns.durability import persistent
from mqlab.patterns.mandatory import PublishOutcome, publish_mandatory
from mqlab.patterns.rpc import RemoteError, RpcClient, RpcServer, RpcTimeout
from mqlab.patterns.work_queue import TaskRecord, Worker

__all__ = [
    "ConfirmResult",
    "Delivery",
    "DeliveryLog",
    "PatternRun",
    "PublishOutcome",
    "RemoteError",
    "RpcClient",
    "RpcServer",
    "RpcTimeout",
    "TaskRecord",
    "Worker",
    "confirms",
    "consume_into",
    "dead_letter",
    "death_reason",
    "declare_with_dead_letters",
    "durability",
    "handle_or_dead_letter",
    "mandatory",
    "persistent",
    "publish_mandatory",
    "pubsub",
    "routing",
    "rpc",
    "simple",
    "topics",
    "unique",
    "work_queue",
]
