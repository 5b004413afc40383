"""Chapters 01–03 checks: reference solutions pass; typical wrong answers fail, with a hint."""

from __future__ import annotations

import statistics
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from typing import Any

import pytest

from concurrency_lab.exercises import ExerciseError, ch01, ch02, ch03
from concurrency_lab.exercises.solutions import ch01 as ref1
from concurrency_lab.exercises.solutions import ch02 as ref2
from concurrency_lab.exercises.solutions import ch03 as ref3
from concurrency_lab.races import Account


@pytest.mark.parametrize(
    ("check", "solution"),
    [
        (ch01.check_run_concurrently, ref1.run_all),
        (ch01.check_speedups, ref1.SPEEDUPS),
        (ch02.check_deposit, ref2.deposit),
        (ch02.check_pay, ref2.pay),
        (ch03.check_summarize, ref3.summarize),
        (ch03.check_rank, ref3.rank),
    ],
)
def test_reference_solutions_pass(check: Any, solution: Any) -> None:
    assert check(solution).passed


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


@pytest.mark.parametrize(
    ("run_all", "match"),
    [
        (_serial, "at most 1 job"),
        (_one_at_a_time, "at most 1 job"),
        (_processes, "threads are enough"),
        (lambda job, args: None, "returned None"),
    ],
)
def test_wrong_run_all_fails(run_all: Any, match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        ch01.check_run_concurrently(run_all)


def test_results_in_completion_order_fail() -> None:
    # The known wrong answer: results collected as the jobs complete. The check's jobs wait
    # for different times, so that order differs from the input order on every run.
    with pytest.raises(ExerciseError, match="order in which the jobs finished"):
        ch01.check_run_concurrently(_completion_order)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({("cpu", "threads"): 4.0}, "GIL"),
        ({("cpu", "processes"): 8.0}, "share 4 cores"),
        ({("cpu", "processes"): 2.0}, "share 4 cores"),  # chapter 01's 2-core answer
        ({("native", "threads"): 1.0}, "releases the GIL"),
        ({("io", "threads"): 4.0}, "8 waits overlap"),
        ({("io", "asyncio"): 1.0}, "8 awaits"),
        ({("cpu", "asyncio"): 8.0}, "no await"),
    ],
)
def test_wrong_speedups_fail(change: dict[tuple[str, str], float], match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        ch01.check_speedups({**ref1.SPEEDUPS, **change})


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


@pytest.mark.parametrize(
    ("deposit", "match"),
    [
        (_deposit_unlocked, "deposits were lost"),
        (_deposit_lock_around_write, "deposits were lost"),
        (_deposit_new_lock_each_time, "deposits were lost"),
        (lambda account, amount: None, "still 0"),
    ],
)
def test_wrong_deposits_fail(deposit: Any, match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        ch02.check_deposit(deposit)


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


@pytest.mark.parametrize(
    ("pay", "match"),
    [
        (_pay_naive, "a cycle"),
        (_pay_ordered_but_twice, "holds itself"),
        (_pay_fees_unlocked, "without holding F's lock"),
        (_pay_without_fee, "balances"),
    ],
)
def test_wrong_payments_fail(pay: Any, match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        ch02.check_pay(pay)


# -- 03 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("summarize", "match"),
    [
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
)
def test_wrong_summaries_fail(summarize: Any, match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        ch03.check_summarize(summarize)


def _rank_by_mean(rows: Any) -> list[str]:
    groups: dict[str, list[float]] = {}
    for r in rows:
        groups.setdefault(r["mechanism"], []).append(r["median_us"])
    return sorted(groups, key=lambda m: statistics.fmean(groups[m]), reverse=True)


@pytest.mark.parametrize(
    ("rank", "match"),
    [
        (_rank_by_mean, "fastest variant"),
        (lambda rows: ref3.rank(rows)[::-1], "cheapest first"),
        (lambda rows: ["process", "thread", "coroutine", "generator"], "table 2"),
        (lambda rows: [r["mechanism"] for r in rows], "once"),
    ],
)
def test_wrong_rankings_fail(rank: Any, match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        ch03.check_rank(rank)
