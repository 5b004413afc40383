"""Every reference solution of chapters 00–06 passes its check, submitted as a learner would."""

from __future__ import annotations

from typing import Any

import pytest

from concurrency_lab.exercises import ch00, ch01, ch02, ch03, ch04, ch05, ch06, submit
from concurrency_lab.exercises.solutions import ch00 as sol00
from concurrency_lab.exercises.solutions import ch01 as sol01
from concurrency_lab.exercises.solutions import ch02 as sol02
from concurrency_lab.exercises.solutions import ch03 as sol03
from concurrency_lab.exercises.solutions import ch04 as sol04
from concurrency_lab.exercises.solutions import ch05 as sol05
from concurrency_lab.exercises.solutions import ch06 as sol06

REFERENCE = [
    (ch00.check_switch_order, sol00.SWITCH_ORDER),
    (ch00.check_workloads, sol00.WORKLOAD_KINDS),
    (ch01.check_run_concurrently, sol01.run_all),
    (ch01.check_speedups, sol01.SPEEDUPS),
    (ch02.check_deposit, sol02.deposit),
    (ch02.check_pay, sol02.pay),
    (ch03.check_summarize, sol03.summarize),
    (ch03.check_rank, sol03.rank),
    (ch04.check_averager, sol04.averager),
    (ch04.check_countdown, sol04.countdown),
    (ch04.check_prediction, sol04.PREDICTION),
    (ch05.check_gather_with_limit, sol05.gather_with_limit),
    (ch05.check_fetch_all, sol05.fetch_all),
    (ch05.check_with_timeout, sol05.with_timeout),
    (ch06.check_mini_sleep, sol06.sleep),
    (ch06.check_mini_wait_for, sol06.wait_for),
]


@pytest.mark.parametrize(("check", "solution"), REFERENCE, ids=[c.__name__ for c, _ in REFERENCE])
def test_reference_solution_passes(check: Any, solution: Any) -> None:
    verdict = submit(check, solution)
    assert verdict.passed, str(verdict)
