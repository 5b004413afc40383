"""The reference solutions pass chapters 08-09's checks, and typical wrong answers fail them."""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
import pytest
from exercise_tables import WrongAnswers, wrong_answers

from mqlab.exercises import ExerciseError, Verdict, ch08, ch09, submit
from mqlab.exercises.solutions import ch08 as sol08
from mqlab.exercises.solutions import ch09 as sol09

# --- chapter 08: envelope -------------------------------------------------------------------


async def test_envelope_solution_passes(amqp_url: str) -> None:
    assert (await ch08.check_envelope(sol08.envelope_of, amqp_url)).passed


def _aioamqp_names(message: Any) -> dict[str, Any]:  # aioamqp's attribute names: they moved
    return {
        "consumer_tag": message.consumer_tag,
        "delivery_tag": message.delivery_tag,
        "exchange_name": message.exchange_name,
        "routing_key": message.routing_key,
        "is_redeliver": message.is_redeliver,
    }


def _never_redelivered(message: Any) -> dict[str, Any]:
    return sol08.envelope_of(message) | {"is_redeliver": False}


def _missing_field(message: Any) -> dict[str, Any]:
    out = sol08.envelope_of(message)
    del out["consumer_tag"]
    return out


def _stub(message: Any) -> dict[str, Any]:
    raise NotImplementedError


# --- chapter 08: survive a restart ----------------------------------------------------------


async def test_restart_solution_passes() -> None:
    assert (await ch08.check_survives_restart(sol08.publish)).passed


async def _transient_queue(channel: Any, queue_name: str, body: bytes) -> None:
    await channel.declare_queue(queue_name)
    message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    await channel.default_exchange.publish(message, routing_key=queue_name)


async def _transient_message(channel: Any, queue_name: str, body: bytes) -> None:
    await channel.declare_queue(queue_name, durable=True)
    await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue_name)


async def _no_queue(channel: Any, queue_name: str, body: bytes) -> None:
    message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
    await channel.default_exchange.publish(message, routing_key=queue_name)


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        (_transient_queue, "no queue 'orders'"),
        (_transient_message, "came back empty"),
        (_no_queue, "no queue 'orders'"),
    ],
)
async def test_restart_wrong_answers_fail(wrong: Any, says: str) -> None:
    with pytest.raises(ExerciseError, match=says):
        await ch08.check_survives_restart(wrong)


async def test_submit_runs_an_async_check_from_a_running_loop() -> None:
    # As in a notebook: the caller's loop runs; the check runs on its own, in a helper thread.
    verdict = submit(ch08.check_survives_restart, _transient_message)
    assert str(verdict).splitlines()[0].startswith("✗ survives_restart: ")
    assert verdict.hint.startswith("publish it with delivery_mode")
    assert submit(ch08.check_survives_restart, sol08.publish)


# --- chapter 09: topic binding keys ---------------------------------------------------------


@pytest.mark.parametrize("task", list(ch09.TASKS))
async def test_binding_key_solutions_pass(amqp_url: str, task: str) -> None:
    assert (await ch09.check_topic_binding(task, sol09.BINDING_KEYS[task], amqp_url)).passed


@pytest.mark.parametrize(
    ("task", "wrong", "says"),
    [
        ("BTCUSDT klines on binance, every interval", "kline.*.*.1m", "missed"),
        ("BTCUSDT klines on binance, every interval", "kline.#", "also got"),
        ("BTCUSDT klines on binance, every interval", "kline.binance.BTCUSDT", "missed"),
        ("BTCUSDT klines on binance, every interval", "*.binance.BTCUSDT.#", "also got"),
        ("everything about BTCUSDT on binance", "*.binance.BTCUSDT", "missed"),
        ("everything about BTCUSDT on binance", "#", "also got"),
        ("everything about BTCUSDT on binance", "*.binance.#", "also got"),
    ],
)
async def test_binding_key_wrong_answers_fail(
    amqp_url: str, task: str, wrong: str, says: str
) -> None:
    with pytest.raises(ExerciseError, match=says):
        await ch09.check_topic_binding(task, wrong, amqp_url)


# --- chapter 09: a worker that acks only after success --------------------------------------


async def test_worker_solution_passes(amqp_url: str) -> None:
    assert (await ch09.check_worker(sol09.handle, amqp_url)).passed


async def test_worker_with_process_passes(amqp_url: str) -> None:
    async def with_process(message: Any, work: Any) -> None:
        async with message.process():  # acks after, rejects without requeue on error
            await work(message.body)

    assert (await ch09.check_worker(with_process, amqp_url)).passed


async def _ack_first(message: Any, work: Any) -> None:  # aioquant's way
    await message.ack()
    await work(message.body)


async def _ack_always(message: Any, work: Any) -> None:
    try:
        await work(message.body)
    finally:
        await message.ack()


async def _never_ack(message: Any, work: Any) -> None:
    await work(message.body)


async def _requeue_on_error(message: Any, work: Any) -> None:
    try:
        await work(message.body)
    except Exception:
        await message.nack(requeue=True)
    else:
        await message.ack()


async def _unanswered(message: Any, work: Any) -> None:
    raise NotImplementedError


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        (_ack_first, "task-1 was never completed"),
        (_ack_always, "dead-letter queue holds \\[\\]"),
        (_never_ack, "never acked"),
        (_requeue_on_error, "loops forever"),
        (_unanswered, "not answered yet"),
    ],
)
@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
async def test_worker_wrong_answers_fail(amqp_url: str, wrong: Any, says: str) -> None:
    with pytest.raises(ExerciseError, match=says):
        await ch09.check_worker(wrong, amqp_url, timeout=3)


# --- chapter 09: the RPC reply handler ------------------------------------------------------


