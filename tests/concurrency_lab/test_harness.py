"""The one exercise harness: submit an answer, get one Verdict; the hint shows on a wrong one."""

from __future__ import annotations

import asyncio

import pytest

from concurrency_lab.exercises import (
    ExerciseError,
    Verdict,
    ch00,
    ch02,
    expect,
    harness,
    passed,
    show_solution,
    submit,
)
from concurrency_lab.exercises.harness import register_refusal
from concurrency_lab.exercises.solutions import ch00 as reference


def check_answer(answer: int) -> Verdict:
    expect(answer == 42, f"{answer} is not the answer", "multiply six by seven")
    return passed("answer", "six times seven")


async def check_answer_later(answer: int) -> Verdict:
    await asyncio.sleep(0)
    return check_answer(answer)


def test_a_right_answer_passes() -> None:
    verdict = submit(check_answer, 42)
    assert verdict == Verdict("answer", True, "correct (six times seven)")
    assert verdict and str(verdict) == "✓ answer: correct (six times seven)"


def test_a_wrong_answer_gets_one_line_and_the_hint() -> None:
    verdict = submit(check_answer, 41)
    assert not verdict
    assert (verdict.says, verdict.hint) == ("41 is not the answer", "multiply six by seven")
    assert str(verdict).splitlines() == [
        "✗ answer: 41 is not the answer",
        "Hint: multiply six by seven",
    ]


def test_a_stub_is_not_answered_yet() -> None:
    def check_stub(answer: object) -> Verdict:
        raise NotImplementedError("write answer()")

    verdict = submit(check_stub, None)
    assert not verdict and verdict.says == "not answered yet: write answer()"
    assert "NotImplementedError" in verdict.hint


def test_async_checks_are_submitted_the_same_way_even_inside_a_running_loop() -> None:
    assert submit(check_answer_later, 42)

    async def in_a_notebook() -> Verdict:  # the kernel's loop runs while the cell does
        return submit(check_answer_later, 41)

    assert asyncio.run(in_a_notebook()).hint == "multiply six by seven"


def test_a_multi_line_reason_becomes_one_line() -> None:
    verdict = submit(ch00.check_workloads, dict(reference.WORKLOAD_KINDS, download="cpu"))
    assert "\n" not in verdict.says and verdict.says.startswith("1 of 6 wrong: 'download'")
    assert verdict.hint.startswith("ask: if the CPU were twice as fast")


def test_other_errors_are_bugs_and_keep_their_traceback() -> None:
    def deposit(account: object, amount: int) -> None:
        raise ZeroDivisionError("a bug in the answer")

    with pytest.raises(ExerciseError, match="ZeroDivisionError"):  # the check names it
        ch02.check_deposit(deposit)

    def check_broken(answer: object) -> Verdict:
        raise KeyError("a bug in the check")

    with pytest.raises(KeyError):
        submit(check_broken, 1)


def test_a_registered_refusal_is_a_wrong_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refused(Exception):
        pass

    monkeypatch.setattr(harness, "_REFUSALS", {})
    register_refusal(Refused, lambda exc: (f"refused: {exc}", "ask for less"))

    def check_refused(answer: object) -> Verdict:
        raise Refused("too much")

    assert str(submit(check_refused, 1)) == "✗ refused: refused: too much\nHint: ask for less"


def test_show_solution_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    text = show_solution("ch00", "SWITCH_ORDER")
    assert text.startswith("# concurrency_lab/exercises/solutions/ch00.py\nSWITCH_ORDER = [")
    assert text in capsys.readouterr().out
    with pytest.raises(ValueError, match="choose one of"):
        show_solution("ch00", "nothing")
