"""aio: the chapter 04–06 demos produce the behaviour the chapters describe (not timings)."""

from __future__ import annotations

import asyncio
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from concurrency_lab import combinators, coroutines, fresh, loops, nest_cost, starting, tasks
from concurrency_lab.timeline import Timeline


@pytest.mark.parametrize("loop", loops.LOOPS)
@pytest.mark.parametrize("workload", list(loops.WORKLOADS))
def test_the_same_workload_runs_on_every_loop(loop: str, workload: str) -> None:
    seconds = loops.switch_cost(loop, workload, 200)
    assert 0 < seconds < 0.01


def test_unknown_loop_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="trio"):
        loops.switch_cost("trio", "sleep(0) switch", 10)


@pytest.mark.slow  # in a long test process each gc.collect() of the timed region is slow
@pytest.mark.parametrize("fresh", [True, False])
def test_compare_loops_rows_and_ratios(fresh: bool) -> None:
    rows = loops.compare_loops(n=200, repeats=2, fresh=fresh)
    assert {(r["workload"], r["loop"]) for r in rows} == {
        (w, lp) for w in loops.WORKLOADS for lp in loops.LOOPS
    }
    for r in rows:
        assert r["p10_us"] <= r["median_us"] <= r["p90_us"]
        assert r["repeats"] == 2
        if r["loop"] == "asyncio":
            assert r["vs_asyncio"] == pytest.approx(1.0)


def test_compare_loops_runs_inside_a_running_loop() -> None:
    async def main() -> list[dict]:
        return loops.compare_loops(n=200, repeats=2)  # as a notebook cell calls it

    assert len(asyncio.run(main())) == len(loops.WORKLOADS) * len(loops.LOOPS)


def _row(workload: str, loop: str, p10: float, median: float, p90: float) -> dict:
    return {
        "workload": workload,
        "loop": loop,
        "p10_us": p10,
        "median_us": median,
        "p90_us": p90,
        "repeats": 5,
    }


def test_rank_loops_orders_by_median_and_calls_overlaps_a_tie() -> None:
    rows = [
        _row("w", "asyncio", 2.0, 2.5, 3.0),
        _row("w", "miniloop", 1.8, 2.2, 2.6),  # overlaps asyncio: too close to call
        _row("w", "uvloop", 1.0, 1.2, 1.4),  # clearly apart from both
        _row("v", "asyncio", 1.0, 1.1, 1.2),
        _row("v", "miniloop", 3.0, 3.1, 3.2),
    ]
    assert loops.rank_loops(rows) == {
        "w": [
            loops.Ranked("uvloop", 1.2, True),
            loops.Ranked("miniloop", 2.2, False),
            loops.Ranked("asyncio", 2.5, None),
        ],
        "v": [loops.Ranked("asyncio", 1.1, True), loops.Ranked("miniloop", 3.1, None)],
    }


def test_plot_loop_compare_draws_a_whisker_per_bar() -> None:
    rows = [_row(w, lp, 1.0, 2.0, 4.0) for w in ("a", "b") for lp in ("miniloop", "asyncio")]
    ax = loops.plot_loop_compare(rows)
    try:
        bars = [c for c in ax.containers if hasattr(c, "errorbar")]
        assert len(bars) == 2 and all(len(c) == 2 for c in bars)
        segments = bars[0].errorbar.lines[2][0].get_segments()
        assert [tuple(seg[:, 1]) for seg in segments] == [(1.0, 4.0), (1.0, 4.0)]
        assert "p10–p90" in ax.get_title()
    finally:
        plt.close(ax.figure)


STEPS = [
    "function call",
    "generator send()",
    "await a coroutine",
    "asyncio sleep(0) switch",
    "miniloop sleep(0) switch",
]


@pytest.mark.slow  # in a long test process each gc.collect() of the timed region is slow
@pytest.mark.parametrize("fresh", [True, False])
def test_step_costs_names_every_step(fresh: bool) -> None:
    costs = coroutines.step_costs(n=2000, repeats=2, fresh=fresh)
    assert list(costs) == STEPS
    assert all(v > 0 for v in costs.values())


