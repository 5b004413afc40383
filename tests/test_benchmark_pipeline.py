"""benchmarks/pipeline.py's verdicts and its docs table, on a made-up result (no broker)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "pipeline.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pipeline", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(events_per_s: float, total: float, p99: float = 5.0) -> dict[str, Any]:
    return {
        "events_per_s": events_per_s,
        "latency_ms_p50": 1.0,
        "latency_ms_p99": p99,
        "same_fills": True,
        "messages_per_event": {"published": 1.0, "delivered": total - 1.0, "total": total},
        "ceiling_share": 0.5,
    }


def test_check_reads_each_kind_of_bound(bench: ModuleType) -> None:
    assert bench.check(_row(1200, 4.4), "events_per_s", "min", 1000) is True
    assert bench.check(_row(900, 4.4), "events_per_s", "min", 1000) is False
    assert bench.check(_row(900, 4.4), "messages_per_event", "max", 3) is False
    assert bench.check(_row(900, 1.7), "messages_per_event", "max", 3) is True
    assert bench.check(None, "events_per_s", "min", 1000) is None


def test_markdown_says_what_was_not_met_and_not_measured(bench: ModuleType) -> None:
    result: dict[str, Any] = {
        "events": 100,
        "repeats": 1,
        "in_process": {
            "events_per_s": 1e5,
            "latency_ms_p50": 0.0,
            "latency_ms_p99": 0.0,
            "same_fills": True,
        },
        **{name: _row(1100, 4.4) for name in bench.BUS_ROWS},
        "ceiling_messages_per_s": {"embedded": 7000},
        "machine": {"cpus": 2, "load_1min": 0.1, "load_1min_start": 0.2, "python": "3.11"},
    }
    result["rabbitmq"] = result["rabbitmq_processes"] = None
    result["targets"] = {
        f"{row}.{figure}": bench.check(result[row], figure, kind, bound)
        for row, figure, kind, bound in bench.TARGETS
    }
    text = bench.markdown(result)
    assert "| RabbitMQ, one process | not measured |" in text
    assert "| `rabbitmq.events_per_s` | not measured |" in text
    assert "| `embedded.events_per_s` | holds |" in text
    assert "| `embedded.messages_per_event` | **not met** |" in text
    assert "4.4 (1.0 + 3.4" in text
    assert "made the backtest's fills" in text


def test_docs_table_is_the_recorded_result(bench: ModuleType) -> None:
    """docs/benchmarks.md shows benchmarks/results/pipeline.json as it is (re-render it with
    ``python benchmarks/pipeline.py --markdown`` after a full run)."""
    import json

    docs = (PATH.parents[1] / "docs" / "benchmarks.md").read_text()
    start = docs.index("<!-- pipeline-table: python benchmarks/pipeline.py --markdown -->\n")
    end = docs.index("<!-- /pipeline-table -->")
    shown = docs[start:end].split("\n", 1)[1].strip()
    assert shown == bench.markdown(json.loads(bench.RESULTS.read_text())).strip()
