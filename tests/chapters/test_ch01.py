"""Chapter 01's lines: the words are chosen by the numbers they are given."""

from __future__ import annotations

from chapters import ch01
from concurrency_lab.gil import Overlap, ProcessOverlap
from concurrency_lab.main_thread import MainThreadRun
from concurrency_lab.speedups import Verdict
from concurrency_lab.workloads import LABELS


def test_verdict_lines_flag_a_one_core_gain() -> None:
    one_core = Verdict("cpu", "threads", 1.3, 0.1, 0.8, 0.6)
    two_cores = Verdict("cpu", "processes", 1.9, 0.1, 1.9, 1.0)
    lines = ch01.verdict_lines([one_core, two_cores])
    assert "not parallelism" in lines[0] and "not parallelism" not in lines[1]


def test_overlap_line_names_the_kind_of_overlap() -> None:
    assert "took turns" in ch01.overlap_line(Overlap(LABELS["cpu"], 0.0, 0.008))
    assert "the waits overlapped" in ch01.overlap_line(Overlap(LABELS["io"], 0.9, 1.0))


def test_process_overlap_line_explains_by_the_free_cores() -> None:
    assert "because" in ch01.process_overlap_line(ProcessOverlap(0.0, 1.6, 2))
    assert "although" in ch01.process_overlap_line(ProcessOverlap(0.0, 0.1, 4))
    assert "parallelism, visible" in ch01.process_overlap_line(ProcessOverlap(1.0, 1.6, 2))


def test_main_thread_lines_say_sooner_or_later_from_the_totals() -> None:
    sooner = {True: MainThreadRun(300, 100, 50), False: MainThreadRun(250, 50, 50)}
    later = {True: MainThreadRun(250, 100, 50), False: MainThreadRun(260, 50, 50)}
    assert "50 ms sooner" in ch01.main_thread_lines(sooner)[-1]
    assert "10 ms later" in ch01.main_thread_lines(later)[-1]
