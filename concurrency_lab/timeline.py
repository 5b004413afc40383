"""Record who ran when — threads, processes and asyncio tasks — and draw it as a Gantt chart.

Usage::

    tl = Timeline()
    with tl.span("download"):          # one bar in the lane of whoever runs this
        ...
    tl.mark("submit")                  # an instant, drawn as a diamond

    @tl.traced("fetch")                # works on plain and on async functions
    async def fetch(): ...

    await tl.steps(coro, "a")          # one bar per *run slice* of a coroutine, between awaits
    tl.plot(title="...", hatches={"waits": "///"})   # returns the matplotlib Axes

The lane is picked automatically: the current asyncio task's name inside a task, else the
thread's name; in a child process, the process's name. A notebook cell itself runs inside an
IPython task; it counts as ``MainThread``, which is what a learner means by "the main program".

Spans recorded in another process come back with :meth:`Timeline.export` (a picklable list the
worker returns) and :meth:`Timeline.extend`. Timestamps are absolute nanoseconds of one clock
that all processes share: ``perf_counter_ns`` (high resolution) shifted once per process onto
the wall clock ``time_ns``. (``perf_counter`` alone is only guaranteed to be comparable within
one process.)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import multiprocessing
import threading
import time
import types
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["RawSpan", "Span", "Timeline", "current_lane", "now_ns"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# One shift per process maps the monotonic high-resolution clock onto wall-clock nanoseconds.
_SHIFT_NS = time.time_ns() - time.perf_counter_ns()
_HOST_MODULES = ("ipykernel", "IPython")


def now_ns() -> int:
    """Nanoseconds on a clock comparable across the processes of one machine."""
    return time.perf_counter_ns() + _SHIFT_NS


class RawSpan(NamedTuple):
    """A span as recorded: absolute :func:`now_ns` stamps (what crosses process borders)."""

    lane: str
    label: str
    start_ns: int
    end_ns: int


class Span(NamedTuple):
    """A span as shown: seconds since the timeline's origin."""

    lane: str
    label: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def _task_lane() -> str | None:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop in this thread
        return None
    if task is None:
        return None
    frame = getattr(task.get_coro(), "cr_frame", None)
    module = frame.f_globals.get("__name__", "") if frame is not None else ""
    if module.split(".")[0] in _HOST_MODULES:
        return None  # Jupyter's own cell-running task: the learner's "main program"
    return task.get_name()


def current_lane() -> str:
    """Name of whoever runs now: asyncio task, else thread (prefixed by a child process)."""
    lane = _task_lane()
    if lane is not None:
        return lane
    thread = threading.current_thread()
    process = multiprocessing.current_process()
    if multiprocessing.parent_process() is None:
        return thread.name
    if thread is threading.main_thread():
        return process.name
    return f"{process.name}/{thread.name}"


