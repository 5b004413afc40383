"""Auto-checked exercises for chapters 00–06.

Each chapter has a module ``chNN`` of ``check_*`` functions. A check runs the learner's answer,
raises :class:`ExerciseError` with a hint when it is wrong, and prints a tick when it is right.
Reference solutions live apart, in ``concurrency_lab.exercises.solutions.chNN``.
"""

from __future__ import annotations


class ExerciseError(AssertionError):
    """A wrong answer: the message says what was expected and gives a hint."""


def expect(condition: bool, message: str, hint: str = "") -> None:
    """Raise :class:`ExerciseError` with ``message`` (and a hint) unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(message + (f"\nHint: {hint}" if hint else ""))


def passed(name: str, detail: str = "") -> str:
    """Print and return the success line every check ends with."""
    line = f"✓ {name}: correct" + (f" ({detail})" if detail else "")
    print(line)
    return line


__all__ = ["ExerciseError", "expect", "passed"]
