"""Auto-checked exercises for chapters 07–10; they run the learner's code against a broker.

Same contract as :mod:`concurrency_lab.exercises`: ``check_*`` raises :class:`ExerciseError`
with a hint on a wrong answer. Reference solutions: ``mqlab.exercises.solutions.chNN``.
:func:`attempt` runs a check from a notebook cell and prints the hint instead of raising, so an
unanswered exercise never stops the chapter.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from concurrency_lab.exercises import ExerciseError, expect, passed

__all__ = [
    "ExerciseError",
    "attempt",
    "broker_refusal",
    "expect",
    "one_line",
    "passed",
    "refused",
    "show_solution",
]


async def attempt(check: Callable[..., Awaitable[str] | str], *answer: Any, **kwargs: Any) -> bool:
    """Run ``check(*answer)`` (a coroutine check is awaited); print the hint instead of raising.

    Returns True if the answer passed. Only :class:`ExerciseError` is caught: any other
    exception is a bug in the learner's code or the check, and should show its traceback.
    """
    from aiormq.exceptions import AMQPError

    try:
        result = check(*answer, **kwargs)
        if inspect.isawaitable(result):
            await result
    except ExerciseError as exc:
        print(f"✗ not yet: {exc}")
        return False
    except AMQPError as exc:  # the broker refused what the answer did: a wrong answer too
        print(f"✗ not yet: {broker_refusal(exc)}")
        print("Hint: the broker closed the channel over what your code asked; compare with "
              "the chapter's section on this pattern")  # fmt: skip
        return False
    return True


def show_solution(chapter: str, name: str) -> str:
    """Print (and return) the reference solution ``name`` of ``chapter``, e.g. ``"ch08"``.

    Chapters never run their reference solutions: a learner who wants to see one calls this.
    """
    import importlib

    try:
        module = importlib.import_module(f"mqlab.exercises.solutions.{chapter}")
    except ModuleNotFoundError:
        raise ValueError(f"no reference solutions for {chapter!r}; try 'ch07' to 'ch10'") from None
    if name not in getattr(module, "__all__", ()):
        raise ValueError(
            f"{chapter} has no reference solution {name!r}; "
            f"choose one of: {', '.join(module.__all__)}"
        )
    value = getattr(module, name)
    try:
        text = inspect.getsource(value)
    except TypeError:  # data, not a function or class
        text = f"{name} = {value!r}"
    text = f"# mqlab/exercises/solutions/{chapter}.py\n{text}"
    print(text)
    return text


def one_line(exc: BaseException, width: int = 160) -> str:
    """``Type: reason`` on one line, without a traceback.

    aio-pika puts the whole message object in some errors' arguments; only the first text
    argument is the reason, so that is what is kept.
    """
    first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    text = " ".join(first.split()) or "no reason given"
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f"{type(exc).__name__}: {text}"


def broker_refusal(exc: BaseException) -> str:
    """One line saying what the broker (or aio-pika/aiormq) refused, without a traceback."""
    return f"the broker refused it: {one_line(exc)}"


@contextlib.contextmanager
def refused(hint: str) -> Iterator[None]:
    """Turn an AMQP error raised by the learner's answer into an :class:`ExerciseError`.

    aio-pika and aiormq raise them with long tracebacks; a wrong answer gets one line saying
    what the broker refused, and the exercise's hint.
    """
    from aiormq.exceptions import AMQPError

    try:
        yield
    except AMQPError as exc:
        raise ExerciseError(f"{broker_refusal(exc)}\nHint: {hint}") from None
