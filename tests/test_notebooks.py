"""Every chapter runs top to bottom, in the quick setting, on a fresh kernel.

Chapters that use a broker (notebook metadata ``{"mqlab": {"broker": true}}``) run twice: on the
embedded broker (the default a learner gets) and on RabbitMQ via ``MQLAB_AMQP_URL``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _uses_broker(path: Path) -> bool:
    return bool(json.loads(path.read_text())["metadata"].get("mqlab", {}).get("broker"))


CASES = [pytest.param(p, "embedded", id=p.stem) for p in NOTEBOOKS] + [
    pytest.param(p, "rabbitmq", id=f"{p.stem}-rabbitmq", marks=pytest.mark.rabbitmq)
    for p in NOTEBOOKS
    if _uses_broker(p)
]


@pytest.mark.notebook
@pytest.mark.parametrize(("path", "broker"), CASES)
def test_notebook_runs(
    path: Path, broker: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_QUICK", "1")
    # No MPLBACKEND override: the kernel's inline backend must render the figures we check for.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    if broker == "rabbitmq":
        monkeypatch.setenv("MQLAB_AMQP_URL", request.getfixturevalue("rabbitmq_url"))
    else:
        monkeypatch.delenv("MQLAB_AMQP_URL", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    print(f"{path.name} [{broker}] ran in {elapsed:.1f} s")
    # A chapter should stay under about 60 s; the hard ceiling leaves room for a noisy machine.
    assert elapsed < 150, f"{path.name} took {elapsed:.0f} s; chapters must stay near 60 s"
    figures = sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )
    assert figures, f"{path.name} drew no figure; every chapter shows at least one"
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.get("name") == "stderr" and "Traceback" in out.get("text", "")
    ]
    assert not errors, f"{path.name} printed a traceback: {errors[0]['text'][:500]}"


def test_notebooks_exist() -> None:
    assert NOTEBOOKS, "no chapters found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count)
    ]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"