@pytest.mark.slow  # a real measurement: seconds
def test_step_costs_runs_inside_a_running_loop() -> None:
    async def main() -> dict[str, float]:
        return coroutines.step_costs(n=1000, repeats=2, fresh=False)  # the in-process path

    assert len(asyncio.run(main())) == 5


def test_plot_step_costs_titles_the_measured_ratios() -> None:
    costs = dict(zip(STEPS, [0.02, 0.02, 0.1, 2.0, 1.0], strict=True))
    ax = coroutines.plot_step_costs(costs)
    try:
        assert ax.get_title() == (
            "An await that does not suspend: 5.0× a call; an asyncio switch: 20× that"
        )
    finally:
        plt.close(ax.figure)


@pytest.mark.slow  # in a long test process each gc.collect() of the timed region is slow
def test_command_line_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert fresh.main(["loop-samples", "--n=100", "--rounds=2"]) == 0
    samples = json.loads(capsys.readouterr().out)
    assert len(samples) == 2 * len(loops.WORKLOADS) * len(loops.LOOPS)
    expected = {(w, lp) for w in loops.WORKLOADS for lp in loops.LOOPS}
    assert {(w, lp) for w, lp, _ in samples} == expected


def test_traced_ab_prints_and_draws_the_seed_order(capsys: pytest.CaptureFixture[str]) -> None:
    tl = Timeline()
    asyncio.run(coroutines.traced_ab(tl, cpu=0.0))
    assert capsys.readouterr().out.splitlines() == ["Suspending a", "In b", "Resuming a"]
    assert [(s.lane, s.label) for s in tl.spans] == [
        ("a", "print('Suspending a')"),
        ("b", "print('In b')"),
        ("a", "print('Resuming a')"),
    ]


def test_old_style_report_shows_what_changed() -> None:
    rows = {r["case"]: r for r in starting.old_style_report()}
    assert len(rows) == 6
    assert rows["asyncio.run(), twice"]["printed"] == "ok | ok"
    assert rows["asyncio.Runner (3.11+): one loop, several runs"]["printed"] == "ok | ok"
    assert "no current event loop" in rows["get_event_loop() in a worker thread"]["printed"]
    if sys.version_info < (3, 14):
        assert rows["seed: get_event_loop().run_until_complete, once"]["printed"] == "ok"
        assert (
            "Event loop is closed" in rows["seed pattern run twice (the loop was closed)"]["raised"]
        )
        after_run = rows["get_event_loop() after asyncio.run()"]
        assert after_run["printed"] == "ok"
        assert "no current event loop" in after_run["raised"]


@pytest.mark.slow  # two interpreters in subprocesses
def test_nest_asyncio_cost_compares_plain_and_patched_interpreters() -> None:
    plain, patched = nest_cost.nest_asyncio_cost(n=500, repeats=3)
    assert plain["samples"] == patched["samples"] == 6  # 3 repeats in each of 2 interpreters
    assert plain["patched"] is False and patched["patched"] is True
    assert plain["nested call"].startswith("RuntimeError")
    assert patched["nested call"] == "nested run_until_complete worked"
    if sys.version_info < (3, 14):
        assert plain["asyncio.Task is"].startswith("C")
        assert patched["asyncio.Task is"].startswith("pure Python")
    for key in ("sleep(0) switch us", "Future hand-off us", "run_until_complete us"):
        for run in (plain, patched):
            assert 0 < run[f"{key} p10"] <= run[key] <= run[f"{key} p90"]
    # The caller's own asyncio is untouched: the patch lived in the subprocess only.
    assert not hasattr(asyncio, "_nest_patched")


def _overlaps(a: object, b: object) -> bool:
    return a.start < b.end and b.start < a.end  # type: ignore[attr-defined]


