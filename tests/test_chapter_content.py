"""What the chapters must keep saying and doing, checked on their source (cheap, no kernel).

Each test guards a fix a learner asked for: a number or claim that must come from code, a
reference solution that must not run by itself, a seed topic that must stay taught. The
executed-notebook tests prove the cells run; these prove the cells are still the right ones.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def _cells(stem: str, kind: str | None = None) -> list[str]:
    (path,) = NOTEBOOKS.glob(f"{stem}_*.ipynb")
    nb = nbformat.read(path, as_version=4)
    return [c.source for c in nb.cells if kind is None or c.cell_type == kind]


def _code(stem: str) -> str:
    return "\n".join(_cells(stem, "code"))


def _prose(stem: str) -> str:
    return "\n".join(_cells(stem, "markdown"))


def test_ch01_says_from_the_data_whether_processes_overlapped() -> None:
    code = _code("01")
    assert "ch01.process_overlap_line(gil.process_overlap(tl, busy, os.cpu_count()))" in code
    assert 'print("processes:", processes)' in code


def test_ch03_draws_its_conclusion_from_the_run() -> None:
    assert "ch03.step_lines(handover.step(like, results))" in _code("03")
    prose = _prose("03")
    assert "Expect the second line to say" not in prose  # a prediction the run may contradict
    assert "So the seed's ordering process > thread holds under" not in prose


def test_ch04_shows_the_removed_decorator_form() -> None:
    assert not hasattr(asyncio, "coroutine")  # removed in Python 3.11, which the course needs
    prose, code = _prose("04"), _code("04")
    assert "@asyncio.coroutine" in prose and "removed in 3.11" in prose
    assert 'hasattr(asyncio, "coroutine")' in code and "@types.coroutine" in code


def test_ch06_shows_the_spread_of_a_many_sample_nest_asyncio_measurement() -> None:
    code = _code("06")
    found = re.search(r"nest_cost\.nest_asyncio_cost\(\*\(\((\S+), (\d+)\) if QUICK", code)
    assert found and int(found.group(2)) >= 15, "the quick setting needs >= 15 repeats a side"
    assert "nest_cost.format_nest_cost(nest)" in code
    assert "ch06.nest_verdict_lines(nest_cost.nest_cost_verdicts(nest))" in code
    assert "pip install uvloop" not in _prose("06")  # installed with the course


def test_ch07_teaches_the_time_series_factor_and_a_fair_live_comparison() -> None:
    prose, code = _prose("07"), _code("07")
    assert "时序因子" in prose
    assert "evaluate_vectorised(" in code and "evaluate_event_driven(" in code
    assert "live_decision_costs(" in code and "rolling window" in prose
    assert "rerun" not in code  # the strawman: re-running the whole history at every bar


def test_ch08_and_ch09_run_no_reference_solution_by_themselves() -> None:
    for stem in ("08", "09"):
        code = _code(stem)
        assert "exercises.solutions" not in code, f"chapter {stem} imports the solutions"
        assert re.search(r"^show = \[\]", code, re.M), f"chapter {stem}: show_solution on request"
        assert not re.search(r"^await conn\.close\(\)", code, re.M)
    assert 'pd.set_option("display.max_colwidth", None)' in _code("08")
