"""Chapters 04–06 exercises: the reference solutions pass, typical wrong answers fail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Generator
from typing import Any

import pytest

from concurrency_lab import miniloop
from concurrency_lab.exercises import ExerciseError, ch04, ch05, ch06, submit
from concurrency_lab.exercises.solutions import ch04 as sol04
from concurrency_lab.exercises.solutions import ch05 as sol05
from concurrency_lab.exercises.solutions import ch06 as sol06


# -- chapter 04 ---------------------------------------------------------------------------
def sum_not_average() -> Generator[float | None, float, None]:
    total = 0.0
    result = None
    while True:
        total += yield result
        result = total


_shared = {"total": 0.0, "count": 0}


def global_state() -> Generator[float | None, float, None]:
    result = None
    while True:
        _shared["total"] += yield result
        _shared["count"] += 1
        result = _shared["total"] / _shared["count"]


def plain_function() -> float:
    return 0.0


@pytest.mark.parametrize("wrong", [sum_not_average, global_state, plain_function])
def test_averager_rejects(wrong: Any) -> None:
    with pytest.raises(ExerciseError):
        ch04.check_averager(wrong)


async def _step(log: list[str], entry: str) -> None:
    log.append(entry)


async def countdown_without_switch(name: str, n: int, log: list[str]) -> None:
    for i in range(n, 0, -1):
        await _step(log, f"{name}{i}")  # awaiting a coroutine: no switch


async def countdown_wrong_entries(name: str, n: int, log: list[str]) -> None:
    for i in range(n):
        log.append(f"{name}{i}")
        await asyncio.sleep(0)


@pytest.mark.parametrize("wrong", [countdown_without_switch, countdown_wrong_entries])
def test_countdown_rejects(wrong: Any) -> None:
    with pytest.raises(ExerciseError):
        ch04.check_countdown(wrong)


@pytest.mark.parametrize(
    "wrong",
    [
        ["a1", "a2", "helper", "a3", "b1", "b2"],  # no switching at all
        ["a1", "b1", "a2", "b2", "helper", "a3"],  # thinks `await helper()` switches
        ["a1", "b1", "a2", "a3", "b2"],  # forgot a line
        "a1 b1 a2 helper a3 b2",  # not a list
    ],
)
def test_prediction_rejects(wrong: Any) -> None:
    with pytest.raises(ExerciseError):
        ch04.check_prediction(wrong)


def test_prediction_check_does_not_show_the_answer() -> None:
    assert str(submit(ch04.check_prediction, sol04.PREDICTION)) == "✓ prediction: correct"
    with pytest.raises(ExerciseError) as wrong:
        ch04.check_prediction(["a1", "a2", "helper", "a3", "b1", "b2"])
    assert " ".join(sol04.PREDICTION) not in str(wrong.value)


# -- chapter 05 ---------------------------------------------------------------------------
async def unlimited(limit: int, *aws: Awaitable[Any]) -> list[Any]:
    return await asyncio.gather(*aws)


async def serial(limit: int, *aws: Awaitable[Any]) -> list[Any]:
    return [await aw for aw in aws]


async def batched(limit: int, *aws: Awaitable[Any]) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(aws), limit):
        out += await asyncio.gather(*aws[i : i + limit])
    return out


async def unordered(limit: int, *aws: Awaitable[Any]) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)
    results: list[Any] = []

    async def run(aw: Awaitable[Any]) -> None:
        async with semaphore:
            results.append(await aw)

    await asyncio.gather(*(run(aw) for aw in aws))
    return results


async def swallows_errors(limit: int, *aws: Awaitable[Any]) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def run(aw: Awaitable[Any]) -> Any:
        async with semaphore:
            return await aw

    return await asyncio.gather(*(run(aw) for aw in aws), return_exceptions=True)


@pytest.mark.parametrize("wrong", [unlimited, serial, batched, unordered, swallows_errors])
def test_gather_with_limit_rejects(wrong: Any) -> None:
    with pytest.raises(ExerciseError):
        ch05.check_gather_with_limit(wrong)


async def fetch_blocking(xs: list[int]) -> list[int]:
    return [ch05.blocking_fetch(x) for x in xs]


async def fetch_threads_one_by_one(xs: list[int]) -> list[int]:
    return [await asyncio.to_thread(ch05.blocking_fetch, x) for x in xs]


async def fetch_wrong_values(xs: list[int]) -> list[int]:
    return await asyncio.gather(*(asyncio.to_thread(lambda x=x: x) for x in xs))


@pytest.mark.parametrize("wrong", [fetch_blocking, fetch_threads_one_by_one, fetch_wrong_values])
def test_fetch_all_rejects(wrong: Any) -> None:
    with pytest.raises(ExerciseError):
        ch05.check_fetch_all(wrong)


async def timeout_without_cancel(aw: Awaitable[Any], seconds: float, default: Any) -> Any:
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return task.result() if done else default


async def timeout_swallowing_errors(aw: Awaitable[Any], seconds: float, default: Any) -> Any:
    try:
        return await sol05.with_timeout(aw, seconds, default)
    except Exception:  # the mistake: aw's own error becomes the default too
        return default


async def timeout_that_waits(aw: Awaitable[Any], seconds: float, default: Any) -> Any:
    started = time.perf_counter()
    result = await aw
    return result if time.perf_counter() - started <= seconds else default


@pytest.mark.parametrize(
    "wrong", [timeout_without_cancel, timeout_swallowing_errors, timeout_that_waits]
)
def test_with_timeout_rejects(wrong: Any) -> None:
    with pytest.raises(ExerciseError):
        ch05.check_with_timeout(wrong)


# -- chapter 06 ---------------------------------------------------------------------------
async def sleep_blocking(delay: float, result: Any = None) -> Any:
    time.sleep(delay)
    return result


async def sleep_busy(delay: float, result: Any = None) -> Any:
    loop = miniloop.get_running_loop()
    end = loop.time() + delay
    while loop.time() < end:
        await miniloop.sleep(0)
    return result


async def sleep_forgets_result(delay: float, result: Any = None) -> Any:
    await miniloop.sleep(delay)


async def sleep_zero_never_yields(delay: float, result: Any = None) -> Any:
    if delay <= 0:
        return result
    return await miniloop.sleep(delay, result)


async def sleep_with_asyncio(delay: float, result: Any = None) -> Any:
    return await asyncio.sleep(delay, result)


@pytest.mark.parametrize(
    "wrong",
    [sleep_blocking, sleep_busy, sleep_forgets_result, sleep_zero_never_yields, sleep_with_asyncio],
)
def test_mini_sleep_rejects(wrong: Any) -> None:
    with pytest.raises(ExerciseError):
        ch06.check_mini_sleep(wrong)


async def wait_for_no_timeout(coro: Any, timeout: float) -> Any:
    return await coro


async def wait_for_without_cancel(coro: Any, timeout: float) -> Any:
    loop = miniloop.get_running_loop()
    task = loop.create_task(coro)
    gate = loop.create_future()
    task.add_done_callback(lambda t: gate.done() or gate.set_result(None))
    timer = loop.call_later(timeout, lambda: gate.done() or gate.set_result(None))
    await gate
    timer.cancel()
    if not task.done():
        raise TimeoutError
    return task.result()


async def wait_for_hides_errors(coro: Any, timeout: float) -> Any:
    try:
        return await sol06.wait_for(coro, timeout)
    except KeyError:
        raise TimeoutError from None


@pytest.mark.parametrize(
    "wrong", [wait_for_no_timeout, wait_for_without_cancel, wait_for_hides_errors]
)
def test_mini_wait_for_rejects(wrong: Any) -> None:
    with pytest.raises(ExerciseError):
        ch06.check_mini_wait_for(wrong)
