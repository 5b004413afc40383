"""An embedded AMQP 0-9-1 broker: aio-pika talks to it over TCP as it would to RabbitMQ.

Learners can run every messaging chapter without installing RabbitMQ; only the URL changes.
Every frame is encoded and decoded by pamqp (the library under aio-pika). Routing
(:mod:`.routing`), exchanges (:mod:`.exchange`) and queues (:mod:`.queue`) are small on
purpose: chapters 08–09 read them.

* :class:`Broker` — ``async with Broker(port=0) as b: ... b.url``
* :class:`BrokerThread` — the same on a background thread (scripts, tests, Jupyter)
* ``python -m mqlab broker`` — standalone (see :mod:`.cli`)
"""

from mqlab.broker.errors import ChannelException, ConnectionException
from mqlab.broker.server import Broker
from mqlab.broker.thread import BrokerThread
from mqlab.broker.vhost import BindingInfo, ExchangeInfo, QueueInfo, Topology

__all__ = [
    "BindingInfo",
    "Broker",
    "BrokerThread",
    "ChannelException",
    "ConnectionException",
    "ExchangeInfo",
    "QueueInfo",
    "Topology",
]
