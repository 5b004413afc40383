"""Auto-checked exercises for chapters 00–06, and the harness every chapter's exercises use.

Each chapter has a module ``chNN`` of ``check_*`` functions. A learner hands an answer to
:func:`submit`, which runs the check and returns a :class:`Verdict`: ✓, or what is wrong and a
hint saying what to do (see :mod:`concurrency_lab.exercises.harness`). Reference solutions live
apart, in ``concurrency_lab.exercises.solutions.chNN``; :func:`show_solution` prints one.
"""

from __future__ import annotations

from concurrency_lab.exercises.harness import (
    ExerciseError,
    Verdict,
    expect,
    passed,
    solution_source,
    submit,
    unanswered,
)

__all__ = [
    "ExerciseError",
    "Verdict",
    "expect",
    "passed",
    "show_solution",
    "submit",
    "unanswered",
]


def show_solution(chapter: str, name: str) -> str:
    """Print (and return) reference solution ``name`` of ``chapter``, e.g. ``"ch02"``."""
    text = solution_source(__name__, chapter, name)
    print(text)
    return text
