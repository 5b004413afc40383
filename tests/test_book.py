"""The book's table of contents and the browser check's link logic (no browser needed here).

``make book-check`` itself runs in CI (.ci/run) against the built site.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parent.parent
BOOK = ROOT / "docs" / "book"


def _load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("book_check", BOOK / "check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


check = _load_check()


def _toc_files() -> list[str]:
    return re.findall(r"^\s*(?:-\s*)?(?:file|root):\s*(\S+)", (BOOK / "_toc.yml").read_text(), re.M)


def test_toc_lists_every_chapter_and_doc_once() -> None:
    listed = _toc_files()
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    wanted = {"README"} | {
        p.relative_to(ROOT).with_suffix("").as_posix()
        for p in [*ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"), *ROOT.glob("docs/*.md")]
    }
    assert set(listed) == wanted, (
        f"not in docs/book/_toc.yml: {sorted(wanted - set(listed))}; "
        f"listed but missing: {sorted(set(listed) - wanted)}"
    )
    chapters = [f for f in listed if f.startswith("notebooks/")]
    assert chapters == sorted(chapters), "chapters must be listed in their numbered order"


def _site(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "glossary.html").write_text('<h1 id="glossary">G</h1><p id="gil">x</p>')
    (tmp_path / "README.html").write_text("<p>home</p>")
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "x.html").write_text("theme asset")
    return tmp_path


BASE = "http://127.0.0.1:9/"


@pytest.mark.parametrize(
    ("href", "problem"),
    [
        (BASE + "docs/glossary.html", None),
        (BASE + "docs/glossary.html#gil", None),
        (BASE + "README.html?highlight=x", None),
        (BASE + "docs/glossary.html#no-such-term", "no such anchor"),
        (BASE + "docs/setup.html", "no such file"),
        (BASE + "notebooks/", "no such file"),
    ],
)
def test_check_link(tmp_path: Path, href: str, problem: str | None) -> None:
    site = _site(tmp_path)
    found = check.check_link(site, BASE, "README.html", href, check.Anchors(site))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_pages_skip_theme_assets(tmp_path: Path) -> None:
    assert check.pages_of(_site(tmp_path)) == ["README.html", "docs/glossary.html"]


def test_check_refuses_a_missing_book(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([str(tmp_path)]) == 2
    assert "run make book first" in capsys.readouterr().err