class Timeline:
    """A thread-safe recorder of labelled time spans, grouped in lanes."""

    def __init__(self) -> None:
        self.origin_ns = now_ns()
        self._raw: list[RawSpan] = []
        self._lock = threading.Lock()

    # -- recording --------------------------------------------------------------------------
    def record(self, label: str, start_ns: int, end_ns: int, lane: str | None = None) -> None:
        """Add one span measured elsewhere (stamps from :func:`now_ns`)."""
        with self._lock:
            self._raw.append(RawSpan(lane or current_lane(), label, start_ns, end_ns))

    @contextmanager
    def span(self, label: str, lane: str | None = None) -> Iterator[None]:
        """Record the time spent inside the ``with`` block (also when it raises)."""
        lane = lane or current_lane()
        start = now_ns()
        try:
            yield
        finally:
            self.record(label, start, now_ns(), lane)

    def mark(self, label: str, lane: str | None = None) -> None:
        """Record an instant (a zero-length span), e.g. the moment tasks are submitted."""
        stamp = now_ns()
        self.record(label, stamp, stamp, lane)

    def traced(self, label: str | None = None, *, steps: bool = False) -> Callable[[F], F]:
        """Decorator: record each call of a sync or async function as a span.

        For ``async def`` functions the span covers the whole call, waiting included; with
        ``steps=True`` it records one span per run slice instead (see :meth:`steps`).
        """

        def decorate(fn: F) -> F:
            name = label or fn.__name__
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    if steps:
                        return await self.steps(fn(*args, **kwargs), name)
                    with self.span(name):
                        return await fn(*args, **kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.span(name):
                    return fn(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate

    async def steps(self, awaitable: Awaitable[T], label: str) -> T:
        """Await ``awaitable``, recording one span each time it actually runs.

        A coroutine runs in slices: from one suspension (an ``await`` that really waits) to the
        next. The slices show who held the event loop when, which a single span cannot.
        ``steps`` is itself a coroutine, so ``asyncio.create_task(tl.steps(coro, "a"))`` works.
        """
        return await self._steps(awaitable.__await__(), label)

    @types.coroutine
    def _steps(self, it: Generator[Any, Any, T], label: str) -> Generator[Any, Any, T]:
        lane = current_lane()
        send: Any = None
        error: BaseException | None = None
        while True:
            start = now_ns()
            try:
                yielded = it.throw(error) if error is not None else it.send(send)
            except StopIteration as stop:
                self.record(label, start, now_ns(), lane)
                return stop.value
            except BaseException:
                self.record(label, start, now_ns(), lane)
                raise
            self.record(label, start, now_ns(), lane)
            try:
                send, error = (yield yielded), None
            except GeneratorExit:
                it.close()
                raise
            except BaseException as exc:  # e.g. CancelledError: pass it on to the coroutine
                send, error = None, exc

    # -- crossing processes -----------------------------------------------------------------
    def export(self) -> list[RawSpan]:
        """The raw spans, picklable: return them from a worker process."""
        with self._lock:
            return list(self._raw)

    def extend(self, raw: Iterable[RawSpan | tuple[str, str, int, int]]) -> None:
        """Merge spans recorded elsewhere (e.g. by a worker process's own Timeline)."""
        with self._lock:
            self._raw.extend(RawSpan(*r) for r in raw)

    def clear(self) -> None:
        with self._lock:
            self._raw.clear()
            self.origin_ns = now_ns()

    # -- reading ----------------------------------------------------------------------------
    @property
    def spans(self) -> list[Span]:
        """All spans, in seconds since the origin, ordered by start."""
        with self._lock:
            raw = sorted(self._raw, key=lambda r: (r.start_ns, r.end_ns))
        o = self.origin_ns
        return [Span(r.lane, r.label, (r.start_ns - o) / 1e9, (r.end_ns - o) / 1e9) for r in raw]

    @property
    def lanes(self) -> list[str]:
        """Lanes in order of first appearance."""
        return list(dict.fromkeys(s.lane for s in self.spans))

    def to_frame(self) -> pd.DataFrame:
        """The spans as a pandas DataFrame (lane, label, start, end, duration; seconds)."""
        import pandas as pd

        frame = pd.DataFrame(self.spans, columns=list(Span._fields))
        frame["duration"] = frame["end"] - frame["start"]
        return frame

    def busy(self, lane: str) -> float:
        """Seconds covered by the spans of ``lane`` (overlaps counted once)."""
        total, reach = 0.0, float("-inf")
        for s in (s for s in self.spans if s.lane == lane):
            if s.end > reach:
                total += s.end - max(s.start, reach)
                reach = s.end
        return total

    def most_at_once(self, label: str) -> int:
        """The largest number of ``label`` spans in progress at one instant (in any lanes).

        For "holds lock" it says how many threads were inside the lock together: 1 if the
        lock did its job.
        """
        edges = sorted(
            (t, step)
            for s in self.spans
            if s.label == label and s.end > s.start
            for t, step in ((s.start, 1), (s.end, -1))
        )  # at equal times, -1 sorts first: a span that ends as another starts is not overlap
        peak = running = 0
        for _, step in edges:
            running += step
            peak = max(peak, running)
        return peak

    # -- drawing ----------------------------------------------------------------------------
    def plot(
        self,
        ax: Axes | None = None,
        title: str = "Who ran when",
        *,
        lanes: list[str] | None = None,
        colors: dict[str, str] | None = None,
        legend: bool = True,
        ylabel: str = "lane (thread / process / task)",
        hatches: dict[str, str] | None = None,
    ) -> Axes:
        """Draw the spans as a Gantt chart (one row per lane, time in ms) and return the Axes.

        ``colors`` and ``hatches`` map span labels to a face colour and a matplotlib hatch
        (``"///"``, ``"..."``). A hatched label is drawn pale grey unless ``colors`` names its
        colour: one style per meaning, so that waiting reads as waiting in black and white too.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(9, 1.3 + 0.45 * max(1, len(self.lanes))))
        spans = self.spans
        order = lanes or self.lanes
        labels = list(dict.fromkeys(s.label for s in spans))
        palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        hatches = hatches or {}
        colors = {
            lab: "0.85" if lab in hatches else palette[i % len(palette)]
            for i, lab in enumerate(labels)
        } | (colors or {})
        row = {lane: i for i, lane in enumerate(order)}
        seen: set[str] = set()
        open_ends: dict[str, list[float]] = {lane: [] for lane in order}
        for s in sorted(spans, key=lambda s: (s.start, -s.end)):
            if s.lane not in row:
                continue
            y = row[s.lane]
            name = None if s.label in seen else s.label
            seen.add(s.label)
            # A span inside another one of the same lane is drawn thinner, on top of it.
            stack = open_ends[s.lane]
            while stack and stack[-1] <= s.start:
                stack.pop()
            height = max(0.7 - 0.22 * len(stack), 0.2)
            if s.end > s.start:
                stack.append(s.end)
                bars = ax.broken_barh(
                    [(s.start * 1e3, (s.end - s.start) * 1e3)],
                    (y - height / 2, height),
                    facecolors=colors[s.label],
                    linewidth=0,
                    label=name,
                )
                if hatch := hatches.get(s.label):
                    bars.set_hatch(hatch)
                    bars.set_edgecolor("0.4")  # the hatch's colour; the outline stays off
            else:
                ax.plot(s.start * 1e3, y, "D", color=colors[s.label], ms=7, mec="k", label=name)
        ax.set_yticks(range(len(order)), order)
        ax.set_ylim(len(order) - 0.5, -0.5)
        ax.set_xlabel("time since start (ms)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="x", alpha=0.3)
        if legend and 0 < len(labels) <= 12:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False)
        return ax

    def __len__(self) -> int:
        return len(self._raw)

    def __bool__(self) -> bool:
        return True  # an empty timeline is still a timeline: `if tl:` must not skip it

    def __repr__(self) -> str:
        return f"<Timeline {len(self)} spans in {len(self.lanes)} lanes>"
