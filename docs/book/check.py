"""Check the built book in a real headless browser (``make book-check``).

Serves the built site on 127.0.0.1 and drives Debian's ``chromium`` through Playwright (never
Playwright's own browser download, which cannot work offline). It fails, listing every
problem, when:

- a page logs a console error or throws an uncaught exception;
- a request fails, answers 4xx/5xx, or leaves this machine (the book must work offline);
- an internal link points at a missing page or a missing ``#anchor``;
- a chapter page shows no rendered figure;
- clicking from a chapter to the glossary and back does not land where it should;
- the search page finds nothing for an English or a Chinese term.

It writes one screenshot per chapter, with its first figure in view, to ``--screenshots``.
"""

from __future__ import annotations

import argparse
import functools
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

CHAPTER = re.compile(r"^notebooks/\d\d_[^/]+\.html$")
GLOSSARY = "docs/glossary.html"
#: Terms the search page must find, English and Chinese, with a page expected among the hits.
SEARCHES = {
    "event loop": "docs/glossary.html",
    "事件循环": "docs/glossary.html",
    "未来函数": "docs/glossary.html",
    "look-ahead": "notebooks/07_vectorised_vs_event_driven.html",
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ID_ATTR = re.compile(r"""\bid\s*=\s*["']([^"']+)["']""")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # The browser drops connections it no longer needs (a page left mid-load); that is
        # not the book's fault. Anything else is, and surfaces as a failed request.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on a free loopback port; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    pages: int = 0
    links: int = 0
    figures: dict[str, int] = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)

    def fail(self, page: str, what: str) -> None:
        self.problems.append(f"{page}: {what}")


class Anchors:
    """The ``id`` attributes of each built page, read once, to check ``#fragment`` links."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Path, set[str]] = {}

    def of(self, path: Path) -> set[str]:
        if path not in self._cache:
            self._cache[path] = set(ID_ATTR.findall(path.read_text(errors="replace")))
        return self._cache[path]


def pages_of(root: Path) -> list[str]:
    """Every HTML page of the book, relative to its root (theme assets excluded)."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.html")
        if not p.relative_to(root).parts[0].startswith("_")
    )


def check_link(root: Path, base: str, page: str, href: str, anchors: Anchors) -> str | None:
    """Why the internal link ``href`` on ``page`` is broken, or None when it resolves."""
    url, fragment = urldefrag(href)
    path = unquote(urlsplit(url).path[len(urlsplit(base).path) :])
    target = root / path
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"broken link to {path or '/'} (no such file)"
    if fragment and target.suffix == ".html" and unquote(fragment) not in anchors.of(target):
        return f"broken link to {path}#{fragment} (no such anchor)"
    return None


def run(root: Path, shots: Path, timeout_ms: int) -> Report:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("book-check: no chromium on PATH; install Debian's chromium package")
    report = Report()
    anchors = Anchors(root)
    shots.mkdir(parents=True, exist_ok=True)
    with serve(root) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(timeout_ms)
        current = {"page": ""}

        def outside(route: object) -> None:
            # Anything not served by us would need the internet: block it and report it.
            req = route.request  # type: ignore[attr-defined]
            report.fail(current["page"], f"request leaves the machine: {req.url}")
            route.abort()  # type: ignore[attr-defined]

        context.route(re.compile(r"^(?!http://127\.0\.0\.1:\d+/|data:|blob:)"), outside)
        page = context.new_page()
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and report.fail(current["page"], f"console error: {m.text} ({m.location})")
            ),
        )
        page.on("pageerror", lambda e: report.fail(current["page"], f"uncaught error: {e}"))
        # ERR_ABORTED is a request the browser cancelled itself, e.g. the favicon still loading
        # when the check moves on to the next page; a request that really fails says otherwise
        # (and a 4xx/5xx answer is caught below).
        page.on(
            "requestfailed",
            lambda r: (
                r.failure != "net::ERR_ABORTED"
                and report.fail(current["page"], f"request failed: {r.url} ({r.failure})")
            ),
        )
        page.on(
            "response",
            lambda r: (
                r.status >= 400 and report.fail(current["page"], f"HTTP {r.status} for {r.url}")
            ),
        )

        for rel in pages_of(root):
            current["page"] = rel
            page.goto(base + rel, wait_until="load")
            page.wait_for_load_state("networkidle")
            report.pages += 1
            hrefs: list[str] = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            for href in hrefs:
                if href.startswith(base):
                    report.links += 1
                    broken = check_link(root, base, rel, href, anchors)
                    if broken:
                        report.fail(rel, broken)
            if CHAPTER.match(rel):
                check_chapter(page, rel, shots, report)

        click_to_glossary_and_back(page, base, current, report)
        check_search(page, base, current, report)
        browser.close()
    return report


