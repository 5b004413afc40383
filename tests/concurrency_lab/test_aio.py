"""aio: the chapter 04–06 demos produce the behaviour the chapters describe (not timings)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from concurrency_lab import aio
from concurrency_lab.timeline import Timeline


@pytest.mark.parametrize("loop", aio.LOOPS)
@pytest.mark.parametrize("workload", list(aio.WORKLOADS))
def test_the_same_workload_runs_on_every_loop(loop: str, workload: str) -> None:
    seconds = aio.switch_cost(loop, workload, 200)
    assert 0 < seconds < 0.01


def test_unknown_loop_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="trio"):
        aio.switch_cost("trio", "sleep(0) switch", 10)


def test_compare_loops_rows_and_ratios() -> None:
    rows = aio.compare_loops(n=200, repeats=2)
    assert {(r["workload"], r["loop"]) for r in rows} == {
        (w, lp) for w in aio.WORKLOADS for lp in aio.LOOPS
    }
    for r in rows:
        assert r["p10_us"] <= r["median_us"] <= r["p90_us"]
        if r["loop"] == "asyncio":
            assert r["vs_asyncio"] == pytest.approx(1.0)


def test_step_costs_names_every_step() -> None:
    costs = aio.step_costs(n=2000, repeats=2)
    assert list(costs) == [
        "function call",
        "generator send()",
        "await a coroutine",
        "asyncio sleep(0) switch",
        "miniloop sleep(0) switch",
    ]
    assert all(v > 0 for v in costs.values())


def test_step_costs_runs_inside_a_running_loop() -> None:
    async def main() -> dict[str, float]:
        return aio.step_costs(n=1000, repeats=2)  # as a notebook cell would call it

    assert len(asyncio.run(main())) == 5


def test_old_style_report_shows_what_changed() -> None:
    rows = {r["case"]: r for r in aio.old_style_report()}
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


def test_nest_asyncio_cost_compares_plain_and_patched_interpreters() -> None:
    plain, patched = aio.nest_asyncio_cost(n=500, repeats=2)
    assert plain["patched"] is False and patched["patched"] is True
    assert plain["nested call"].startswith("RuntimeError")
    assert patched["nested call"] == "nested run_until_complete worked"
    if sys.version_info < (3, 14):
        assert plain["asyncio.Task is"].startswith("C")
        assert patched["asyncio.Task is"].startswith("pure Python")
    for key in ("sleep(0) switch us", "Future hand-off us", "run_until_complete us"):
        assert plain[key] > 0 and patched[key] > 0
    # The caller's own asyncio is untouched: the patch lived in the subprocess only.
    assert not hasattr(asyncio, "_nest_patched")


def _overlaps(a: object, b: object) -> bool:
    return a.start < b.end and b.start < a.end  # type: ignore[attr-defined]


@pytest.mark.parametrize("wait", [True, False])
def test_submit_tasks_draws_the_seed_picture(wait: bool) -> None:
    tl = Timeline()

    async def main() -> list[float]:
        return await aio.submit_tasks(tl, wait=wait, waits=(0.06, 0.03, 0.045))

    assert asyncio.run(main()) == [0.06, 0.03, 0.045]
    spans = tl.spans
    io = [s for s in spans if s.label == "wait for IO"]
    assert sorted(s.lane for s in io) == ["task 1", "task 2", "task 3"]
    submit = next(s for s in spans if s.label == "submit async tasks")
    assert all(s.start >= submit.start for s in io)
    if wait:
        waiting = next(s for s in spans if s.label == "waits: await gather(...)")
        assert all(_overlaps(waiting, s) for s in io)
        assert waiting.end >= max(s.end for s in io)
    else:
        own = [s for s in spans if s.label == "carry on: own work"]
        assert len(own) == 5
        # The main program worked while the tasks waited for IO: concurrency, drawn.
        assert any(_overlaps(o, s) for o in own for s in io)


def _heartbeats_inside(tl: Timeline, span_label: str) -> tuple[int, str]:
    sleep = next(s for s in tl.spans if s.label == span_label)
    beats = [s for s in tl.spans if s.label == "heartbeat"]
    inside = sum(sleep.start < b.start < sleep.end for b in beats)
    return inside, sleep.lane


def test_a_blocking_call_freezes_the_heartbeat() -> None:
    tl = Timeline()
    gap = asyncio.run(aio.blocking_demo(tl, "blocking", seconds=0.1))
    inside, lane = _heartbeats_inside(tl, "time.sleep (sync IO)")
    assert inside == 0 and lane == "handler"
    assert gap >= 0.1  # time.sleep(0.1) held the loop's only thread: a lower bound, not a race


@pytest.mark.parametrize("mode", ["to_thread", "run_in_executor"])
def test_a_worker_thread_keeps_the_heartbeat_going(mode: str) -> None:
    tl = Timeline()
    asyncio.run(aio.blocking_demo(tl, mode, seconds=0.1))
    inside, lane = _heartbeats_inside(tl, "time.sleep (sync IO)")
    assert inside >= 1
    assert lane.startswith("asyncio_")  # the default executor's worker thread


def test_blocking_demo_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="to_thread"):
        asyncio.run(aio.blocking_demo(Timeline(), "fork", seconds=0.01))


def test_compare_combinators_shows_how_errors_differ() -> None:
    rows = {r["api"]: r for r in aio.compare_combinators()}
    assert list(rows) == aio.COMBINATORS
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