async def test_reply_handler_solution_passes(amqp_url: str) -> None:
    assert (await ch09.check_reply_handler(sol09.on_reply, amqp_url)).passed


def _tutorial(message: Any, pending: Any) -> bool:  # the aio-pika tutorial: KeyError on strays
    future = pending.pop(message.correlation_id)
    future.set_result(message.body)
    return True


def _returns_nothing(message: Any, pending: Any) -> Any:
    future = pending.pop(message.correlation_id, None)
    if future is not None:
        future.set_result(message.body)


def _first_waiting(message: Any, pending: Any) -> bool:  # ignores the correlation id
    if not pending:
        return False
    future = pending.pop(next(iter(pending)))
    future.set_result(message.body)
    return True


# Known wrong answers to the checks that take a broker's URL (run on each broker), and words
# the check's message must say. Restart, binding keys and worker have tests of their own above:
# the restart check brings its own broker, a binding key is checked per task, and the worker
# check's cases are slow.
WRONG_ANSWERS: WrongAnswers = {
    ch08.check_envelope: [
        (_aioamqp_names, "AttributeError"),
        (_never_redelivered, "is_redeliver"),
        (_missing_field, "keys"),
        (_stub, "not answered yet"),
    ],
    ch09.check_reply_handler: [
        (_tutorial, "KeyError"),
        (_returns_nothing, "counted as ignored"),
        (_first_waiting, "concurrent calls"),
    ],
}


@pytest.mark.parametrize(("check", "wrong", "says"), wrong_answers(WRONG_ANSWERS))
async def test_wrong_answers_fail(amqp_url: str, check: Any, wrong: Any, says: str) -> None:
    with pytest.raises(ExerciseError, match=says):
        await check(wrong, amqp_url)


async def test_empty_binding_key_is_unanswered() -> None:
    with pytest.raises(ExerciseError, match="not answered yet"):
        await ch09.check_topic_binding("BTCUSDT klines on binance, every interval", "")


def _reply_stub(message: Any, pending: Any) -> bool:
    raise NotImplementedError


async def test_unanswered_reply_handler_says_so_without_log_noise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("DEBUG"), pytest.raises(ExerciseError, match="not answered yet"):
        await ch09.check_reply_handler(_reply_stub)
    assert not [r for r in caplog.records if r.name == "mqlab.patterns.rpc"]


async def test_reply_handler_check_restores_the_rpc_logger() -> None:
    rpc_log = logging.getLogger("mqlab.patterns.rpc")
    before = rpc_log.level
    await ch09.check_reply_handler(sol09.on_reply)
    assert rpc_log.level == before


# --- chapter 09: a wrong answer is one line and a hint, never an aiormq traceback ------------


@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
async def test_worker_wrong_answer_gives_one_line_and_the_hint_without_log_tracebacks(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # aioquant's ack-first worker: the simulated crash made aiormq log a traceback before.
    with caplog.at_level("DEBUG"):
        verdict = submit(ch09.check_worker, _ack_first, amqp_url, timeout=3)
    out = str(verdict).splitlines()
    assert len(out) == 2 and out[0].startswith("✗ worker: task-1 was never completed")
    assert out[1].startswith("Hint: ack only AFTER")
    noisy = [r for r in caplog.records if r.name.startswith(("aiormq", "aio_pika"))]
    assert not noisy, [r.getMessage() for r in noisy]


@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
async def test_worker_failure_names_what_the_handler_raised(amqp_url: str) -> None:
    async def no_reject(message: Any, work: Any) -> None:
        await work(message.body)
        await message.ack()
        await message.ack()

    with pytest.raises(ExerciseError) as info:
        await ch09.check_worker(no_reject, amqp_url, timeout=3)
    reason = info.value.reason
    assert "never acked" in reason and info.value.hint.startswith("call `await message.ack()`")
    assert reason.endswith("your handler raised MessageProcessError: Message already processed")


async def test_a_binding_key_the_broker_refuses_is_a_wrong_answer() -> None:
    task = "BTCUSDT klines on binance, every interval"
    verdict = submit(ch09.check_topic_binding, task, "kline." * 50)
    assert str(verdict).splitlines() == [
        "✗ topic_binding: a binding key of 300 bytes: AMQP allows at most 255",
        "Hint: '*' matches exactly one word, '#' zero or more; count the words in each key",
    ]


async def test_refused_and_submit_turn_amqp_errors_into_one_line() -> None:
    from aiormq.exceptions import ChannelPreconditionFailed

    from mqlab.exercises import refused

    error = ChannelPreconditionFailed("PRECONDITION_FAILED - unknown delivery tag 1")
    with pytest.raises(ExerciseError) as info, refused("ack each message once"):
        raise error
    assert str(info.value) == (
        "the broker refused it: ChannelPreconditionFailed: PRECONDITION_FAILED - unknown "
        "delivery tag 1\nHint: ack each message once"
    )

    async def check(answer: int) -> Verdict:
        raise error

    out = str(submit(check, 1)).splitlines()
    assert len(out) == 2 and "ChannelPreconditionFailed: PRECONDITION_FAILED" in out[0]
    assert out[1].startswith("Hint: the broker closed the channel")


def test_show_solution_prints_the_reference_only_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mqlab.exercises import show_solution

    text = show_solution("ch08", "envelope_of")
    assert "def envelope_of(message" in text and text in capsys.readouterr().out
    solution = show_solution("ch09", "BINDING_KEYS")
    assert "'BTCUSDT klines on binance, every interval': 'kline.binance.BTCUSDT.*'" in solution
    with pytest.raises(ValueError, match="choose one of: envelope_of, publish"):
        show_solution("ch08", "nothing")
    with pytest.raises(ValueError, match="no reference solutions for 'ch99'"):
        show_solution("ch99", "x")
