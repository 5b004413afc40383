"""Workloads under serial, threads, processes and asyncio; the timelines they leave."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from concurrency_lab import gil
from concurrency_lab.timeline import Timeline

matplotlib.use("Agg")


def test_cpu_job_is_deterministic() -> None:
    assert gil.cpu_job(14) == sum(i % 7 for i in range(14)) == 42


def test_native_job_hashes_zeros_like_hashlib() -> None:
    import hashlib

    assert gil.native_job(4096) == hashlib.sha256(bytes(4096)).hexdigest()


@pytest.mark.parametrize("mode", gil.MODES)
@pytest.mark.parametrize("workload", gil.WORKLOADS)
def test_every_mode_runs_every_workload_and_is_traced(workload: str, mode: str) -> None:
    tl = Timeline()
    size = {"cpu": 20_000, "native": 2**16, "io": 0.005}[workload]
    seconds = gil.run(workload, mode, 2, size, chunks=4, timeline=tl)  # type: ignore[arg-type]
    assert seconds > 0
    expected_spans = 2 * (1 if workload == "io" else 4)
    assert len(tl) == expected_spans
    prefix = {"serial": "MainThread", "threads": "thread_", "asyncio": "task-"}.get(mode)
    if prefix is None:  # processes: lanes are the worker processes' names
        assert "MainThread" not in tl.lanes
    else:
        assert all(lane.startswith(prefix) for lane in tl.lanes), tl.lanes


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        gil.run("cpu", "fibers", 1, 10)  # type: ignore[arg-type]


def test_threads_never_compute_in_parallel_under_the_gil() -> None:
    tl = gil.trace("cpu", "threads", jobs=2)
    both, anyone = gil.parallel_seconds(tl)
    assert anyone > 0
    # Chunks straddling a hand-over can overlap a little; real parallel work cannot happen.
    assert both < 0.25 * anyone


def test_parallel_seconds_on_a_synthetic_timeline() -> None:
    tl = Timeline()
    o, ms = tl.origin_ns, 1_000_000
    tl.record("CPU work", o, o + 4 * ms, lane="a")
    tl.record("CPU work", o + 2 * ms, o + 6 * ms, lane="b")
    tl.record("waiting for IO", o, o + 9 * ms, lane="c")
    both, anyone = gil.parallel_seconds(tl)
    assert both == pytest.approx(0.002) and anyone == pytest.approx(0.006)


def test_compare_and_plot() -> None:
    frame = gil.compare(quick=True, jobs=2, repeats=1)
    assert set(frame["mode"]) == set(gil.MODES) and set(frame["workload"]) == set(gil.WORKLOADS)
    serial = frame[frame["mode"] == "serial"]
    assert (serial["speedup"] == 1).all()
    ax = gil.plot_speedups(frame)
    assert ax.get_title() and "×" in ax.get_ylabel()


def test_plot_accepts_a_hand_made_frame() -> None:
    rows = [
        {"workload": w, "mode": m, "seconds": 1.0, "speedup": 1.0, "jobs": 4, "cores": 2}
        for w in gil.WORKLOADS
        for m in gil.MODES
    ]
    ax = gil.plot_speedups(pd.DataFrame(rows))
    assert len(ax.patches) == len(rows)


@pytest.mark.parametrize("wait", [True, False])
def test_main_thread_demo_blocks_or_carries_on(wait: bool) -> None:
    tl = gil.main_thread_demo(wait, jobs=2, seconds=0.03)
    main = {s.label for s in tl.spans if s.lane == "MainThread"}
    assert {"sync code", "submit tasks", "use results"} <= main
    assert ("blocked: waiting for results" in main) == wait
    assert ("carries on: own work" in main) == (not wait)
    assert {"task_0", "task_1"} <= set(tl.lanes)
