"""concurrency_lab's public face: every name a learner imports exists and is documented."""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

import concurrency_lab

PACKAGE = Path(concurrency_lab.__file__).parent


def _own_doc(obj: object) -> str:
    """The object's own docstring: not inherited, not the one dataclass writes by itself."""
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__") or ""
        return "" if doc.startswith(f"{obj.__name__}(") else doc.strip()
    return (getattr(obj, "__doc__", None) or "").strip()


def _documented_constant(name: str) -> bool:
    """A constant is documented by a ``#:`` comment line right above its assignment."""
    pattern = re.compile(rf"^#:.*\n{re.escape(name)}\s*(:|=)", re.M)
    return any(pattern.search(p.read_text()) for p in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("name", concurrency_lab.__all__)
def test_every_public_name_is_documented(name: str) -> None:
    obj = getattr(concurrency_lab, name)  # AttributeError: listed but not importable
    if isinstance(obj, types.ModuleType | type) or callable(obj):
        assert _own_doc(obj), f"concurrency_lab.{name} has no docstring"
    else:
        assert _documented_constant(name), f"concurrency_lab.{name} has no #: comment"


def test_every_public_module_lists_its_names() -> None:
    for name in concurrency_lab.__all__:
        obj = getattr(concurrency_lab, name)
        if isinstance(obj, types.ModuleType):
            assert obj.__all__, f"concurrency_lab.{name} has no __all__"
            missing = [n for n in obj.__all__ if not hasattr(obj, n)]
            assert not missing, f"concurrency_lab.{name}.__all__ names {missing}, not defined"


def test_all_names_each_thing_once() -> None:
    assert len(set(concurrency_lab.__all__)) == len(concurrency_lab.__all__)


def test_a_public_function_in_a_public_module_is_documented() -> None:
    undocumented = [
        f"{module_name}.{n}"
        for module_name in concurrency_lab.__all__
        if isinstance(module := getattr(concurrency_lab, module_name), types.ModuleType)
        for n in module.__all__
        if (inspect.isfunction(f := getattr(module, n)) or inspect.isclass(f)) and not _own_doc(f)
    ]
    assert not undocumented, f"no docstring: {undocumented}"
