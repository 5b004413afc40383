"""The bus keeps its promises on both brokers: confirmed, durable, acked after, deduped, DLQ."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from yarl import URL

from mqlab.bus import (
    HEADER_QUEUE,
    HEADER_REASON,
    Bus,
    BusError,
    Delivery,
    Reject,
    Unroutable,
    probe,
)
from mqlab.faults import FaultProxy


def _prefix() -> str:
    return f"t-bus-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def bus(amqp_url: str) -> AsyncIterator[Bus]:
    async with Bus(amqp_url, prefix=_prefix()) as bus:
        try:
            yield bus
        finally:
            await bus.delete()


class Recorder:
    """A handler that records what it handled, and can fail on chosen bodies."""

    def __init__(self, fail: dict[bytes, Exception] | None = None) -> None:
        self.bodies: list[bytes] = []
        self.fail = fail or {}
        self.running = 0
        self.max_running = 0
        self.changed = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        await asyncio.sleep(0.001)  # give a concurrent delivery the chance to overlap
        self.running -= 1
        if delivery.body in self.fail:
            raise self.fail[delivery.body]
        self.bodies.append(delivery.body)
        self.changed.set()

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.bodies) < count:
                self.changed.clear()
                await self.changed.wait()


async def _dead_letters(bus: Bus, count: int, timeout: float = 10) -> list[Delivery]:
    found: list[Delivery] = []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            found += await bus.dead_letters()
            await asyncio.sleep(0.05)
    return found


async def test_handles_in_order_one_at_a_time(bus: Bus) -> None:
    handler = Recorder()
    await bus.subscribe("q", [("events", "kline.#")], handler)
    bodies = [f"{i}".encode() for i in range(50)]
    for i, body in enumerate(bodies):
        await bus.publish("events", "kline.binance.btcusdt.1m", body, message_id=f"m{i}")
    await handler.wait_for(50)
    assert handler.bodies == bodies
    assert handler.max_running == 1, "the handler must never run twice at once"


async def test_duplicate_message_ids_are_handled_once(bus: Bus) -> None:
    handler = Recorder()
    subscription = await bus.subscribe("q", [("events", "#")], handler)
    for body in (b"a", b"a-again", b"b"):
        await bus.publish("events", "x", body, message_id=body[:1].decode())
    await handler.wait_for(2)
    await asyncio.sleep(0.2)
    print("handled", handler.bodies, "stats", subscription.stats)
    assert handler.bodies == [b"a", b"b"]
    assert subscription.stats.duplicates == 1


async def test_bad_messages_go_to_the_dlq_with_a_reason_and_the_rest_flow(bus: Bus) -> None:
    handler = Recorder(
        fail={b"bad": ValueError("field 'price' is not a decimal"), b"no": Reject("over limit")}
    )
    subscription = await bus.subscribe("q", [("orders", "#")], handler)
    for i, body in enumerate([b"1", b"bad", b"2", b"no", b"3"]):
        await bus.publish("orders", "order.sma", body, message_id=f"o{i}")
    await handler.wait_for(3)
    parked = await _dead_letters(bus, 2)
    reasons = {d.body: d.headers[HEADER_REASON] for d in parked}
    assert handler.bodies == [b"1", b"2", b"3"]
    assert reasons == {b"bad": "ValueError: field 'price' is not a decimal", b"no": "over limit"}
    assert {d.headers[HEADER_QUEUE] for d in parked} == {subscription.name}
    assert subscription.stats.dead_lettered == 2


async def test_queues_and_exchanges_are_durable_and_messages_persistent(
    bus: Bus, amqp_url: str
) -> None:
    await bus.declare_queue("q", [("events", "#")])
    await bus.publish("events", "k", b"x", message_id="m1")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        # Redeclaring with durable=True and the same arguments succeeds only if they match.
        queue = await channel.declare_queue(
            bus.name("q"),
            durable=True,
            arguments={"x-dead-letter-exchange": bus.name("dlx")},
        )
        await channel.declare_exchange(bus.name("events"), "topic", durable=True)
        message = await queue.get(no_ack=True, timeout=5)
    assert not queue.auto_delete
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.message_id == "m1"


async def test_unroutable_publish_raises_instead_of_vanishing(bus: Bus) -> None:
    await bus.declare_queue("q", [("events", "kline.#")])
    with pytest.raises(Unroutable, match="no queue is bound"):
        await bus.publish("events", "trade.binance.btcusdt", b"x", message_id="m")


async def test_aiormq_rejects_with_a_bare_exception_when_a_connection_ends_cleanly() -> None:
    # The premise of the bus's retry below: a reader that stops at a clean EOF closes the
    # connection with no reason, and aiormq then fails pending futures with ``Exception``.
    from aiormq.base import FutureStore

    store = FutureStore(asyncio.get_running_loop())
    confirmation = store.create_future()
    await store.reject_all(None)
    with pytest.raises(Exception) as caught:
        await confirmation
    assert type(caught.value) is Exception


async def test_a_publish_rejected_by_a_clean_disconnect_is_retried(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    await bus.subscribe("q", [("events", "kline.#")], recorder)
    channel = await bus.channel.get_underlay_channel()
    real = channel.basic_publish
    calls = 0

    async def publish_once_rejected(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Exception  # what aiormq raises for a connection that ended without an error
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(channel, "basic_publish", publish_once_rejected)
    await bus.publish("events", "kline.binance.btcusdt", b"k1", message_id="k1")
    await recorder.wait_for(1)
    assert recorder.bodies == [b"k1"] and bus.stats.publish_retries == 1


async def test_a_bug_in_publishing_is_not_mistaken_for_a_lost_connection(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    await bus.declare_queue("q", [("events", "kline.#")])
    channel = await bus.channel.get_underlay_channel()

    async def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug")

    monkeypatch.setattr(channel, "basic_publish", broken)
    with pytest.raises(ValueError, match="a bug"):
        await bus.publish("events", "kline.binance.btcusdt", b"k1", message_id="k1")
    assert bus.stats.publish_retries == 0


async def test_unacked_message_is_redelivered_to_the_next_consumer(amqp_url: str) -> None:
    prefix = _prefix()
    started = asyncio.Event()

    async def crash_midway(delivery: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()  # never returns: the "service" dies before its ack

    async with Bus(amqp_url, prefix=prefix) as first:
        await first.subscribe("q", [("events", "#")], crash_midway)
        await first.publish("events", "k", b"order-1", message_id="o1")
        await asyncio.wait_for(started.wait(), 10)
    handler = Recorder()
    async with Bus(amqp_url, prefix=prefix) as second:
        try:
            got: list[bool] = []

            async def record(delivery: Delivery) -> None:
                got.append(delivery.redelivered)
                await handler(delivery)

            await second.subscribe("q", [("events", "#")], record)
            await handler.wait_for(1)
            assert handler.bodies == [b"order-1"]
            assert got == [True]
        finally:
            await second.delete()


async def test_wait_for_consumers_names_the_missing_queue(bus: Bus) -> None:
    await bus.subscribe("here", [("events", "#")], Recorder())
    await bus.wait_for_consumers(["here"], timeout=5)
    with pytest.raises(BusError, match=r"missing.*start the service"):
        await bus.wait_for_consumers(["missing"], timeout=0.3)


async def test_unreachable_broker_gives_a_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(BusError, match=r"cannot reach the AMQP broker.*check the host and port"):
        await Bus("amqp://guest:guest@127.0.0.1:1/").start()
    with pytest.raises(BusError, match=r"guest:\*\*\*\*@127.0.0.1:1/"):  # password masked
        await probe("amqp://guest:guest@127.0.0.1:1/")
    # aiormq's own traceback-laden log of the failed connect is muted: our error says it all.
    assert not [r for r in caplog.records if r.name.startswith("aiormq")]


async def test_wrong_password_and_vhost_say_what_to_fix(rabbitmq_url: str) -> None:
    wrong = URL(rabbitmq_url).with_password("not-the-password")
    with pytest.raises(BusError, match=r"refused the login.*check the user and password"):
        await Bus(str(wrong)).start()
    with pytest.raises(BusError, match="virtual host 'no-such-vhost'"):
        await probe(str(URL(rabbitmq_url).with_path("/no-such-vhost")))


@pytest.mark.slow  # a fault scenario: connections cut mid-run
async def test_no_message_lost_or_doubled_when_connections_drop(amqp_url: str) -> None:
    """Cut every connection at random points while 300 messages flow; each is handled once."""
    prefix, total, rounds = _prefix(), 300, 0
    handler = Recorder()
    async with (
        FaultProxy(amqp_url) as proxy,
        Bus(proxy.url, prefix=prefix, reconnect_interval=0.1) as bus,
    ):
        subscription = await bus.subscribe("q", [("events", "#")], handler)
        for i in range(total):
            await bus.publish("events", "k", f"{i}".encode(), message_id=f"m{i}")
            if i % 60 == 30:
                rounds += proxy.drop() > 0
        await handler.wait_for(total, timeout=60)
        await asyncio.sleep(0.3)
        await bus.delete()
    handled = [int(b) for b in handler.bodies]
    print(
        f"drops={rounds} published={total} handled={len(handled)} "
        f"publish_retries={bus.stats.publish_retries} duplicates={subscription.stats.duplicates}"
    )
    assert rounds >= 4
    assert sorted(handled) == list(range(total)), "a message was lost or applied twice"
