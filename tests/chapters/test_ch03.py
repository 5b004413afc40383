"""Chapter 03's lines: the words are chosen by the numbers they are given."""

from __future__ import annotations

import pytest

from chapters import ch03
from concurrency_lab.handover import Step
from concurrency_lab.switching import Gap, Ordering, SwitchResult


def _r(mechanism: str, us: float) -> SwitchResult:
    return SwitchResult(mechanism, mechanism, us, us, us, 0.0, 9, 100)


@pytest.mark.parametrize(
    ("a", "b", "kind"),
    [(10.5, 10.0, "about the same"), (14.0, 10.0, "close"), (40.0, 10.0, "dearer"),
     (10.0, 40.0, "cheaper")],
)  # fmt: skip
def test_compare_picks_the_word_from_the_ratio(a: float, b: float, kind: str) -> None:
    assert ch03.compare(a, b).endswith(kind)


def test_ordering_lines_follow_the_ordering() -> None:
    p, t = _r("process", 24.0), _r("thread", 10.0)
    lines = ch03.ordering_lines(Ordering(["thread", "process"], False, [Gap(t, p)]))
    assert lines[0].endswith("thread > process") and lines[1].endswith("False")
    assert len(lines) == 4 and "0.4×" in lines[2]


def test_step_lines_name_the_largest_part_and_whether_the_order_held() -> None:
    parts = {"os_process_switch": 9.0, "pipe_work": 1.0, "event_copy": 0.0}
    step = Step(10.0, 20.0, parts, False, _r("process", 20.0), _r("thread", 30.0))
    lines = ch03.step_lines(step)
    assert "did not hold" in lines[0]
    assert lines[-1].endswith(ch03.PART_NAMES["os_process_switch"])
    assert "(90%)" in lines[2] and "(0%)" in lines[4]
