"""The running pipeline's exchanges, queues and bindings, read back from the broker."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from mqlab.bus import Bus
from mqlab.services.protocol import EXCHANGE_END, EXCHANGE_STEP, EXECUTION, MARKET, ORDERS

if TYPE_CHECKING:
    from mqlab.pipeline.runner import Pipeline
    from mqlab.topology import Topology

__all__ = ["live_topology"]


async def live_topology(pipeline: Pipeline, *, dead_letters: bool = True) -> Topology:
    """The running pipeline's exchanges, queues and bindings, read back from the broker.

    On the embedded broker this is the broker's own snapshot; on RabbitMQ, what the services
    declared, each exchange and queue confirmed by a passive declare (AMQP cannot list
    bindings). The services are drawn as the producers and consumers around them.
    ``dead_letters=False`` leaves out the dead-letter exchange and queue (and each queue's
    link to them), for a figure of the data flow alone.
    """
    from mqlab.connection import running_embedded_broker
    from mqlab.topology import Binding, ExchangeSpec, QueueSpec, Topology

    await pipeline.ready()
    top = Topology(source="declared by the services")
    for service in pipeline.services.values():
        declared = service.bus.declared
        for name, kind in declared["exchanges"].items():
            top.exchanges[name] = ExchangeSpec(name, kind, durable=True)
        for name, arguments in declared["queues"].items():
            top.queues[name] = QueueSpec(name, durable=True, arguments=dict(arguments))
        for exchange, queue, key in declared["bindings"]:
            top.bindings.append(Binding(exchange, queue, key))
    top.bindings = list(dict.fromkeys(top.bindings))
    name, sid = pipeline.prefix, pipeline.strategy_id
    keys = tuple(pipeline.config.market_keys)
    top.producers = {
        "market service": (f"{name}.{MARKET}", keys),
        "strategy host": (f"{name}.{ORDERS}", (f"order.{sid}.…", f"done.{sid}")),
        "exchange service": (
            f"{name}.{EXECUTION}",
            ("fill.…", "order_update.…", f"call.{sid}", EXCHANGE_STEP, EXCHANGE_END),
        ),
    }
    top.consumers = {
        f"{service} ({queue.split('.')[-1]})": f"{name}.{queue}"
        for service, queues in {
            "exchange": ["exchange.market", "exchange.orders"],
            "strategy": [f"strategy.{sid}.market", f"strategy.{sid}.execution"],
            "portfolio": ["portfolio.execution"],
            "market": ["market.progress"],
        }.items()
        for queue in queues
    }
    if pipeline.risk is not None:
        top.consumers["risk (orders)"] = f"{name}.risk.orders"
    broker = running_embedded_broker(pipeline.url)
    if broker is not None:
        snapshot = Topology.from_broker(broker)
        top.bindings = [b for b in snapshot.bindings if b.queue in top.queues]
        top.ready = {q: n for q, n in snapshot.ready.items() if q in top.queues}
        top.source = "live, from the embedded broker"
    else:
        async with Bus(pipeline.url, prefix=pipeline.prefix) as bus:
            for queue in list(top.queues):
                probe = await bus.connection.channel()  # type: ignore[union-attr]
                try:
                    found = await probe.declare_queue(queue, passive=True)
                    top.ready[queue] = found.declaration_result.message_count or 0
                except Exception:
                    del top.queues[queue]
                finally:
                    with contextlib.suppress(Exception):
                        await probe.close()
        top.source = "declared, and confirmed on the broker"
    if not dead_letters:
        dlx, dlq = f"{name}.dlx", f"{name}.dlq"
        top.exchanges.pop(dlx, None)
        top.queues.pop(dlq, None)
        top.ready.pop(dlq, None)
        top.bindings = [b for b in top.bindings if b.exchange != dlx]
        top.queues = {
            q: QueueSpec(spec.name, spec.durable, spec.exclusive, spec.auto_delete, {})
            for q, spec in top.queues.items()
        }
    return top
