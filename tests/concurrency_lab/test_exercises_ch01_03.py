"""Chapters 01–03 checks: reference solutions pass; typical wrong answers fail, with a hint."""

from __future__ import annotations

import statistics
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any

import pytest
from exercise_tables import WrongAnswers, wrong_answers

from concurrency_lab.exercises import ExerciseError, ch01, ch02, ch03
from concurrency_lab.exercises.solutions import ch01 as ref1
from concurrency_lab.exercises.solutions import ch02 as ref2
from concurrency_lab.exercises.solutions import ch03 as ref3
from concurrency_lab.races import Account


# -- 01 ------------------------------------------------------------------------------------
def _serial(job: Any, args: Any) -> list[Any]:
    return [job(a) for a in args]


def _one_at_a_time(job: Any, args: Any) -> list[Any]:
    with ThreadPoolExecutor(4) as pool:
        return [pool.submit(job, a).result() for a in args]


def _completion_order(job: Any, args: Any) -> list[Any]:
    with ThreadPoolExecutor(len(args)) as pool:
        return [f.result() for f in as_completed([pool.submit(job, a) for a in args])]


def _processes(job: Any, args: Any) -> list[Any]:
    with ProcessPoolExecutor(2) as pool:
        return list(pool.map(job, args))


def test_results_in_completion_order_fail() -> None:
    # The known wrong answer: results collected as the jobs complete. The check's jobs wait
    # for different times, so that order differs from the input order on every run.
    with pytest.raises(ExerciseError, match="order in which the jobs finished"):
        ch01.check_run_concurrently(_completion_order)


def test_missing_speedup_fails() -> None:
    with pytest.raises(ExerciseError, match="no prediction"):
        ch01.check_speedups({("cpu", "threads"): 1.0})


# -- 02 ------------------------------------------------------------------------------------
def _deposit_unlocked(account: Account, amount: int) -> None:
    account.write_balance(account.read_balance() + amount)


def _deposit_lock_around_write(account: Account, amount: int) -> None:
    balance = account.read_balance()
    with account.lock:
        account.write_balance(balance + amount)


def _deposit_new_lock_each_time(account: Account, amount: int) -> None:
    with threading.Lock():
        account.write_balance(account.read_balance() + amount)


def _deposit_never_releases(account: Account, amount: int) -> None:
    account.lock.acquire()  # and no release: the second deposit waits forever
    account.write_balance(account.read_balance() + amount)


@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
def test_a_deposit_that_never_releases_fails_instead_of_hanging() -> None:
    with pytest.raises(ExerciseError, match="still runs after"):
        ch02.check_deposit(_deposit_never_releases)


def _pay_naive(payer: Account, payee: Account, amount: int, fees: Account, fee: int) -> None:
    with payer.lock, payee.lock, fees.lock:
        _move(payer, payee, amount, fees, fee)


def _pay_ordered_but_twice(
    payer: Account, payee: Account, amount: int, fees: Account, fee: int
) -> None:
    first, second, third = sorted((payer, payee, fees), key=lambda a: a.name)
    with first.lock, second.lock, third.lock:
        _move(payer, payee, amount, fees, fee)


def _pay_fees_unlocked(
    payer: Account, payee: Account, amount: int, fees: Account, fee: int
) -> None:
    first, second = sorted((payer, payee), key=lambda a: a.name)
    with first.lock, second.lock:
        _move(payer, payee, amount, fees, fee)


def _pay_without_fee(payer: Account, payee: Account, amount: int, fees: Account, fee: int) -> None:
    ref2.pay(payer, payee, amount, fees, 0)


def _move(payer: Account, payee: Account, amount: int, fees: Account, fee: int) -> None:
    payer.write_balance(payer.read_balance() - amount - fee)
    payee.write_balance(payee.read_balance() + amount)
    fees.write_balance(fees.read_balance() + fee)


# -- 03 ------------------------------------------------------------------------------------
def _rank_by_mean(rows: Any) -> list[str]:
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["mechanism"], []).append(r["median_us"])
    return sorted(groups, key=lambda m: statistics.fmean(groups[m]), reverse=True)


def _speedups(change: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """The reference predictions with ``change`` made."""
    return {**ref1.SPEEDUPS, **change}


# Every known wrong answer to each check, and words the check's message must say about it.
WRONG_ANSWERS: WrongAnswers = {
    ch01.check_run_concurrently: [
        (_serial, "at most 1 job"),
        (_one_at_a_time, "at most 1 job"),
        (_processes, "threads are enough"),
        (lambda job, args: None, "returned None"),
    ],
    ch01.check_speedups: [
        (_speedups({("cpu", "threads"): 4.0}), "GIL"),
        (_speedups({("cpu", "processes"): 8.0}), "share 4 cores"),
        (_speedups({("cpu", "processes"): 2.0}), "share 4 cores"),  # chapter 01's 2-core answer
        (_speedups({("native", "threads"): 1.0}), "releases the GIL"),
        (_speedups({("io", "threads"): 4.0}), "8 waits overlap"),
        (_speedups({("io", "asyncio"): 1.0}), "8 awaits"),
        (_speedups({("cpu", "asyncio"): 8.0}), "no await"),
    ],
    ch02.check_deposit: [
        (_deposit_unlocked, "deposits were lost"),
        (_deposit_lock_around_write, "deposits were lost"),
        (_deposit_new_lock_each_time, "deposits were lost"),
        (lambda account, amount: None, "still 0"),
    ],
    ch02.check_pay: [
        (_pay_naive, "a cycle"),
        (_pay_ordered_but_twice, "holds itself"),
        (_pay_fees_unlocked, "without holding F's lock"),
        (_pay_without_fee, "balances"),
    ],
    ch03.check_summarize: [
        (
            lambda s: {"median": statistics.fmean(s), "cv": ref3.summarize(s)["cv"]},
            "pulled by one slow run",
        ),
        (
            lambda s: {"median": sorted(s)[len(s) // 2], "cv": ref3.summarize(s)["cv"]},
            "two middle",
        ),
        (
            lambda s: {"median": statistics.median(s), "cv": 100 * ref3.summarize(s)["cv"]},
            "percentage",
        ),
        (
            lambda s: {"median": statistics.median(s), "cv": statistics.stdev(s)},
            "stdev / mean",
        ),
        (lambda s: (statistics.median(s), 0.1), "keys"),
    ],
    ch03.check_rank: [
        (_rank_by_mean, "fastest variant"),
        (lambda rows: ref3.rank(rows)[::-1], "cheapest first"),
        (lambda rows: ["process", "thread", "coroutine", "generator"], "table 2"),
        (lambda rows: [r["mechanism"] for r in rows], "once"),
    ],
}


@pytest.mark.parametrize(("check", "answer", "match"), wrong_answers(WRONG_ANSWERS))
def test_wrong_answers_fail_with_a_hint(check: Any, answer: Any, match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        check(answer)
