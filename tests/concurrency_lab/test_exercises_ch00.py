"""Chapter 00 checks: the reference answers pass, typical wrong answers fail with a hint."""

from __future__ import annotations

import pytest

from concurrency_lab.exercises import ExerciseError, ch00
from concurrency_lab.exercises.solutions import ch00 as reference


def test_reference_answers_pass() -> None:
    assert (ch00.check_switch_order(reference.SWITCH_ORDER)).passed
    assert (ch00.check_workloads(reference.WORKLOAD_KINDS)).passed


@pytest.mark.parametrize(
    ("order", "match"),
    [
        (["generator", "coroutine", "thread", "process"], "thread is listed as more expensive"),
        (["thread", "process", "coroutine", "generator"], "copied"),
        (["process", "thread", "generator", "coroutine"], "plain call"),
        (["process", "thread", "coroutine"], "exactly once"),
        (["process", "threads", "coroutine", "generator"], "exactly once"),
    ],
)
def test_wrong_switch_orders_fail(order: list[str], match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        ch00.check_switch_order(order)


def test_wrong_workloads_fail_and_name_each_mistake() -> None:
    answers = dict(reference.WORKLOAD_KINDS, download="cpu", grid_search="io")
    with pytest.raises(ExerciseError) as info:
        ch00.check_workloads(answers)
    text = str(info.value)
    assert "2 of 6 wrong" in text and "'download'" in text and "'grid_search'" in text
    assert "'hash_ids'" not in text


@pytest.mark.parametrize(
    ("answers", "match"),
    [
        ({k: "cpu" for k in ch00.WORKLOADS}, "3 of 6 wrong"),
        ({"download": "io"}, "missing"),
        (dict(reference.WORKLOAD_KINDS, download="network"), "'cpu' or 'io'"),
    ],
)
def test_incomplete_or_malformed_workloads_fail(answers: dict[str, str], match: str) -> None:
    with pytest.raises(ExerciseError, match=match):
        ch00.check_workloads(answers)