def check_chapter(page: object, rel: str, shots: Path, report: Report) -> None:
    """At least one rendered figure (a decoded image in a cell output); a screenshot."""
    figures = page.locator(".cell_output img")  # type: ignore[attr-defined]
    rendered = page.eval_on_selector_all(  # type: ignore[attr-defined]
        ".cell_output img", "els => els.filter(e => e.complete && e.naturalWidth > 0).length"
    )
    report.figures[rel] = rendered
    if rendered == 0:
        report.fail(rel, "no rendered figure in any cell output")
    else:
        figures.first.scroll_into_view_if_needed()
    shot = shots / (Path(rel).stem + ".png")
    page.screenshot(path=str(shot))  # type: ignore[attr-defined]
    report.screenshots.append(shot)


def click_to_glossary_and_back(
    page: object, base: str, current: dict[str, str], report: Report
) -> None:
    start = "notebooks/00_start_here.html"
    current["page"] = start + " (click-through)"
    page.goto(base + start, wait_until="load")  # type: ignore[attr-defined]
    link = page.locator(f"article a[href$='{GLOSSARY.split('/')[-1]}']")  # type: ignore[attr-defined]
    if link.count() == 0:
        report.fail(start, "no link from the chapter's text to the glossary")
        return
    link.first.click()
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    url: str = page.url  # type: ignore[attr-defined]
    heading = page.locator("article h1").first.inner_text()  # type: ignore[attr-defined]
    if not urldefrag(url)[0].endswith(GLOSSARY) or "术语表" not in heading:
        report.fail(start, f"clicking the glossary link landed on {url} ({heading!r})")
    page.go_back(wait_until="load")  # type: ignore[attr-defined]
    if not urldefrag(page.url)[0].endswith(start):  # type: ignore[attr-defined]
        report.fail(start, f"going back from the glossary landed on {page.url}")  # type: ignore[attr-defined]


def check_search(page: object, base: str, current: dict[str, str], report: Report) -> None:
    for term, expected in SEARCHES.items():
        current["page"] = f"search.html?q={term}"
        page.goto(base + "search.html?q=" + term, wait_until="load")  # type: ignore[attr-defined]
        # Sphinx lists hits one by one and says "Search finished" (or "did not match") last.
        page.wait_for_function(  # type: ignore[attr-defined]
            "() => /Search finished|did not match/.test("
            "document.querySelector('.search-summary')?.innerText ?? '')"
        )
        found: list[str] = page.eval_on_selector_all(  # type: ignore[attr-defined]
            "#search-results a", "els => els.map(e => e.href)"
        )
        if not any(expected in unquote(h) for h in found):
            report.fail(
                current["page"], f"search for {term!r} did not find {expected} ({len(found)} hits)"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("book", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"))
    parser.add_argument("--timeout-ms", type=int, default=30_000)
    args = parser.parse_args(argv)
    if not (args.book / "README.html").is_file():
        print(f"book-check: no book in {args.book}; run make book first", file=sys.stderr)
        return 2
    started = time.perf_counter()
    report = run(args.book, args.screenshots, args.timeout_ms)
    chapters = len(report.figures)
    print(
        f"book-check: {report.pages} pages, {report.links} internal links, {chapters} chapters "
        f"({sum(report.figures.values())} figures), {len(SEARCHES)} searches, "
        f"{time.perf_counter() - started:.0f} s; screenshots in {args.screenshots}/"
    )
    if chapters == 0:
        report.problems.append("no chapter pages found (notebooks/NN_*.html)")
    for problem in report.problems:
        print("  FAIL", problem, file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
