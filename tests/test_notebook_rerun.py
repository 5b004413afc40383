"""A learner re-runs cells after Run All: every cell that uses the broker connection must work.

Chapters 08 and 09 keep one connection, ``conn``, for the whole chapter. They used to close it
in their last cell, so re-running any earlier cell after Run All failed with "Connection was
not opened". This test runs each chapter top to bottom on one kernel, as Run All does, then
runs every cell that uses ``conn`` again, on the same kernel.
"""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
USES_CONN = re.compile(r"\bconn\b")


def _text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


@pytest.mark.notebook
@pytest.mark.parametrize("name", ["08_amqp_and_rabbitmq", "09_messaging_patterns"])
def test_cells_run_again_after_run_all(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_QUICK", "1")
    monkeypatch.delenv("MQLAB_AMQP_URL", raising=False)  # the embedded broker
    path = NOTEBOOKS / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    again = [i for i in code[1:] if USES_CONN.search(nb.cells[i].source)]
    assert len(again) >= 3, "the chapter should use its connection in several cells"
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):  # Run All
            client.execute_cell(cell, index)
        for index in again:  # raises CellExecutionError if a cell fails the second time
            client.execute_cell(copy.deepcopy(nb.cells[index]), index)
    assert not any(re.search(r"await conn\.close\(\)", nb.cells[i].source) for i in code), (
        "a code cell closes the connection: Run All would leave the chapter unusable"
    )
    if name.startswith("08"):
        _mapping_table_is_whole(nb)


def _mapping_table_is_whole(nb: nbformat.NotebookNode) -> None:
    """Chapter 08 shows the aioamqp -> aio-pika table with no cell cut short."""
    from mqlab import aioamqp_map

    (cell,) = [c for c in nb.cells if c.source.strip() == "aioamqp_map.table()"]
    shown = html.unescape(_text(cell))
    longest = max(aioamqp_map.MAPPING, key=lambda r: len(r.aioamqp) + len(r.note))
    for row in aioamqp_map.MAPPING:
        for text in (row.aioamqp, row.aio_pika, row.note):
            assert text in shown, f"the mapping table cuts {text[:40]!r}..."
    assert len(longest.aioamqp) > 50 or len(longest.note) > 50  # the table has long cells
