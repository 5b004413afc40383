"""Chapter 01: workloads under serial, threads, processes and asyncio; the timelines they leave
(gil), the speed-ups (speedups) and the main thread that blocks or carries on (main_thread)."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest

from concurrency_lab import gil, main_thread, speedups, workloads
from concurrency_lab.timeline import Timeline

matplotlib.use("Agg")


def test_cpu_job_is_deterministic() -> None:
    assert workloads.cpu_job(14) == sum(i % 7 for i in range(14)) == 42


def test_native_job_hashes_zeros_like_hashlib() -> None:
    import hashlib

    assert workloads.native_job(4096) == hashlib.sha256(bytes(4096)).hexdigest()


@pytest.mark.parametrize("mode", workloads.MODES)
@pytest.mark.parametrize("workload", workloads.WORKLOADS)
def test_every_mode_runs_every_workload_and_is_traced(workload: str, mode: str) -> None:
    tl = Timeline()
    size = {"cpu": 20_000, "native": 2**16, "io": 0.005}[workload]
    seconds, cpu = workloads.run(workload, mode, 2, size, chunks=4, timeline=tl)  # type: ignore[arg-type]
    assert seconds > 0 and cpu >= 0
    expected_spans = 2 * (1 if workload == "io" else 4)
    assert len(tl) == expected_spans
    prefix = {"serial": "MainThread", "threads": "thread_", "asyncio": "task-"}.get(mode)
    if prefix is None:  # processes: lanes are the worker processes' names
        assert "MainThread" not in tl.lanes
    else:
        assert all(lane.startswith(prefix) for lane in tl.lanes), tl.lanes


def test_a_thread_in_one_long_c_call_freezes_the_main_thread_a_process_does_not() -> None:
    # Not a timing threshold: a frozen ticker misses every tick while the call runs (the gap
    # is the whole run), a free one keeps ticking (the gap is a small part of it).
    gap, ran = gil.stall("thread", steps=5_000_000)
    assert gap > 0.8 * ran
    gap, ran = gil.stall("process", steps=20_000_000)
    assert gap < 0.5 * ran


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        workloads.run("cpu", "fibers", 1, 10)  # type: ignore[arg-type]


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
    frame = speedups.compare(quick=True, jobs=2, repeats=1)
    assert set(frame["mode"]) == set(workloads.MODES)
    assert set(frame["workload"]) == set(workloads.WORKLOADS)
    serial = frame[frame["mode"] == "serial"]
    assert (serial["speedup"] == 1).all()
    ax = speedups.plot_speedups(frame)
    assert ax.get_title() and "×" in ax.get_ylabel()


def test_plot_accepts_a_hand_made_frame() -> None:
    rows = [
        {"workload": w, "mode": m, "seconds": 1.0, "speedup": 1.0, "jobs": 4, "cores": 2}
        for w in workloads.WORKLOADS
        for m in workloads.MODES
    ]
    ax = speedups.plot_speedups(pd.DataFrame(rows))
    assert len(ax.patches) == len(rows)


def test_compare_reports_cores_used_and_noise() -> None:
    frame = speedups.compare(quick=True, jobs=2, repeats=1)
    rows = frame.set_index(["workload", "mode"])
    assert (frame["noise"] >= 0).all() and (frame["cores used"] >= 0).all()
    # One GIL: pure-Python threads never use more than one core's worth of CPU together.
    assert rows.loc[("cpu", "threads"), "cores used"] < 1.2
    # Waiting uses next to no CPU, whatever the mode.
    assert (rows.loc["io", "cores used"] < 0.3).all()


def test_verdicts_count_only_gains_beyond_the_noise() -> None:
    rows = [
        {"workload": "cpu", "mode": "serial", "speedup": 1.0, "cores used": 1.0, "noise": 0.1},
        {"workload": "cpu", "mode": "threads", "speedup": 1.15, "cores used": 1.0, "noise": 0.1},
        {"workload": "cpu", "mode": "processes", "speedup": 1.9, "cores used": 1.9, "noise": 0.1},
        {"workload": "io", "mode": "asyncio", "speedup": 0.5, "cores used": 0.0, "noise": 0.0},
    ]
    found = speedups.verdicts(pd.DataFrame(rows))
    assert [(v.workload, v.mode) for v in found] == [
        ("cpu", "threads"),  # serial is the baseline, not a verdict
        ("cpu", "processes"),
        ("io", "asyncio"),
    ]
    assert [v.verdict for v in found] == ["no gain", "gained", "slower"]
    assert found[0].band == pytest.approx(0.2) and found[2].band == 0.15  # the floor
    assert found[1].cores_used == 1.9 and not found[1].one_core_gain


def test_a_cpu_gain_on_one_core_is_not_called_parallelism() -> None:
    rows = [
        {"workload": "cpu", "mode": "serial", "speedup": 1.0, "cores used": 0.6, "noise": 0.05},
        {"workload": "cpu", "mode": "threads", "speedup": 1.3, "cores used": 0.8, "noise": 0.05},
    ]
    (v,) = speedups.verdicts(pd.DataFrame(rows))
    assert v.verdict == "gained" and v.one_core_gain and v.serial_cores_used == 0.6


def test_warm_starts_every_worker_of_a_process_pool() -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(3) as pool:
        workloads._warm(pool, 3)
        assert len(pool._processes) == 3  # type: ignore[attr-defined]


def test_overlap_follows_the_numbers() -> None:
    tl = Timeline()
    o, ms = tl.origin_ns, 1_000_000
    tl.record("CPU work", o, o + 4 * ms, lane="a")
    tl.record("CPU work", o + 4 * ms, o + 8 * ms, lane="b")
    took_turns = gil.overlap(tl)
    assert took_turns.both_s == 0 and took_turns.anyone_s == pytest.approx(0.008)
    assert not took_turns.overlapped
    tl.record("CPU work", o, o + 8 * ms, lane="c")
    assert gil.overlap(tl).share == 1.0 and gil.overlap(tl).overlapped


def test_trace_starts_its_clock_at_the_first_job() -> None:
    tl = gil.trace("io", "processes", jobs=2)
    assert min(s.start for s in tl.spans) == 0


@pytest.mark.parametrize("wait", [True, False])
def test_main_thread_demo_blocks_or_carries_on(wait: bool) -> None:
    tl = main_thread.main_thread_demo(wait, jobs=2, seconds=0.03, own_work=50_000)
    main = [s.label for s in tl.spans if s.lane == "MainThread"]
    own, blocked = main_thread.MAIN["own"], main_thread.MAIN["blocked"]
    assert set(main) == set(main_thread.MAIN.values())  # the same work either way
    # Blocking at once does the own work after the results; carrying on does it before.
    assert (main.index(blocked) < main.index(own)) == wait
    assert {"task_0", "task_1"} <= set(tl.lanes)


def test_main_thread_summary_and_plot() -> None:
    runs = {w: main_thread.main_thread_demo(w, 2, 0.03, own_work=50_000) for w in (True, False)}
    summary = main_thread.main_thread_summary(runs)
    assert list(summary) == [True, False]
    for r in summary.values():
        assert 0 < r.blocked_ms < r.total_ms and 0 < r.own_work_ms < r.total_ms
    fig = main_thread.plot_main_thread(runs)
    assert "2 tasks" in fig.get_suptitle()
    hatched = [c for ax in fig.axes for c in ax.collections if c.get_hatch()]
    assert hatched  # waiting is hatched


def test_cli_gil_prints_the_table_and_the_verdicts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from concurrency_lab import __main__ as cli

    rows = [
        {
            "workload": "io",
            "mode": m,
            "seconds": 1.0,
            "speedup": s,
            "cores used": 0.0,
            "noise": 0.01,
            "jobs": 4,
            "cores": 2,
        }
        for m, s in [("serial", 1.0), ("threads", 3.9)]
    ]
    monkeypatch.setattr(speedups, "compare", lambda **_: pd.DataFrame(rows))
    cli.main(["gil", "--quick"])
    out = capsys.readouterr().out
    assert "speedup" in out and "IO-bound (waiting)" in out and "gained" in out


def test_process_overlap_is_derived_from_the_data() -> None:
    tl = Timeline()
    o, ms = tl.origin_ns, 1_000_000
    tl.record("CPU work", o, o + 4 * ms, lane="a")
    tl.record("CPU work", o + 4 * ms, o + 8 * ms, lane="b")  # took turns
    busy = gil.process_overlap(tl, busy=1.6, cores=2)
    assert busy.share == 0 and not busy.parallel
    assert busy.free == pytest.approx(0.4) and busy.crowded
    quiet = gil.process_overlap(tl, busy=0.1, cores=4)
    assert quiet.free == pytest.approx(3.9) and not quiet.crowded
    tl.record("CPU work", o, o + 8 * ms, lane="c")  # now two lanes compute at once throughout
    both = gil.process_overlap(tl, 1.6, 2)
    assert both.share == 1.0 and both.parallel
