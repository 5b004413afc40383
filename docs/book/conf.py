"""Sphinx configuration of the HTML book (``make book``).

The source directory is the repository root, so the chapters, docs/*.md and the README keep
their repository paths and the same relative links work on GitHub, in JupyterLab and here.
Everything the pages load is served from the build: no CDN widgets, no MathJax, no web fonts.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import UTC
from pathlib import Path
from typing import Any

from sphinx.search.zh import SearchChinese

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# The chapters run in their quick setting in the book, as in the tests; an explicit
# LAB_QUICK=0 in the environment builds the book from full-length measurements instead.
os.environ.setdefault("LAB_QUICK", "1")
# The kernel's inline backend draws the figures; a stray MPLBACKEND=Agg would hide them.
os.environ.pop("MPLBACKEND", None)

project = "aioquant lab"
author = "aioquant lab contributors"
language = "en"

extensions = ["myst_nb", "sphinx_external_toc"]
external_toc_path = str((HERE / "_toc.yml").relative_to(ROOT))  # from the source dir
external_toc_exclude_missing = False

# Only these sources make the book; everything else under the root (code, tests, .venv) is not
# a page. A file linked from a page but not listed here becomes a download link.
include_patterns = ["README.md", "docs/*.md", "notebooks/[0-9][0-9]_*.ipynb"]
exclude_patterns = ["_build", ".venv", "**/.ipynb_checkpoints"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Execute each chapter once; jupyter-cache re-runs only the notebooks whose code changed.
nb_execution_mode = "cache"
nb_execution_cache_path = str(ROOT / "_build" / ".jupyter_cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
# No widget JavaScript from a CDN: the book must work offline. Widget views are dropped from
# the HTML (their plain-text form would show instead; for tqdm's bar, see _drop_progress_bars).
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
# Markdown that a cell displays (chapter 00 shows the glossary) gets tables and links, as the
# chapters' own text does; commonmark would print the tables as raw pipes.
nb_render_markdown_format = "myst"

#: Chapters that read repository files when they run. The execution cache keys on a chapter's
#: code alone, so an input edited after the cached run expires that run.
RUN_TIME_INPUTS = {"notebooks/00_start_here.ipynb": ["docs/glossary.md"]}


def _expire_stale_runs(cache_dir: Path) -> None:
    if not cache_dir.is_dir():
        return
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_dir))
    for record in cache.list_cache_records():
        for chapter, inputs in RUN_TIME_INPUTS.items():
            # jupyter-cache stamps its records in naive UTC.
            ran = record.created.replace(tzinfo=UTC).timestamp()
            stale = any((ROOT / f).stat().st_mtime > ran for f in inputs)
            if Path(record.uri) == ROOT / chapter and stale:
                cache.remove_cache(record.pk)


_expire_stale_runs(Path(nb_execution_cache_path))

#: tqdm's bar as text: "label:  0%|          | 0/3 [00:00<?, ?it/s]".
_PROGRESS_BAR = re.compile(r"^[^\n]*\d+%\|[^\n]*\|\s*\d+/\d+\s*\[[^\n]*\]\s*$")


def _drop_progress_bars(app: Any, doctree: Any, docname: str) -> None:
    """Remove tqdm's notebook bars from the chapters' outputs.

    The bar is a widget; without widget JavaScript only its plain-text form is left, frozen at
    the moment it was displayed ("0%"), which misleads a reader. The executed notebook keeps it.
    """
    from docutils import nodes

    for block in list(doctree.findall(nodes.literal_block)):
        if "output" in block["classes"] and _PROGRESS_BAR.match(block.astext().strip()):
            block.parent.remove(block)


html_theme = "sphinx_book_theme"
html_title = "aioquant lab"
html_favicon = str(HERE / "favicon.svg")
html_context = {"default_mode": "light"}
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
}
html_last_updated_fmt = None
html_copy_source = True

# Chinese and English in one index: jieba cuts the Chinese, the English stemmer takes the rest.
html_search_language = "zh"


def _glossary_terms(glossary: Path) -> list[str]:
    """The Chinese names of the glossary (its second column), as runs of 2+ CJK characters."""
    terms: list[str] = []
    for line in glossary.read_text(encoding="utf-8").splitlines():
        cells = line.split("|")
        if len(cells) > 3:
            terms += re.findall(r"[\u4e00-\u9fff]{2,}", cells[2])
    return sorted(set(terms))


# jieba's own dictionary splits 事件循环 into 事件 + 循环, but the search box sends the whole
# term; the glossary's terms, as a user dictionary, are indexed whole as well as in parts.
_JIEBA_DICT = ROOT / "_build" / "jieba_glossary.txt"
_JIEBA_DICT.parent.mkdir(parents=True, exist_ok=True)
_JIEBA_DICT.write_text(
    "".join(f"{t} 2000\n" for t in _glossary_terms(HERE.parent / "glossary.md")), encoding="utf-8"
)
html_search_options = {"dict": str(_JIEBA_DICT)}


class _SearchChineseEnglish(SearchChinese):
    """Sphinx's zh search, with the JavaScript stemmer it really ships bound.

    Sphinx 9.0 copies the *English* stemmer for zh but binds ``window.Stemmer`` to
    ``ChineseStemmer``, which does not exist: every page then throws a ReferenceError and the
    search page finds nothing. ``language_name`` names that JavaScript class (and a log line).
    """

    language_name = "English"


def setup(app: Any) -> None:
    app.add_search_language(_SearchChineseEnglish)
    app.connect("doctree-resolved", _drop_progress_bars)
    try:  # jieba announces its dictionary on stderr at every build; keep the build quiet
        import jieba

        jieba.setLogLevel(logging.WARNING)
    except ImportError:  # without jieba, Sphinx indexes Latin words only; the check will say so
        pass


# The root page is the README (README.html); index.html sends a browser there.
html_extra_path = [str(HERE / "extra")]
