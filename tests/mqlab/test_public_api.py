"""mqlab's public face: ``__all__`` lists what a learner imports, each name resolves to the
object in its home module, and each is documented there (its own docstring)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest

import mqlab


def test_all_is_the_lazy_table_and_sorted() -> None:
    assert sorted(mqlab.__all__) == sorted(mqlab._HOMES)
    assert len(set(mqlab.__all__)) == len(mqlab.__all__)
    assert mqlab.__all__ == sorted(mqlab.__all__, key=lambda n: (n[0].islower(), n))


@pytest.mark.parametrize("name", mqlab.__all__)
def test_each_public_name_is_its_home_modules_and_documented(name: str) -> None:
    value = getattr(mqlab, name)
    home = importlib.import_module(mqlab._HOMES[name])
    assert value is getattr(home, name)
    assert name in getattr(home, "__all__", ()), f"{home.__name__}.__all__ lacks {name}"
    # Its own docstring, not one inherited or generated (a dataclass makes "Kline(ts, ...)").
    own = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
    assert own and own.strip() and not own.startswith(f"{name}("), f"{name} has no docstring"


def test_an_unknown_name_says_so() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mqlab.nope  # noqa: B018


def test_import_mqlab_stays_cheap() -> None:
    """``import mqlab`` loads none of the modules behind the names (no pandas, no aio-pika)."""
    code = (
        "import sys, mqlab; print(sorted(m for m in sys.modules"
        " if m.startswith(('mqlab.', 'pandas', 'aio_pika'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