@pytest.mark.parametrize("wait", [True, False])
def test_submit_tasks_draws_the_seed_picture(wait: bool) -> None:
    tl = Timeline()

    async def main() -> list[float]:
        return await tasks.submit_tasks(tl, wait=wait, waits=(0.06, 0.03, 0.045))

    assert asyncio.run(main()) == [0.06, 0.03, 0.045]
    spans = tl.spans
    waiting = [s for s in spans if s.label == "waits: await gather(...)"]
    tasks_end = max(s.end for s in spans if s.lane.startswith("task "))
    assert len(waiting) == 1 and waiting[0].end >= tasks_end  # gather returns after every task
    io = [s for s in spans if s.label == "wait for IO"]
    assert sorted(s.lane for s in io) == ["task 1", "task 2", "task 3"]
    submit = next(s for s in spans if s.label == "submit async tasks")
    assert all(s.start >= submit.start for s in io)
    if wait:
        assert all(_overlaps(waiting[0], s) for s in io)
    else:
        own = [s for s in spans if s.label == "carry on: own work"]
        assert len(own) == 5
        # The main program worked while the tasks waited for IO: concurrency, drawn.
        assert any(_overlaps(o, s) for o in own for s in io)


def test_seed_picture_summary_and_figure() -> None:
    timelines = asyncio.run(tasks.seed_picture())
    assert list(timelines) == [True, False]
    runs = tasks.submit_tasks_summary(timelines)
    at_once, carry_on = runs[True], runs[False]
    own = sum(s.duration for s in timelines[False].spans if s.label == "carry on: own work")
    assert carry_on.own_work_ms == pytest.approx(own * 1e3) and at_once.own_work_ms == 0
    assert at_once.waited_ms > carry_on.waited_ms  # carrying on overlapped part of the wait
    assert 0 <= at_once.first_task_delay_ms < at_once.total_ms
    fig = tasks.plot_submit_tasks(timelines)
    try:
        hatched = {
            tuple(c.get_facecolor()[0]) for ax in fig.axes for c in ax.collections if c.get_hatch()
        }
        # Waiting, and only waiting, is hatched: main's gather and the tasks' IO, two greys.
        assert len(hatched) == 2 and all(r == g == b for r, g, b, _ in hatched)
        for ax in fig.axes:  # the legend shows the hatches too
            handles = ax.get_legend().legend_handles
            assert sum(bool(getattr(h, "get_hatch", lambda: None)()) for h in handles) == 2
    finally:
        plt.close(fig)


def _heartbeats_inside(tl: Timeline, span_label: str) -> tuple[int, str]:
    sleep = next(s for s in tl.spans if s.label == span_label)
    beats = [s for s in tl.spans if s.label == "heartbeat"]
    inside = sum(sleep.start < b.start < sleep.end for b in beats)
    return inside, sleep.lane


def test_a_blocking_call_freezes_the_heartbeat() -> None:
    tl = Timeline()
    gap = asyncio.run(tasks.blocking_demo(tl, "blocking", seconds=0.1))
    inside, lane = _heartbeats_inside(tl, "time.sleep (sync IO)")
    assert inside == 0 and lane == "handler"
    assert gap >= 0.1  # time.sleep(0.1) held the loop's only thread: a lower bound, not a race


@pytest.mark.parametrize("mode", ["to_thread", "run_in_executor"])
def test_a_worker_thread_keeps_the_heartbeat_going(mode: str) -> None:
    tl = Timeline()
    asyncio.run(tasks.blocking_demo(tl, mode, seconds=0.1))
    inside, lane = _heartbeats_inside(tl, "time.sleep (sync IO)")
    assert inside >= 1
    assert lane.startswith("asyncio_")  # the default executor's worker thread


def test_blocking_demo_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="to_thread"):
        asyncio.run(tasks.blocking_demo(Timeline(), "fork", seconds=0.01))


def test_compare_combinators_shows_how_errors_differ() -> None:
    rows = {r["api"]: r for r in combinators.compare_combinators()}
    assert list(rows) == combinators.COMBINATORS
    assert rows["gather"]["what the caller gets"] == "slow, fast, mid"
    assert rows["as_completed"]["what the caller gets"] == "fast, mid, slow"
    assert rows["gather"]["when 'fast' raises"].startswith("raises ValueError")
    assert "still running" in rows["gather"]["other tasks right after"]
    assert rows["gather(return_exceptions=True)"]["when 'fast' raises"] == (
        "returns slow, <ValueError>, mid"
    )
    assert "1 holding an exception" in rows["wait(ALL_COMPLETED)"]["when 'fast' raises"]
    assert rows["wait(FIRST_COMPLETED)"]["what the caller gets"] == "done={fast}, 2 pending"
    assert rows["TaskGroup"]["when 'fast' raises"].startswith("raises ExceptionGroup")
    assert rows["TaskGroup"]["other tasks right after"] == "slow: cancelled, mid: cancelled"


