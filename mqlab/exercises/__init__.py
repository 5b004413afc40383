"""Auto-checked exercises for chapters 07–10; they run the learner's code against a broker.

Same contract as :mod:`concurrency_lab.exercises`: ``check_*`` raises :class:`ExerciseError`
with a hint on a wrong answer. Reference solutions: ``mqlab.exercises.solutions.chNN``.
:func:`attempt` runs a check from a notebook cell and prints the hint instead of raising, so an
unanswered exercise never stops the chapter.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from concurrency_lab.exercises import ExerciseError, expect, passed

__all__ = ["ExerciseError", "attempt", "expect", "passed"]


async def attempt(check: Callable[..., Awaitable[str] | str], *answer: Any, **kwargs: Any) -> bool:
    """Run ``check(*answer)`` (a coroutine check is awaited); print the hint instead of raising.

    Returns True if the answer passed. Only :class:`ExerciseError` is caught: any other
    exception is a bug in the learner's code or the check, and should show its traceback.
    """
    try:
        result = check(*answer, **kwargs)
        if inspect.isawaitable(result):
            await result
    except ExerciseError as exc:
        print(f"✗ not yet: {exc}")
        return False
    return True
