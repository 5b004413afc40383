"""The timeline tracer: lanes for threads, processes and tasks; spans; plotting."""

from __future__ import annotations

import asyncio
import itertools
import threading
from concurrent.futures import ProcessPoolExecutor

import matplotlib
import pytest

from concurrency_lab.timeline import RawSpan, Span, Timeline, current_lane, now_ns

matplotlib.use("Agg")


def _child_work(label: str) -> list[RawSpan]:
    tl = Timeline()
    with tl.span(label):
        sum(range(10_000))
    return tl.export()


def test_span_records_lane_label_and_order() -> None:
    tl = Timeline()
    with tl.span("first"):
        pass
    tl.mark("now")
    (a, b) = tl.spans
    assert (a.lane, a.label) == ("MainThread", "first")
    assert 0 <= a.start <= a.end <= b.start == b.end
    assert isinstance(a, Span) and a.duration == a.end - a.start


def test_span_is_recorded_when_the_block_raises() -> None:
    tl = Timeline()
    with pytest.raises(ZeroDivisionError), tl.span("boom"):
        1 / 0  # noqa: B018
    assert [s.label for s in tl.spans] == ["boom"]


def test_threads_get_their_own_lanes() -> None:
    tl = Timeline()

    def work() -> None:
        with tl.span("work"):
            pass

    threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(tl.lanes) == ["worker-0", "worker-1", "worker-2"]


def test_tasks_get_lanes_named_after_the_task() -> None:
    tl = Timeline()

    @tl.traced("job")
    async def job(delay: float) -> float:
        await asyncio.sleep(delay)
        return delay

    async def main() -> list[float]:
        a = asyncio.create_task(job(0.01), name="alpha")
        b = asyncio.create_task(job(0.0), name="beta")
        return list(await asyncio.gather(a, b))

    assert asyncio.run(main()) == [0.01, 0.0]
    assert {s.lane for s in tl.spans} == {"alpha", "beta"}
    alpha = next(s for s in tl.spans if s.lane == "alpha")
    assert alpha.duration >= 0.009  # the span covers the wait too


def test_outside_a_task_the_lane_is_the_thread() -> None:
    assert current_lane() == threading.current_thread().name


def test_steps_records_one_span_per_run_slice() -> None:
    tl = Timeline()
    order: list[str] = []

    async def worker(name: str) -> str:
        for i in range(3):
            order.append(f"{name}{i}")
            await asyncio.sleep(0)
        return name

    async def main() -> list[str]:
        a = asyncio.create_task(tl.steps(worker("a"), "a"), name="A")
        b = asyncio.create_task(tl.steps(worker("b"), "b"), name="B")
        return list(await asyncio.gather(a, b))

    assert asyncio.run(main()) == ["a", "b"]
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]
    a_spans = [s for s in tl.spans if s.lane == "A"]
    assert len(a_spans) == 4  # three slices end in sleep(0), the fourth returns
    # Slices of different tasks never overlap: one loop runs one coroutine at a time.
    spans = tl.spans
    assert all(x.end <= y.start for x, y in itertools.pairwise(spans))


def test_steps_passes_exceptions_and_cancellation_through() -> None:
    tl = Timeline()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("inner")

    async def sleeper() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        with pytest.raises(ValueError, match="inner"):
            await tl.steps(fails(), "fails")
        task = asyncio.create_task(tl.steps(sleeper(), "sleeper"))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert {s.label for s in tl.spans} == {"fails", "sleeper"}


def test_traced_sync_function_keeps_name_and_result() -> None:
    tl = Timeline()

    @tl.traced()
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5 and add.__name__ == "add"
    assert [s.label for s in tl.spans] == ["add"]


def test_spans_from_child_processes_line_up_with_the_parent() -> None:
    tl = Timeline()
    before = now_ns()
    with ProcessPoolExecutor(2) as pool:
        for raw in pool.map(_child_work, ["p0", "p1"]):
            tl.extend(raw)
    after = now_ns()
    child = [s for s in tl.spans if s.label in {"p0", "p1"}]
    assert len(child) == 2
    assert all(lane.startswith(("Fork", "Spawn", "Forkserver")) for lane in tl.lanes)
    # Stamps from the children fall inside the parent's window: one clock for all processes.
    lo, hi = (before - tl.origin_ns) / 1e9, (after - tl.origin_ns) / 1e9
    assert all(lo <= s.start <= s.end <= hi for s in child)


def test_frame_busy_and_plot() -> None:
    tl = Timeline()
    tl.record("a", tl.origin_ns, tl.origin_ns + 2_000_000, lane="L")
    tl.record("b", tl.origin_ns + 1_000_000, tl.origin_ns + 3_000_000, lane="L")
    tl.mark("m", lane="M")
    assert tl.busy("L") == pytest.approx(0.003)
    frame = tl.to_frame()
    assert list(frame.columns) == ["lane", "label", "start", "end", "duration"]
    ax = tl.plot(title="test chart")
    assert ax.get_title() == "test chart"
    assert "ms" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["L", "M"]
    tl.clear()
    assert len(tl) == 0


def test_plot_hatches_the_labels_it_is_given_and_keeps_colours() -> None:
    tl = Timeline()
    o = tl.origin_ns
    tl.record("work", o, o + 1_000_000, lane="L")
    tl.record("waits", o + 1_000_000, o + 2_000_000, lane="L")
    tl.record("also waits", o + 2_000_000, o + 3_000_000, lane="L")
    ax = tl.plot(hatches={"waits": "///", "also waits": "..."}, colors={"also waits": "pink"})
    bars = {c.get_label(): c for c in ax.collections}
    assert bars["work"].get_hatch() is None
    assert bars["waits"].get_hatch() == "///"
    assert tuple(bars["waits"].get_facecolor()[0][:3]) == pytest.approx((0.85, 0.85, 0.85))
    assert bars["also waits"].get_hatch() == "..."
    assert tuple(bars["also waits"].get_facecolor()[0][:3]) == pytest.approx(
        matplotlib.colors.to_rgb("pink")
    )


def test_a_task_run_by_jupyter_itself_counts_as_the_main_thread() -> None:
    # A notebook cell runs inside an IPython/ipykernel task; spans recorded there belong to
    # the learner's main program, not to a lane called "Task-7".
    tl = Timeline()
    host: dict[str, object] = {"__name__": "ipykernel.kernelbase", "tl": tl}
    exec("async def run_cell():\n    with tl.span('cell'):\n        pass\n", host)

    async def main() -> None:
        await asyncio.create_task(host["run_cell"](), name="Task-7")  # type: ignore[operator]

    asyncio.run(main())
    assert [s.lane for s in tl.spans] == [threading.current_thread().name]


def test_most_at_once_counts_overlap_not_touching_ends() -> None:
    tl = Timeline()
    o, ms = tl.origin_ns, 1_000_000
    tl.record("holds", o, o + 2 * ms, lane="a")
    tl.record("holds", o + 2 * ms, o + 4 * ms, lane="b")  # starts as the first ends
    assert tl.most_at_once("holds") == 1
    tl.record("holds", o + 1 * ms, o + 3 * ms, lane="c")
    assert tl.most_at_once("holds") == 2
    assert tl.most_at_once("nothing") == 0
