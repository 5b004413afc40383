"""Chapters 05 and 06's lines: the words are chosen by the numbers they are given."""

from __future__ import annotations

from chapters import ch05, ch06
from concurrency_lab.loops import Ranked
from concurrency_lab.nest_cost import NestVerdict
from concurrency_lab.tasks import SubmitRun


def test_submit_lines_carry_the_numbers() -> None:
    lines = ch05.submit_lines(
        {True: SubmitRun(200.0, 150.0, 0.0, 1.0), False: SubmitRun(210.0, 90.0, 60.0, 2.0)}
    )
    assert len(lines) == 3
    assert "60 ms of work done for +10 ms" in lines[2]


def test_ranking_lines_join_by_whether_the_ranges_are_apart() -> None:
    ranked = [Ranked("uvloop", 1.2, True), Ranked("miniloop", 2.2, False), Ranked("a", 2.5, None)]
    assert ch06.ranking_lines({"w": ranked}) == ["w: uvloop 1.20 < miniloop 2.20 ≈ a 2.50 µs"]


def test_nest_verdict_lines_follow_the_verdict() -> None:
    lines = ch06.nest_verdict_lines(
        [NestVerdict("x", 1.5, 1.2, 1.8), NestVerdict("y", 1.0, 0.9, 1.1)]
    )
    assert "dearer" in lines[0] and "cannot tell" in lines[1]
