"""Chapter 09 checks, each run against the broker (embedded, or ``MQLAB_AMQP_URL``).

- :func:`check_topic_binding`: a binding key that receives exactly the routing keys a task asks
  for; the broker's own topic exchange decides.
- :func:`check_worker`: ``await handle(message, work)`` must ack only after the work succeeded
  and reject a failed task without requeue, so that a worker dying mid-task loses nothing and a
  poison task ends in the dead-letter queue instead of looping or vanishing.
- :func:`check_reply_handler`: ``on_reply(message, pending)`` for :class:`~mqlab.patterns.rpc.
  RpcClient` must complete the right call and ignore replies nobody waits for, without raising.

A notebook submits an answer with :func:`mqlab.exercises.submit`, which shows the verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractRobustConnection

from mqlab.connection import broker_url
from mqlab.exercises import ExerciseError, Verdict, expect, one_line, passed, refused
from mqlab.exercises import unanswered as unanswered_error
from mqlab.patterns import dead_letter, topics, unique
from mqlab.patterns.rpc import RpcClient, RpcServer, RpcTimeout
from mqlab.topology import TopologyRecorder

__all__ = [
    "ROUTING_KEYS",
    "TASKS",
    "WorkerCrashed",
    "check_reply_handler",
    "check_topic_binding",
    "check_worker",
]

#: The events a strategy could subscribe to (``kind.venue.symbol[.interval]``).
ROUTING_KEYS = (
    "kline.binance.BTCUSDT.1m",
    "kline.okx.ETHUSDT.1m",
    "kline.binance.BTCUSDT.5m",
    "orderbook.binance.BTCUSDT",
    "trade.okx.ETHUSDT",
    "trade.binance.ETHUSDT",  # so that "everything on binance" is not "all about BTCUSDT"
    "kline",
)

#: Task name -> the routing keys (of :data:`ROUTING_KEYS`) its binding key must receive.
TASKS: Mapping[str, frozenset[str]] = {
    # Not the chapters' stock example (kline.*.*.1m), so the answer is not on the screen.
    "BTCUSDT klines on binance, every interval": frozenset(
        {"kline.binance.BTCUSDT.1m", "kline.binance.BTCUSDT.5m"}
    ),
    "everything about BTCUSDT on binance": frozenset(
        {"kline.binance.BTCUSDT.1m", "kline.binance.BTCUSDT.5m", "orderbook.binance.BTCUSDT"}
    ),
}

Work = Callable[[bytes], Awaitable[None]]
Handle = Callable[[AbstractIncomingMessage, Work], Awaitable[Any]]
Pending = MutableMapping[str, "asyncio.Future[bytes]"]
OnReply = Callable[[AbstractIncomingMessage, Pending], bool]


async def _connect(url: str | None) -> AbstractRobustConnection:
    import mqlab

    return await mqlab.connect(url)


_BINDING_HINT = "'*' matches exactly one word, '#' zero or more; count the words in each key"


async def check_topic_binding(task: str, binding_key: str, url: str | None = None) -> Verdict:
    """The queue bound with ``binding_key`` must receive exactly ``TASKS[task]``."""
    expect(task in TASKS, f"unknown task {task!r}", f"one of {sorted(TASKS)}")
    expect(
        isinstance(binding_key, str),
        f"a binding key is a str, got {binding_key!r}",
        "write it as a string of dot-separated words, e.g. 'kline.*.*.1m'",
    )
    if not binding_key:
        raise ExerciseError(f"not answered yet: write a binding key for {task!r}", _BINDING_HINT)
    expect(
        len(binding_key.encode()) <= 255,
        f"a binding key of {len(binding_key.encode())} bytes: AMQP allows at most 255",
        _BINDING_HINT,
    )
    connection = await _connect(url)
    async with connection:
        with refused(_BINDING_HINT):
            table = await topics.match_table(connection, [binding_key], ROUTING_KEYS)
    got = {key for key, hit in table.loc[binding_key].items() if hit}
    wanted = TASKS[task]
    missed, extra = sorted(wanted - got), sorted(got - wanted)
    expect(
        not missed and not extra,
        f"{binding_key!r} for {task!r}: missed {missed}, also got {extra}",
        _BINDING_HINT,
    )
    return passed("check_topic_binding", f"{task}: {binding_key!r}")


class WorkerCrashed(Exception):
    """Raised by the check's ``work`` when it has killed the worker's channel mid-task."""


async def check_worker(handle: Handle, url: str | None = None, timeout: float = 5.0) -> Verdict:
    """Two workers run ``handle``; one dies during task-1, and task-3 always fails.

    The crash is simulated by closing a worker's channel mid-task, and aiormq and aio-pika
    log what follows (a dropped connection, an ack on a closed channel) with tracebacks. They
    are silenced while the check runs: a wrong answer gets one line saying what went wrong,
    what the handler itself raised if anything, and the hint.
    """
    with _quiet(logging.getLogger("aiormq")), _quiet(logging.getLogger("aio_pika")):
        try:
            return await _check_worker(handle, url, timeout)
        except _HandlerFailed as failed:
            raise ExerciseError(
                f"{failed.error.reason}; your handler raised {failed.detail}", failed.error.hint
            ) from None


class _HandlerFailed(Exception):
    """A failed check, plus the first exception the learner's handler raised."""

    def __init__(self, error: ExerciseError, raised: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
        self.detail = one_line(raised)


async def _check_worker(handle: Handle, url: str | None, timeout: float) -> Verdict:
    tasks = [f"task-{i}" for i in range(5)]
    poison, doomed = "task-3", "task-1"
    done: list[str] = []
    deliveries: Counter[str] = Counter()
    crashed = asyncio.Event()
    unanswered = False
    from_work: list[BaseException] = []  # what work raised on purpose (handlers may re-raise)
    handler_errors: list[BaseException] = []  # anything else the handler raised
    connection = await _connect(url)
    async with connection, TopologyRecorder(connection) as rec:
        queue, _, dead = await dead_letter.declare_with_dead_letters(rec, unique("ex09.tasks"))

        async def start_worker() -> AbstractConnection:
            # Each worker has its own connection, as a separate process would: whatever it
            # does wrong on a dead channel cannot take the check's own connection down.
            own = await aio_pika.connect(broker_url(url))  # not robust: a dead worker stays dead
            channel = await own.channel()
            await channel.set_qos(prefetch_count=1)

            async def work(body: bytes) -> None:
                name = body.decode()
                if name == doomed and not crashed.is_set():
                    crashed.set()
                    await channel.close()  # the worker process is gone: no ack can follow
                    from_work.append(WorkerCrashed(f"the worker died while doing {name}"))
                    raise from_work[-1]
                if name == poison:
                    from_work.append(ValueError(f"{name} carries malformed data"))
                    raise from_work[-1]
                await asyncio.sleep(0.01)
                done.append(name)

            async def on_message(message: AbstractIncomingMessage) -> None:
                nonlocal unanswered
                deliveries[message.body.decode()] += 1
                try:
                    await handle(message, work)
                except NotImplementedError:
                    unanswered = True
                except Exception as exc:  # a handler may let the work's failure propagate
                    # What a handler raises on the channel the check killed is the simulated
                    # crash's doing (a dead process raises nothing), not the answer's.
                    if not any(exc is e for e in from_work) and not channel.is_closed:
                        handler_errors.append(exc)

            consume_on = await channel.get_queue(queue.name, ensure=False)
            await consume_on.consume(on_message)
            return own

        workers = [await start_worker(), await start_worker()]
        for name in tasks:
            message = aio_pika.Message(
                name.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            await rec.channel.default_exchange.publish(message, routing_key=queue.name)

        def settled() -> bool:
            finished = set(done) >= set(tasks) - {poison}
            return unanswered or deliveries[poison] > 3 or (finished and deliveries[poison] > 0)

        deadline = asyncio.get_running_loop().time() + timeout
        while not settled() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # let a last ack or reject reach the broker
        for worker in workers:
            with contextlib.suppress(Exception):
                await worker.close()  # unacked messages go back to the queue
        parked = []
        while (m := await dead.get(fail=False, no_ack=True)) is not None:
            parked.append(m.body.decode())
        left = (await rec.verify()).queues[queue.name]
    if unanswered:
        raise unanswered_error()
    try:
        stuck = left[0] if left else 0
        expect(
            deliveries[poison] <= 3,
            f"{poison} was delivered {deliveries[poison]} times: it fails every time, so "
            "requeueing it loops forever",
            "reject a failed task without requeue: await message.reject(requeue=False)",
        )
        expect(
            stuck == 0,
            f"{stuck} task(s) were never acked: they went back to the queue when the workers "
            "stopped",
            "call `await message.ack()` once the work is done",
        )
        for name in tasks:
            if name == poison:
                continue
            expect(
                name in done,
                f"{name} was never completed"
                + (
                    " (a worker died while doing it, and the broker never got it back)"
                    if name == doomed
                    else ""
                ),
                "ack only AFTER `await work(message.body)` returns: a task acked first is lost "
                "when the worker dies"
                if name == doomed
                else "call `await work(message.body)` for every message",
            )
        expect(
            parked == [poison],
            f"dead-letter queue holds {parked}; expected [{poison!r}], whose work raised "
            "ValueError",
            "a task whose work raised must not be acked: reject it with requeue=False so the "
            "queue's dead-letter exchange keeps it",
        )
    except ExerciseError as error:
        if handler_errors:
            raise _HandlerFailed(error, handler_errors[0]) from None
        raise
    return passed("check_worker", f"all done once acked, {doomed} redelivered, {poison} parked")


async def _square(body: bytes) -> bytes:
    if body == b"slow":
        await asyncio.sleep(0.5)
        return b"late"
    n = int(body)
    await asyncio.sleep(0.03 * (6 - n))  # later calls are answered first: replies arrive reversed
    return str(n * n).encode()


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """Silence ``logger`` below CRITICAL: the check counts what it would warn about itself."""
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def check_reply_handler(on_reply: OnReply, url: str | None = None) -> Verdict:
    """Plug ``on_reply`` into an :class:`RpcClient`; calls, a timeout and a stray reply.

    The client's warnings about ignored replies are silenced while the check runs: it provokes
    them on purpose, and reports what went wrong in its own message.
    """
    with _quiet(logging.getLogger(RpcClient.__module__)):  # until the connection is closed
        connection = await _connect(url)
        async with connection:
            return await _check_reply_handler(on_reply, connection)


async def _check_reply_handler(on_reply: OnReply, connection: AbstractConnection) -> Verdict:
    channel = await connection.channel()
    server = RpcServer(channel, unique("ex09.rpc"), _square)
    await server.start()
    unanswered = False

    def answer(message: AbstractIncomingMessage, pending: Pending) -> bool:
        nonlocal unanswered
        try:
            return on_reply(message, pending)
        except NotImplementedError:
            unanswered = True
            for future in pending.values():  # end the waiting calls now, not at the timeout
                if not future.done():
                    future.set_exception(NotImplementedError())
            return False

    client = await RpcClient(channel, on_reply=answer).start()
    try:
        replies = await asyncio.gather(
            *(client.call(server.queue_name, str(n).encode(), timeout=2) for n in range(1, 6))
        )
    except NotImplementedError:
        raise unanswered_error() from None
    except RpcTimeout:
        replies = []
    if unanswered:
        raise unanswered_error()
    expect(
        replies == [str(n * n).encode() for n in range(1, 6)] and not client.errors,
        f"five concurrent calls square(1..5) returned {replies!r}"
        + (f"; on_reply raised {client.errors[0]!r}" if client.errors else ""),
        "find the call by message.correlation_id in `pending` and set_result(message.body)",
    )
    with contextlib.suppress(RpcTimeout):  # the server takes 0.5 s: this call times out
        await client.call(server.queue_name, b"slow", timeout=0.2)
    stray = aio_pika.Message(b"?", correlation_id="nobody-asked")
    await channel.default_exchange.publish(stray, routing_key=client.reply_queue.name)
    for _ in range(150):  # the late reply comes about 0.3 s after the timeout
        if client.ignored >= 2 or client.errors:
            break
        await asyncio.sleep(0.02)
    await channel.close()
    expect(
        not client.errors,
        f"on_reply raised {client.errors[0]!r}" if client.errors else "on_reply raised",
        "a reply nobody waits for (a late one, or a stray) must be ignored: use "
        "pending.pop(message.correlation_id, None) and return False when it is None",
    )
    expect(
        client.ignored == 2,
        f"{client.ignored} replies counted as ignored; expected 2 (the late one and the stray)",
        "return True when you completed a waiting call, False otherwise",
    )
    return passed("check_reply_handler", "5 concurrent calls, 1 late reply and 1 stray ignored")