def test_nest_cost_table_verdicts_and_figure() -> None:
    keys = ["sleep(0) switch us", "Future hand-off us", "run_until_complete us"]

    def run(medians: list[float], spread: float) -> dict[str, float]:
        row = dict(zip(keys, medians, strict=True))
        for k, m in zip(keys, medians, strict=True):
            row[f"{k} p10"], row[f"{k} p90"] = m - spread, m + spread
        return row

    plain, patched = run([2.0, 2.0, 2.0], 0.1), run([3.0, 2.1, 1.0], 0.1)
    table = nest_cost.nest_cost_table(plain, patched)
    assert list(table.index) == ["sleep(0) switch", "Future hand-off", "run_until_complete"]
    assert list(table["slowdown"].round(2)) == [1.5, 1.05, 0.5]
    assert table.loc["sleep(0) switch", "slowdown from"] == pytest.approx(2.9 / 2.1)
    assert table.loc["sleep(0) switch", "slowdown to"] == pytest.approx(3.1 / 1.9)
    verdicts = nest_cost.nest_cost_verdicts(table)
    assert [v.operation for v in verdicts] == list(table.index)
    assert [v.verdict for v in verdicts] == ["dearer", "within the spread", "cheaper"]
    assert verdicts[1].low < 1 < verdicts[1].high  # 1.05x, ranges overlap
    ax = nest_cost.plot_nest_cost(table)
    try:
        labels = [c.get_label() for c in ax.containers if type(c).__name__ == "BarContainer"]
        assert labels == ["plain asyncio", "nest-asyncio2"]
        assert "p10–p90" in ax.get_xlabel()
    finally:
        plt.close(ax.figure)


def test_idle_loop_demo_goes_round_a_few_times() -> None:
    tl = Timeline()
    result = loops.idle_loop_demo(tl, delays=(0.03, 0.01, 0.02))
    assert result["results"] == [0.03, 0.01, 0.02]
    assert result["wall_s"] >= 0.03
    assert result["iterations"] <= 20  # a polling loop would go round thousands of times
    assert sorted(s.lane for s in tl.spans) == ["sleeper 0.01", "sleeper 0.02", "sleeper 0.03"]


def test_busy_wait_polls_until_the_deadline() -> None:
    result = loops.busy_wait(0.01)
    assert result["wall_s"] >= 0.01
    assert result["iterations"] >= 1 and result["cpu_s"] >= 0


def test_format_nest_cost_shows_each_median_with_its_spread() -> None:
    keys = ["sleep(0) switch us", "Future hand-off us", "run_until_complete us"]
    plain = (
        {k: 2.0 for k in keys} | {f"{k} p10": 1.5 for k in keys} | {f"{k} p90": 2.5 for k in keys}
    )
    patched = (
        {k: 3.0 for k in keys} | {f"{k} p10": 2.8 for k in keys} | {f"{k} p90": 3.3 for k in keys}
    )
    lines = nest_cost.format_nest_cost(nest_cost.nest_cost_table(plain, patched)).splitlines()
    assert len(lines) == 4
    assert "2 (1.5–2.5)" in lines[1] and "3 (2.8–3.3)" in lines[1] and lines[1].endswith("1.50×")


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop does not exist on Windows")
def test_uvloop_is_installed_with_the_course_so_chapter_06_shows_its_rows() -> None:
    # A dependency in pyproject.toml (not an extra): chapters 03 and 06 promise its rows.
    assert "uvloop" in loops.LOOPS
    from concurrency_lab import switching

    assert any("uvloop" in v.name for v in switching.VARIANTS)
