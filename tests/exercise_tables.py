"""Known wrong answers to the exercises' checks, as a table, turned into pytest parameters.

Each exercise test module keeps one table: for each check, the wrong answers learners give
and words the check's message must say about each. Importable from any test module, because
pytest puts this folder (that of the root ``conftest.py``) on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

WrongAnswers = Mapping[Callable[..., Any], Sequence[tuple[Any, str]]]


def wrong_answers(table: WrongAnswers) -> list[Any]:
    """One ``pytest.param(check, answer, words)`` per wrong answer in ``table``.

    Each is named after its check and the answer's function name (its place in the list
    when it is a lambda).
    """
    return [
        pytest.param(check, answer, words, id=f"{check.__name__}-{_name(answer, i)}")
        for check, cases in table.items()
        for i, (answer, words) in enumerate(cases)
    ]


def _name(answer: Any, i: int) -> str:
    name = getattr(answer, "__name__", "<lambda>")
    return str(i) if name == "<lambda>" else name
