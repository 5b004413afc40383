"""Auto-checked exercises for chapters 07–10; they run the learner's code against a broker.

The same harness as chapters 00–06 (:mod:`concurrency_lab.exercises.harness`): a learner hands
an answer to :func:`submit` and gets a :class:`Verdict`, ✓ or what is wrong and a hint. An
``async`` check is submitted the same way as a plain one. What the broker refuses (an
``AMQPError`` raised by the answer) is a wrong answer too, told in one line. Reference
solutions: ``mqlab.exercises.solutions.chNN``; :func:`show_solution` prints one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiormq.exceptions import AMQPError

from concurrency_lab.exercises.harness import (
    ExerciseError,
    Verdict,
    expect,
    passed,
    register_refusal,
    solution_source,
    submit,
    unanswered,
)

__all__ = [
    "ExerciseError",
    "Verdict",
    "broker_refusal",
    "expect",
    "one_line",
    "passed",
    "refused",
    "show_solution",
    "submit",
    "unanswered",
]

#: The hint for a refusal no check anticipated.
_REFUSAL_HINT = (
    "the broker closed the channel over what your code asked; compare with the chapter's "
    "section on this pattern"
)


def show_solution(chapter: str, name: str) -> str:
    """Print (and return) reference solution ``name`` of ``chapter``, e.g. ``"ch08"``.

    Chapters never run their reference solutions: a learner who wants to see one calls this.
    """
    text = solution_source(__name__, chapter, name)
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


# An AMQP error raised by an answer is the broker refusing what the answer asked: a wrong
# answer, told in one line, not a traceback.
register_refusal(AMQPError, lambda exc: (broker_refusal(exc), _REFUSAL_HINT))


@contextlib.contextmanager
def refused(hint: str) -> Iterator[None]:
    """Turn an AMQP error raised by the learner's answer into an :class:`ExerciseError`.

    aio-pika and aiormq raise them with long tracebacks; a wrong answer gets one line saying
    what the broker refused, and the exercise's hint.
    """
    try:
        yield
    except AMQPError as exc:
        raise ExerciseError(broker_refusal(exc), hint) from None
