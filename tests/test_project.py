"""Project hygiene: one source of dependencies, mirrored faithfully in environment.yml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def _environment_packages() -> tuple[str, set[str]]:
    """Python version and package names from environment.yml (conda and pip sections)."""
    python, names = "", set()
    text = (ROOT / "environment.yml").read_text().split("\ndependencies:", 1)[1]
    for line in text.splitlines():
        item = line.strip()
        if not item.startswith("- ") or item.endswith(":"):
            continue
        name = _names([item[2:]]).pop()
        if name == "python":
            python = item[2:]
        elif name not in {"pip", "-e"}:
            names.add(name)
    return python, names


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _names(project["dependencies"]) | _names(project["optional-dependencies"]["dev"])
    python, names = _environment_packages()
    assert "3.11" in python, f"environment.yml pins {python!r}; pyproject wants 3.11+"
    assert names == wanted, (
        f"environment.yml and pyproject.toml drifted: only in pyproject {sorted(wanted - names)}, "
        f"only in environment.yml {sorted(names - wanted)}"
    )
