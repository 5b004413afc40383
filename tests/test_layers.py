"""mqlab's layers, enforced: no module imports from a layer above its own, and no import cycle.

In the style of trio's ``test_exports``: the rule lives in the test, the test reads the code
(every ``import``, lazy ones and ``TYPE_CHECKING`` ones included, since a lazy import is
still a dependency), and a failure names the file, the import and the fix. The layers, from
the bottom (docs/architecture.md draws the same picture)::

    events, routing, loop    what happened; how routing keys match; which event loop
    venue / strategy / ...   the trading domain: venue, strategy, portfolio, market data
    engine                   one event order: engine, backtest, the run configuration
    bus                      reaching a broker: connection, bus, topology, patterns, faults
    services                 market, strategy host, exchange service, portfolio, risk; live
    pipeline                 the services together; sync
    apps                     the package's face, the CLI, the exercises

Beside them stands the embedded broker (``mqlab.broker``), a server of its own: it may use
only the bottom layer, and of everything else only what reaches a broker or draws one
(connection, topology, patterns, the pipeline's embedded broker, the exercises) imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mqlab"

#: Bottom to top. A module belongs to the first layer with a prefix that names it (a prefix
#: is a module or a package); a module may import its own layer and those below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("events", ("mqlab.events", "mqlab.routing", "mqlab.aioamqp_map", "mqlab.loop")),
    (
        "venue / strategy / portfolio",
        (
            "mqlab.venue",
            "mqlab.strategy",
            "mqlab.strategies",
            "mqlab.portfolio",
            "mqlab.market",
            "mqlab.bars",
            "mqlab.lookahead",
            "mqlab.report",
            "mqlab.vectorised",
            "mqlab.data",
        ),
    ),
    ("engine", ("mqlab.engine", "mqlab.backtest", "mqlab.config", "mqlab.timeseries")),
    (
        "bus",
        (
            "mqlab.connection",
            "mqlab.bus",
            "mqlab.delivery",
            "mqlab.topology",
            "mqlab.patterns",
            "mqlab.faults",
            "mqlab.features",
            "mqlab.ha",
        ),
    ),
    ("services", ("mqlab.services", "mqlab.live")),
    ("pipeline", ("mqlab.pipeline", "mqlab.sync", "mqlab.cluster")),
    (
        "apps",
        ("mqlab.__main__", "mqlab.backtest_cli", "mqlab.exercises", "mqlab.cluster_lab", "mqlab"),
    ),
]

BROKER = "mqlab.broker"
#: Who may import the embedded broker, besides the broker itself.
BROKER_USERS = (
    "mqlab.connection",
    "mqlab.topology",
    "mqlab.patterns",
    "mqlab.pipeline.embedded",
    "mqlab.exercises",
)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The index of ``module``'s layer; the broker's own modules stand beside layer 0."""
    if _within(module, BROKER):
        return 0
    if module == "mqlab":  # the package's face stands on top of everything it shows
        return len(LAYERS) - 1
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(_within(module, p) for p in prefixes if p != "mqlab"):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def imports(module: str) -> Iterator[tuple[str, int]]:
    """Every mqlab module ``module`` imports, with the line; ``from pkg import sub`` counts
    as an import of ``pkg.sub`` when ``sub`` is a module."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _within(alias.name, "mqlab"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            if not _within(base, "mqlab"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in MODULES else base), node.lineno


GRAPH = {m: sorted({t for t, _ in imports(m) if t in MODULES and t != m}) for m in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module: str) -> None:
    mine = layer_of(module)
    for target, line in imports(module):
        if target not in MODULES or target == module:
            continue
        if _within(module, BROKER):
            assert _within(target, BROKER) or layer_of(target) == 0, (
                f"{MODULES[module]}:{line}: the embedded broker imports {target}; it may use "
                f"only itself and the bottom layer ({', '.join(LAYERS[0][1])})"
            )
            continue
        if _within(target, BROKER):
            assert any(_within(module, user) for user in BROKER_USERS), (
                f"{MODULES[module]}:{line}: {module} reaches into the embedded broker "
                f"({target}); go through mqlab.connection or mqlab.bus, or move what it needs "
                "to the bottom layer (as mqlab.routing was)"
            )
            continue
        theirs = layer_of(target)
        assert theirs <= mine, (
            f"{MODULES[module]}:{line}: {module} (layer {LAYERS[mine][0]!r}) imports {target} "
            f"from the layer above, {LAYERS[theirs][0]!r}; move the code down or the caller up"
        )


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, []):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles (lazy and TYPE_CHECKING imports count): " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_checks_can_fail() -> None:
    """The checkers themselves: a planted cycle is found, and an upward import is seen."""
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": []}) == []
    assert layer_of("mqlab.pipeline.runner") > layer_of("mqlab.services.market")
    assert layer_of("mqlab.events") < layer_of("mqlab.venue") < layer_of("mqlab.engine")
    assert layer_of("mqlab.engine") < layer_of("mqlab.bus") < layer_of("mqlab.services")
    assert layer_of("mqlab") == len(LAYERS) - 1


@pytest.mark.parametrize("path", sorted((ROOT / "concurrency_lab").rglob("*.py")), ids=str)
def test_concurrency_lab_stands_apart(path: Path) -> None:
    # Chapters 01-06's library sits below everything: it imports neither mqlab nor the
    # chapters' prose helpers (which import it).
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
        for name in names:
            top = name.split(".")[0]
            assert top not in {"mqlab", "chapters"}, (
                f"{path.relative_to(ROOT)}:{node.lineno} imports {name}; concurrency_lab "
                "stands below mqlab and chapters/: return a typed result and format it there"
            )
