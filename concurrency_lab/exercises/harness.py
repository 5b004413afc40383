"""The one exercise harness every chapter uses: submit an answer, get a :class:`Verdict`.

A chapter's check is a function ``check_x(answer, ...)``, plain or ``async``. It raises
:class:`ExerciseError` (what is wrong, and a hint saying what to do) on a wrong answer and
returns :func:`passed` on a right one. Learners never call checks directly: they call
``submit(check_x, answer)``, which runs the check (an ``async`` one on a private event loop, so
the same call works in a script, a test and a notebook, whose kernel already runs a loop) and
turns whatever happened into one :class:`Verdict`:

- right: ``✓ deposit: correct (200 of 200 deposits kept)``;
- wrong: ``✗ deposit: balance 150, expected 200: 50 deposits were lost`` and, on the next
  line, ``Hint: hold account.lock around the whole read-modify-write``;
- not answered (the stub still raises ``NotImplementedError``): a verdict that says so.

Errors of other kinds (a bug in the answer, or in a check) are not verdicts: they propagate
with their traceback. A package whose answers can be refused by something else (mqlab: the
AMQP broker) registers that exception type with :func:`register_refusal`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from concurrency_lab._runner import run_sync

__all__ = [
    "ExerciseError",
    "Verdict",
    "expect",
    "passed",
    "register_refusal",
    "solution_source",
    "submit",
    "unanswered",
]

UNANSWERED_HINT = "replace `raise NotImplementedError` with your code"


def single_line(text: str) -> str:
    """``text`` on one line: its lines (list markers dropped) joined by ``; ``."""
    lines = [line.strip().removeprefix("- ").strip() for line in str(text).splitlines()]
    return "; ".join(line for line in lines if line).replace(":;", ":")


class ExerciseError(AssertionError):
    """A wrong answer: ``reason`` (one line) says what is wrong, ``hint`` what to do.

    ``str()`` is the reason, then the hint on a line of its own: how a verdict shows them.
    """

    def __init__(self, reason: str, hint: str = "") -> None:
        self.reason = single_line(reason)
        self.hint = single_line(hint)
        super().__init__(self.reason + (f"\nHint: {self.hint}" if self.hint else ""))


def expect(condition: bool, message: str, hint: str) -> None:
    """Raise :class:`ExerciseError` with ``message`` and ``hint`` unless ``condition`` holds.

    The hint is required: a wrong answer is always told what to do next.
    """
    if not condition:
        raise ExerciseError(message, hint)


def unanswered(what: str = "") -> ExerciseError:
    """The error for an answer that is still the stub (it raised ``NotImplementedError``)."""
    return ExerciseError("not answered yet" + (f": {what}" if what else ""), UNANSWERED_HINT)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a check decided about one answer. True when the answer passed.

    ``says`` is one line: what was right, or what is wrong; ``hint`` (wrong answers only) says
    what to do. A notebook shows a verdict by leaving it as a cell's last expression.
    """

    exercise: str
    passed: bool
    says: str
    hint: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        line = f"{'✓' if self.passed else '✗'} {self.exercise}: {self.says}"
        return line + (f"\nHint: {self.hint}" if self.hint else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython's display hook
        printer.text(str(self))


def passed(name: str, detail: str = "") -> Verdict:
    """The verdict a check returns for a right answer; ``detail`` says what was shown."""
    return Verdict(name, True, "correct" + (f" ({detail})" if detail else ""))


#: Exception types (besides ExerciseError) that mean the answer was refused, and how to say
#: so: ``explain(exc)`` gives ``(says, hint)``.
_REFUSALS: dict[type[BaseException], Callable[[BaseException], tuple[str, str]]] = {}


def register_refusal(
    kind: type[BaseException], explain: Callable[[BaseException], tuple[str, str]]
) -> None:
    """Count ``kind`` raised by an answer as a wrong answer, described by ``explain(exc)``."""
    _REFUSALS[kind] = explain


def _exercise_name(check: Callable[..., Any]) -> str:
    return getattr(check, "__name__", str(check)).removeprefix("check_")


def submit(check: Callable[..., Any], *answer: Any, **options: Any) -> Verdict:
    """Run ``check(*answer, **options)`` and return its :class:`Verdict`; never raises one.

    An ``async`` check runs to completion on a private event loop (in a helper thread when the
    caller already runs one, as a notebook does): the call looks the same in every chapter.
    """
    name = _exercise_name(check)

    def run() -> Any:
        result = check(*answer, **options)
        if inspect.isawaitable(result):

            async def main() -> Any:
                return await result

            return run_sync(main)
        return result

    try:
        result = run()
    except NotImplementedError as exc:
        return Verdict(name, False, "not answered yet" + (f": {exc}" if str(exc) else ""),
                       UNANSWERED_HINT)  # fmt: skip
    except ExerciseError as exc:
        return Verdict(name, False, exc.reason, exc.hint)
    except tuple(_REFUSALS) as exc:
        explain = next(f for kind, f in _REFUSALS.items() if isinstance(exc, kind))
        return Verdict(name, False, *explain(exc))
    if isinstance(result, Verdict):
        return dataclasses.replace(result, exercise=name)
    return Verdict(name, True, "correct" + (f" ({result})" if result else ""))


def solution_source(package: str, chapter: str, name: str) -> str:
    """The source of reference solution ``name`` in ``{package}.solutions.{chapter}``.

    Chapters never run their reference solutions; a learner who wants to read one asks.
    """
    try:
        module = importlib.import_module(f"{package}.solutions.{chapter}")
    except ModuleNotFoundError:
        raise ValueError(f"{package} has no reference solutions for {chapter!r}") from None
    names = getattr(module, "__all__", ())
    if name not in names:
        raise ValueError(
            f"{chapter} has no reference solution {name!r}; choose one of: {', '.join(names)}"
        )
    value = getattr(module, name)
    try:
        text = inspect.getsource(value)
    except TypeError:  # data, not a function or class
        text = f"{name} = {value!r}"
    return f"# {package.replace('.', '/')}/solutions/{chapter}.py\n{text}"
