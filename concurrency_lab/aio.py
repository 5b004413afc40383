"""asyncio demos for chapters 04–06: step costs, loop comparisons, old-style runs, nest-asyncio2.

Timings run in a **fresh interpreter** by default (``python -m concurrency_lab.aio steps`` /
``loop-samples`` / ``nest-cost`` print JSON): inside a notebook the kernel's running loop forces
asyncio and uvloop into a helper thread (see :func:`concurrency_lab._aio.run_sync`) while miniloop
runs in the main thread, and the kernel's own threads share the GIL, so an in-kernel comparison
is not like for like. Timings are medians of repeats with the garbage collector paused, as
``timeit`` does (see :mod:`concurrency_lab.stats`); they are noisy on a shared machine, so
compare ratios measured side by side in one run, not absolute numbers across runs.

The other demos (timelines, combinators) run their own event loop, in a helper thread when the
caller already runs one, so chapters call them synchronously or ``await`` them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import itertools
import json
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from concurrency_lab import miniloop
from concurrency_lab._aio import run_sync
from concurrency_lab.stats import summarize

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from concurrency_lab.timeline import Timeline

__all__ = [
    "COMBINATORS",
    "LOOPS",
    "LOOP_COLORS",
    "WORKLOADS",
    "blocking_demo",
    "blocking_io",
    "busy_wait",
    "compare_combinators",
    "compare_loops",
    "handoff",
    "hold_cpu",
    "idle_loop_demo",
    "nest_asyncio_cost",
    "nest_cost_table",
    "old_style_report",
    "plot_loop_compare",
    "plot_nest_cost",
    "plot_step_costs",
    "plot_submit_tasks",
    "rank_loops",
    "seed_picture",
    "step_costs",
    "submit_tasks",
    "submit_tasks_summary",
    "switch_cost",
    "traced_ab",
    "yield_pingpong",
]

#: The event loops :func:`switch_cost` knows; uvloop only where it is installed.
LOOPS = ["miniloop", "asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])
#: One colour per loop, the same in every figure of chapters 04 and 06.
LOOP_COLORS = {"miniloop": "tab:green", "asyncio": "tab:orange", "uvloop": "tab:purple"}

GetLoop = Callable[[], Any]


# -- timing helpers --------------------------------------------------------------------------
@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Collect first, then keep the collector out of the timed region (as ``timeit`` does)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fresh(command: str, *options: str, timeout: float = 600) -> Any:
    """Run ``python -m concurrency_lab.aio command *options`` and return the JSON it prints."""
    proc = subprocess.run(
        [sys.executable, "-m", "concurrency_lab.aio", command, *options],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode:
        raise RuntimeError(f"`python -m concurrency_lab.aio {command}` failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


# -- workloads: the same coroutine code runs on every loop ---------------------------------
async def yield_pingpong(n: int, get_loop: GetLoop) -> float:
    """Two Tasks each ``await asyncio.sleep(0)`` n times; seconds per switch.

    ``asyncio.sleep(0)`` is a bare ``yield``, so this exact code runs on miniloop too.
    """

    async def player() -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    loop = get_loop()
    started = time.perf_counter()
    first, second = loop.create_task(player()), loop.create_task(player())
    await first
    await second
    return (time.perf_counter() - started) / (2 * n)


async def handoff(n: int, get_loop: GetLoop) -> float:
    """Two Tasks wake each other through fresh Futures n times each; seconds per switch.

    A switch here is the full path of real IO code: ``set_result`` schedules the waiter's
    wake-up callback, the loop runs it, the waiter's coroutine resumes.
    """
    loop = get_loop()
    inbox = {"ping": loop.create_future(), "pong": loop.create_future()}

    async def player(me: str, other: str) -> None:
        for _ in range(n):
            await inbox[me]
            inbox[me] = loop.create_future()
            inbox[other].set_result(None)

    started = time.perf_counter()
    tasks = [loop.create_task(player("ping", "pong")), loop.create_task(player("pong", "ping"))]
    inbox["ping"].set_result(None)  # ping serves first
    for task in tasks:
        await task
    return (time.perf_counter() - started) / (2 * n)


WORKLOADS: dict[str, Callable[[int, GetLoop], Coroutine[Any, Any, float]]] = {
    "sleep(0) switch": yield_pingpong,
    "Future hand-off": handoff,
}


def switch_cost(loop: str, workload: str, n: int) -> float:
    """Seconds per switch of ``workload`` (a key of ``WORKLOADS``) on ``loop`` (in ``LOOPS``).

    Measured in the calling interpreter; asyncio and uvloop go to a helper thread when this
    thread already runs a loop (as in a notebook), so compare loops with :func:`compare_loops`.
    """
    body = WORKLOADS[workload]
    if loop not in LOOPS:
        raise ValueError(f"unknown or uninstalled loop {loop!r}; choose from {LOOPS}")
    with _gc_paused():
        if loop == "miniloop":
            return miniloop.run(body(n, miniloop.get_running_loop))
        factory = None
        if loop == "uvloop":
            import uvloop

            factory = uvloop.new_event_loop
        return run_sync(lambda: body(n, asyncio.get_running_loop), loop_factory=factory)


def _loop_samples(n: int, rounds: int) -> list[tuple[str, str, float]]:
    """``rounds`` interleaved rounds of every workload on every loop: (workload, loop, µs)."""
    for workload, loop in itertools.product(WORKLOADS, LOOPS):
        switch_cost(loop, workload, min(n, 1000))  # warm up: imports, caches, specialisation
    return [
        (workload, loop, switch_cost(loop, workload, n) * 1e6)
        for _ in range(rounds)
        for workload in WORKLOADS
        for loop in LOOPS
    ]


def compare_loops(
    n: int = 20_000, repeats: int = 5, progress: bool = False, fresh: bool = True
) -> list[dict]:
    """Every workload on every loop; rows with median, p10 and p90 in µs and ratios.

    With ``fresh`` (the default) each repeat runs in a new interpreter, where every loop runs
    in the main thread with nothing else around; repeats are interleaved so that a burst of
    load from another program hits every loop alike. ``fresh=False`` measures in this process.
    """
    with warnings.catch_warnings():  # without ipywidgets tqdm.auto falls back to text: fine
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

    samples: dict[tuple[str, str], list[float]] = {(w, lp): [] for w in WORKLOADS for lp in LOOPS}
    for _ in tqdm(range(repeats), desc="loops (fresh interpreters)", disable=not progress):
        if fresh:
            measured = _fresh("loop-samples", f"--n={n}", "--rounds=1")
        else:
            measured = _loop_samples(n, 1)
        for workload, loop, us in measured:
            samples[workload, loop].append(us)
    rows = []
    for (workload, loop), values in samples.items():
        s = summarize(values)
        base = summarize(samples[workload, "asyncio"]).median
        rows.append(
            {
                "workload": workload,
                "loop": loop,
                "median_us": s.median,
                "p10_us": s.p10,
                "p90_us": s.p90,
                "cv": s.cv,
                "vs_asyncio": s.median / base,
                "n": n,
                "repeats": repeats,
            }
        )
    return rows


def rank_loops(rows: list[dict]) -> list[str]:
    """One line per workload: the loops fastest first, with medians in µs.

    Neighbours are joined by ``<`` when their p10–p90 ranges do not overlap (the difference
    is larger than the run-to-run noise) and by ``≈`` when they do (too close to call).
    """
    lines = []
    for workload in dict.fromkeys(r["workload"] for r in rows):
        ranked = sorted(
            (r for r in rows if r["workload"] == workload), key=lambda r: r["median_us"]
        )
        text = f"{ranked[0]['loop']} {ranked[0]['median_us']:.2f}"
        for faster, slower in itertools.pairwise(ranked):
            sign = "<" if faster["p90_us"] < slower["p10_us"] else "≈"
            text += f" {sign} {slower['loop']} {slower['median_us']:.2f}"
        lines.append(f"{workload}: {text} µs")
    return lines


def plot_loop_compare(rows: list[dict], ax: Axes | None = None) -> Axes:
    """Grouped bars of :func:`compare_loops` rows: medians, whiskers from p10 to p90."""
    import matplotlib.pyplot as plt
    import numpy as np

    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    loops = [lp for lp in LOOP_COLORS if any(r["loop"] == lp for r in rows)]
    by = {(r["workload"], r["loop"]): r for r in rows}
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(loops)
    for i, loop in enumerate(loops):
        cells = [by[w, loop] for w in workloads]
        medians = [r["median_us"] for r in cells]
        spread = [
            [r["median_us"] - r["p10_us"] for r in cells],
            [r["p90_us"] - r["median_us"] for r in cells],
        ]
        x = np.arange(len(workloads)) + (i - (len(loops) - 1) / 2) * width
        bars = ax.bar(
            x, medians, width, yerr=spread, capsize=3, color=LOOP_COLORS[loop], label=loop
        )
        ax.bar_label(bars, fmt="%.2f", fontsize="small", padding=2)
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylim(top=max(r["p90_us"] for r in rows) * 1.15)
    ax.set_xlabel("workload")
    ax.set_ylabel("time per switch (µs)")
    repeats = rows[0]["repeats"]
    ax.set_title(f"Switch cost by event loop: median, whiskers p10–p90 of {repeats} runs")
    ax.legend(title="loop", fontsize="small", loc="best")
    return ax


# -- chapter 04: the seed's a/b example, traced ----------------------------------------------
async def traced_ab(tl: Timeline, cpu: float = 0.005) -> None:
    """The seed's ``gather(a(), b())``, each stretch a coroutine holds the loop a span of ``tl``.

    Each stretch also holds the CPU for ``cpu`` seconds, so that the bars are wide enough to see.
    """

    async def a() -> None:
        with tl.span("print('Suspending a')"):
            print("Suspending a")
            hold_cpu(cpu)
        await asyncio.sleep(0)
        with tl.span("print('Resuming a')"):
            print("Resuming a")
            hold_cpu(cpu)

    async def b() -> None:
        with tl.span("print('In b')"):
            print("In b")
            hold_cpu(cpu)

    await asyncio.gather(asyncio.create_task(a(), name="a"), asyncio.create_task(b(), name="b"))


# -- chapter 04: what one step costs -------------------------------------------------------
def _per_call(fn: Callable[[int], float], n: int, repeats: int) -> float:
    """Median µs per step over ``repeats`` runs of ``fn(n)``, after one warm-up run."""
    fn(min(n, 1000))
    with _gc_paused():
        return summarize([fn(n) for _ in range(repeats)]).median * 1e6


def _time_call(n: int) -> float:
    def f() -> None:
        return None

    started = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - started) / n


def _time_send(n: int) -> float:
    def gen():  # a bare generator, as in chapter 04
        while True:
            yield

    g = gen()
    next(g)
    started = time.perf_counter()
    for _ in range(n):
        g.send(None)
    return (time.perf_counter() - started) / n


def _time_await_coroutine(n: int) -> float:
    async def nothing() -> None:
        return None

    async def body() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await nothing()
        return (time.perf_counter() - started) / n

    coro = body()
    try:
        coro.send(None)  # no loop at all: awaiting a coroutine that never suspends is a call
    except StopIteration as done:
        return done.value
    raise RuntimeError("body() suspended: it should never reach a loop")


def step_costs(n: int = 100_000, repeats: int = 5, fresh: bool = True) -> dict[str, float]:
    """µs per step: a call, a generator ``send``, ``await`` of a coroutine, loop switches.

    With ``fresh`` (the default) everything is measured in a new interpreter, where both loops
    run in the main thread; ``fresh=False`` measures in this process.
    """
    if fresh:
        return _fresh("steps", f"--n={n}", f"--repeats={repeats}")
    switches = max(n // 10, 1000)
    return {
        "function call": _per_call(_time_call, n, repeats),
        "generator send()": _per_call(_time_send, n, repeats),
        "await a coroutine": _per_call(_time_await_coroutine, n, repeats),
        "asyncio sleep(0) switch": _per_call(
            lambda k: switch_cost("asyncio", "sleep(0) switch", k), switches, repeats
        ),
        "miniloop sleep(0) switch": _per_call(
            lambda k: switch_cost("miniloop", "sleep(0) switch", k), switches, repeats
        ),
    }


def plot_step_costs(costs: dict[str, float], ax: Axes | None = None) -> Axes:
    """Horizontal bars of :func:`step_costs` on a log scale, the two ratios in the title."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 3))
    names = list(costs)
    colors = ["0.6", "0.6", "tab:blue", LOOP_COLORS["asyncio"], LOOP_COLORS["miniloop"]]
    bars = ax.barh(names, list(costs.values()), color=colors[: len(names)])
    ax.bar_label(bars, fmt="%.3f µs", padding=3)
    ax.set_xscale("log")
    ax.set_xlim(right=max(costs.values()) * 8)
    ax.invert_yaxis()
    ax.set_xlabel("time per step (µs, log scale)")
    ax.set_ylabel("kind of step")
    call = costs["await a coroutine"] / costs["function call"]
    switch = costs["asyncio sleep(0) switch"] / costs["await a coroutine"]
    ax.set_title(
        f"An await that does not suspend: {call:.1f}× a call; an asyncio switch: {switch:.0f}× that"
    )
    return ax


# -- chapter 04: old-style loop management, each case in a fresh interpreter ---------------
_OLD_STYLE = {
    "seed: get_event_loop().run_until_complete, once": """
loop = asyncio.get_event_loop()
print(loop.run_until_complete(main()))
loop.close()
""",
    "seed pattern run twice (the loop was closed)": """
for _ in range(2):
    loop = asyncio.get_event_loop()
    print(loop.run_until_complete(main()))
    loop.close()
""",
    "get_event_loop() after asyncio.run()": """
print(asyncio.run(main()))
print(asyncio.get_event_loop().run_until_complete(main()))
""",
    "get_event_loop() in a worker thread": """
import threading
def worker():
    try:
        print(asyncio.get_event_loop().run_until_complete(main()))
    except RuntimeError as e:
        print(f"RuntimeError: {e}")
t = threading.Thread(target=worker); t.start(); t.join()
""",
    "asyncio.run(), twice": """
print(asyncio.run(main()))
print(asyncio.run(main()))
""",
    "asyncio.Runner (3.11+): one loop, several runs": """
with asyncio.Runner() as runner:
    print(runner.run(main()))
    print(runner.run(main()))
""",
}


def old_style_report() -> list[dict[str, str]]:
    """Run each way of starting a loop in a fresh interpreter; what it printed and warned."""
    rows = []
    for case, code in _OLD_STYLE.items():
        script = "import asyncio\nasync def main():\n    return 'ok'\n" + code
        proc = subprocess.run(
            [sys.executable, "-W", "always::DeprecationWarning", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = proc.stderr.splitlines()
        errors = [line for line in lines if re.match(r"\w+(Error|Exception): ", line)]
        warned = {line.split(": ", 1)[-1] for line in lines if "Warning: " in line}
        rows.append(
            {
                "case": case,
                "printed": " | ".join(proc.stdout.splitlines()),
                "raised": errors[-1] if errors else "",
                "warned": "; ".join(sorted(warned)),
            }
        )
    return rows


# -- chapter 06: what nest-asyncio2 costs -------------------------------------------------
def _samples_us(fn: Callable[[int], float], n: int, repeats: int) -> list[float]:
    """µs per step of ``repeats`` runs of ``fn(n)``, after one warm-up run."""
    fn(min(n, 1000))
    with _gc_paused():
        return [fn(n) * 1e6 for _ in range(repeats)]


def _nest_measure(n: int, repeats: int, patched: bool) -> dict[str, Any]:
    """Measured in this (fresh) interpreter; called by the ``nest-cost`` command.

    Each operation's entry is the list of its ``repeats`` samples (µs per operation), so the
    caller can pool the samples of several interpreters and report a median with its spread.
    """
    if patched:
        import nest_asyncio2

        nest_asyncio2.apply()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def noop() -> None:
        return None

    def run_until_complete_cost(k: int) -> float:
        started = time.perf_counter()
        for _ in range(k):
            loop.run_until_complete(noop())
        return (time.perf_counter() - started) / k

    def on_loop(body: Callable[[int, GetLoop], Coroutine[Any, Any, float]]):
        return lambda k: loop.run_until_complete(body(k, asyncio.get_running_loop))

    async def nested() -> str:
        try:
            return loop.run_until_complete(asyncio.sleep(0, "nested run_until_complete worked"))
        except RuntimeError as error:
            return f"RuntimeError: {error}"

    result = {
        "patched": patched,
        "asyncio.Task is": "C (_asyncio)"
        if asyncio.Task.__module__ == "_asyncio"
        else "pure Python (asyncio.tasks._PyTask)",
        "sleep(0) switch us": _samples_us(on_loop(yield_pingpong), n, repeats),
        "Future hand-off us": _samples_us(on_loop(handoff), n, repeats),
        "run_until_complete us": _samples_us(run_until_complete_cost, max(n // 10, 100), repeats),
        "nested call": loop.run_until_complete(nested()),
    }
    loop.close()
    return result


_NEST_KEYS = ["sleep(0) switch us", "Future hand-off us", "run_until_complete us"]


def nest_asyncio_cost(n: int = 20_000, repeats: int = 15, rounds: int = 2) -> list[dict[str, Any]]:
    """The same measurements in fresh interpreters, plain asyncio then nest-asyncio2.

    The pair runs ``rounds`` times, alternating, so that a burst of load from another program
    does not land on one side only. Each operation's ``repeats * rounds`` samples are pooled:
    its entry is their median, with ``... p10`` and ``... p90`` (the spread) and ``samples``.
    """
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(rounds):
        for patched in (False, True):
            options = [f"--n={n}", f"--repeats={repeats}", *(["--patched"] if patched else [])]
            runs[patched].append(_fresh("nest-cost", *options))
    rows = []
    for patched in (False, True):
        row = dict(runs[patched][0])
        for key in _NEST_KEYS:
            pooled = [us for run in runs[patched] for us in run[key]]
            s = summarize(pooled)
            row[key], row[f"{key} p10"], row[f"{key} p90"] = s.median, s.p10, s.p90
        row["samples"] = repeats * rounds
        rows.append(row)
    return rows


def nest_cost_table(plain: dict[str, Any], patched: dict[str, Any]) -> pd.DataFrame:
    """µs per operation, plain and patched (median, p10, p90), and the slowdown.

    ``slowdown`` is the ratio of the medians. ``slowdown from``/``to`` bound it by the spread:
    patched p10 / plain p90 (the least it could be) and patched p90 / plain p10 (the most).
    """
    import pandas as pd

    columns: dict[str, list[float]] = {}
    for label, run in (("plain asyncio", plain), ("nest-asyncio2", patched)):
        columns[label] = [run[k] for k in _NEST_KEYS]
        columns[f"{label} p10"] = [run.get(f"{k} p10", run[k]) for k in _NEST_KEYS]
        columns[f"{label} p90"] = [run.get(f"{k} p90", run[k]) for k in _NEST_KEYS]
    table = pd.DataFrame(columns, index=[k.removesuffix(" us") for k in _NEST_KEYS])
    table["slowdown"] = table["nest-asyncio2"] / table["plain asyncio"]
    table["slowdown from"] = table["nest-asyncio2 p10"] / table["plain asyncio p90"]
    table["slowdown to"] = table["nest-asyncio2 p90"] / table["plain asyncio p10"]
    return table


def format_nest_cost(table: pd.DataFrame) -> str:
    """:func:`nest_cost_table` as text: each median with its p10–p90 spread, and the slowdown."""
    lines = [
        f"{'µs per operation':<20} {'plain asyncio':>22} {'nest-asyncio2':>22} {'slowdown':>9}"
    ]
    for operation, row in table.iterrows():
        cells = [
            f"{row[label]:.3g} ({row[f'{label} p10']:.3g}–{row[f'{label} p90']:.3g})"
            for label in ("plain asyncio", "nest-asyncio2")
        ]
        lines.append(f"{operation!s:<20} {cells[0]:>22} {cells[1]:>22} {row['slowdown']:>8.2f}×")
    return "\n".join(lines)


def nest_cost_verdicts(table: pd.DataFrame) -> list[str]:
    """One line per operation: dearer, cheaper or too close to call, judged by the spread."""
    lines = []
    for operation, row in table.iterrows():
        low, high = row["slowdown from"], row["slowdown to"]
        if low > 1:
            verdict = "dearer with nest-asyncio2, beyond the spread"
        elif high < 1:
            verdict = "cheaper with nest-asyncio2, beyond the spread"
        else:
            verdict = "within the spread: this run cannot tell them apart"
        lines.append(
            f"{operation}: {row['slowdown']:.2f}× (spread allows {low:.2f}× to {high:.2f}×): "
            f"{verdict}"
        )
    return lines


def plot_nest_cost(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bars of :func:`nest_cost_table`: medians, whiskers from the p10 to the p90."""
    import matplotlib.pyplot as plt
    from matplotlib.container import BarContainer as Bars

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    labels = ["plain asyncio", "nest-asyncio2"]
    times = table[labels]
    errors = [
        [
            (times[label] - table[f"{label} p10"]).clip(lower=0).to_numpy(),
            (table[f"{label} p90"] - times[label]).clip(lower=0).to_numpy(),
        ]
        for label in labels
    ]
    times.plot.barh(ax=ax, color=[LOOP_COLORS["asyncio"], "tab:red"], xerr=errors, capsize=3)
    for container in ax.containers:
        if isinstance(container, Bars):
            ax.bar_label(container, fmt="%.2f", fontsize="small", padding=2)
    ax.set_xlim(right=table[[f"{label} p90" for label in labels]].to_numpy().max() * 1.15)
    ax.set_xlabel("time per operation (µs; median, whiskers p10–p90)")
    ax.set_ylabel("operation")
    ax.set_title("What nest-asyncio2 costs (fresh interpreters, same machine)")
    ax.invert_yaxis()
    return ax


# -- chapter 05: the seed's picture, drawn by the timeline tracer --------------------------
async def _job(tl: Timeline, seconds: float) -> float:
    """One async task: a little CPU work, a wait for IO (simulated), a little CPU work."""
    with tl.span("send request (CPU)"):
        hold_cpu(0.004)
    with tl.span("wait for IO"):
        await asyncio.sleep(seconds)
    with tl.span("parse reply (CPU)"):
        hold_cpu(0.004)
    return seconds


def hold_cpu(seconds: float) -> None:
    """Hold the CPU (and so the event loop) for ``seconds``, as real Python work does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def submit_tasks(
    tl: Timeline, *, wait: bool, waits: tuple[float, ...] = (0.12, 0.06, 0.09)
) -> list[float]:
    """The seed's picture: sync code, then submit async tasks, then wait for them or carry on.

    With ``wait=True`` the caller blocks on ``gather`` at once. With ``wait=False`` it carries
    on with its own work in slices, handing the loop back between slices (``await``), and
    gathers the results at the end; the tasks ran meanwhile.
    """
    with tl.span("sync code"):
        hold_cpu(0.02)
    tl.mark("submit async tasks")
    tasks = [
        asyncio.create_task(_job(tl, s), name=f"task {i}") for i, s in enumerate(waits, start=1)
    ]
    if wait:
        with tl.span("waits: await gather(...)"):
            results = await asyncio.gather(*tasks)
    else:
        for _ in range(5):
            with tl.span("carry on: own work"):
                hold_cpu(0.012)
            await asyncio.sleep(0)  # hand the loop back so that ready tasks take their turn
        with tl.span("waits: await gather(...)"):
            results = await asyncio.gather(*tasks)
    with tl.span("use results"):
        hold_cpu(0.01)
    return results


#: How the seed's picture draws each span: waiting is grey and hatched, work is coloured.
_SUBMIT_STYLE = {
    "sync code": ("tab:blue", ""),
    "submit async tasks": ("tab:orange", ""),
    "waits: await gather(...)": ("0.85", "///"),
    "carry on: own work": ("tab:green", ""),
    "send request (CPU)": ("tab:red", ""),
    "wait for IO": ("0.8", "..."),
    "parse reply (CPU)": ("tab:brown", ""),
    "use results": ("tab:pink", ""),
}


def plot_submit_tasks(timelines: dict[bool, Timeline]) -> Figure:
    """The :func:`submit_tasks` runs one above the other (keyed by ``wait``), same styles."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    fig, axes = plt.subplots(len(timelines), 1, figsize=(10, 2.8 * len(timelines)), sharex=True)
    colors = {label: color for label, (color, _) in _SUBMIT_STYLE.items()}
    hatches = {to_rgba(color): hatch for color, hatch in _SUBMIT_STYLE.values() if hatch}
    for ax, (wait, tl) in zip(axes, timelines.items(), strict=True):
        how = "await gather at once (waiting: grey)" if wait else "carry on with own work"
        tl.plot(ax=ax, title=f"wait={wait}: {how}", colors=colors, legend=False)
        for bars in ax.collections:  # Timeline.plot draws one collection per span
            hatch = hatches.get(tuple(bars.get_facecolor()[0]))
            if hatch:
                bars.set_hatch(hatch)
                bars.set_edgecolor("0.45")  # the hatch's colour; the outline stays off
            else:
                bars.set_edgecolor("white")  # so that back-to-back slices stay apart
                bars.set_linewidth(0.8)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", frameon=False)
    fig.tight_layout()
    return fig


async def seed_picture() -> dict[bool, Timeline]:
    """Run :func:`submit_tasks` with ``wait=True`` then ``wait=False``; a timeline for each."""
    from concurrency_lab.timeline import Timeline

    timelines = {}
    for wait in (True, False):
        timelines[wait] = tl = Timeline()
        await submit_tasks(tl, wait=wait)
    return timelines


def submit_tasks_summary(timelines: dict[bool, Timeline]) -> list[str]:
    """What the two :func:`submit_tasks` runs show, in numbers taken from their timelines."""
    facts = {}
    for wait, tl in timelines.items():
        spans = tl.spans
        origin = min(s.start for s in spans)
        submitted = next(s.start for s in spans if s.label == "submit async tasks")

        def total(label: str, spans: list = spans) -> float:
            return sum(s.duration for s in spans if s.label == label) * 1e3

        first_task = min(s.start for s in spans if s.label == "send request (CPU)")
        facts[wait] = {
            "total": (max(s.end for s in spans) - origin) * 1e3,
            "waited": total("waits: await gather(...)"),
            "own work": total("carry on: own work"),
            "delay": (first_task - submitted) * 1e3,
        }
    at_once, carry_on = facts[True], facts[False]
    return [
        f"wait=True:  total {at_once['total']:.0f} ms; the main program waited "
        f"{at_once['waited']:.0f} ms in gather; the first task started "
        f"{at_once['delay']:.1f} ms after the submit",
        f"wait=False: total {carry_on['total']:.0f} ms; the main program did "
        f"{carry_on['own work']:.0f} ms of its own work and waited {carry_on['waited']:.0f} ms; "
        f"the first task started {carry_on['delay']:.1f} ms after the submit",
        f"carrying on: {carry_on['own work']:.0f} ms of work done for "
        f"{carry_on['total'] - at_once['total']:+.0f} ms of total time; the same work after "
        f"gather would have added all {carry_on['own work']:.0f} ms",
    ]


def blocking_io(tl: Timeline, seconds: float) -> str:
    """A synchronous call that blocks its thread (a stand-in for ``requests.get``)."""
    with tl.span("time.sleep (sync IO)"):
        time.sleep(seconds)
    return f"slept {seconds} s"


async def blocking_demo(tl: Timeline, mode: str, seconds: float = 0.15) -> float:
    """A heartbeat task ticks every 10 ms while a handler makes a sync call; largest gap (s).

    ``mode`` is ``"blocking"`` (call it in the loop's thread), ``"to_thread"`` or
    ``"run_in_executor"`` (run it in a worker thread, so the loop stays free).
    """
    ticks: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            tl.mark("heartbeat")
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def handler() -> str:
        if mode == "blocking":
            return blocking_io(tl, seconds)  # the handler's own lane: the loop's thread
        with tl.span(f"handler awaits the worker ({mode})"):
            if mode == "to_thread":
                return await asyncio.to_thread(blocking_io, tl, seconds)
            if mode == "run_in_executor":
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(None, blocking_io, tl, seconds)
            raise ValueError(f"mode must be blocking, to_thread or run_in_executor, not {mode!r}")

    beat = asyncio.create_task(heartbeat(), name="heartbeat")
    await asyncio.sleep(0.03)
    await asyncio.create_task(handler(), name="handler")
    await asyncio.sleep(0.03)
    stop.set()
    await beat
    return max(b - a for a, b in itertools.pairwise(ticks))


# -- chapter 05: gather, wait, as_completed and TaskGroup on the same three jobs -----------
_JOBS = {"slow": 0.06, "fast": 0.02, "mid": 0.04}


async def _labelled(label: str, seconds: float, fail: bool) -> str:
    await asyncio.sleep(seconds)
    if fail:
        raise ValueError(f"{label} failed")
    return label


async def _combine(api: str, fail: str | None, tasks: list[asyncio.Task]) -> list[str]:
    """Run the three jobs through ``api`` (appending their Tasks to ``tasks``); what it gave."""
    jobs = [(_labelled(k, s, k == fail), k) for k, s in _JOBS.items()]
    if api == "TaskGroup":
        async with asyncio.TaskGroup() as group:
            tasks += [group.create_task(coro, name=name) for coro, name in jobs]
        return [t.result() for t in tasks]
    tasks += [asyncio.create_task(coro, name=name) for coro, name in jobs]
    if api == "gather":
        return await asyncio.gather(*tasks)
    if api == "gather(return_exceptions=True)":
        out = await asyncio.gather(*tasks, return_exceptions=True)
        return [r if isinstance(r, str) else f"<{type(r).__name__}>" for r in out]
    if api == "wait(ALL_COMPLETED)":
        done, _ = await asyncio.wait(tasks)
        failed = sum(t.exception() is not None for t in done)
        return [f"a set of {len(done)} done tasks ({failed} holding an exception)"]
    if api == "wait(FIRST_COMPLETED)":
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return [f"done={{{', '.join(t.get_name() for t in done)}}}", f"{len(pending)} pending"]
    if api == "as_completed":
        return [await next_done for next_done in asyncio.as_completed(tasks)]
    raise ValueError(f"unknown api {api!r}")


COMBINATORS = [
    "gather",
    "gather(return_exceptions=True)",
    "wait(ALL_COMPLETED)",
    "wait(FIRST_COMPLETED)",
    "as_completed",
    "TaskGroup",
]


async def _compare_one(api: str) -> dict[str, str]:
    row = {"api": api, "what the caller gets": ", ".join(await _combine(api, None, []))}
    tasks: list[asyncio.Task] = []
    try:
        row["when 'fast' raises"] = "returns " + ", ".join(await _combine(api, "fast", tasks))
    except Exception as error:  # ExceptionGroup from TaskGroup is one of the things to show
        row["when 'fast' raises"] = f"raises {type(error).__name__}: {error}"
    states = [
        f"{t.get_name()}: "
        + ("cancelled" if t.cancelled() else "done" if t.done() else "still running")
        for t in tasks
        if t.get_name() != "fast"
    ]
    row["other tasks right after"] = ", ".join(states)
    for t in tasks:  # leave nothing behind for the next row
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return row


def compare_combinators() -> list[dict[str, str]]:
    """Each of :data:`COMBINATORS` on the same jobs (slow 60 ms, fast 20 ms, mid 40 ms)."""

    async def main() -> list[dict[str, str]]:
        return [await _compare_one(api) for api in COMBINATORS]

    return run_sync(main)


# -- chapter 06: an idle loop sleeps; a polling loop spins ----------------------------------
def idle_loop_demo(tl: Timeline, delays: tuple[float, ...] = (0.3, 0.1, 0.2)) -> dict[str, Any]:
    """Tasks sleeping ``delays`` at once on miniloop, each sleep a span of ``tl``.

    Returns what the sleepers returned, wall and CPU seconds, and how often the loop went round.
    """

    async def sleeper(seconds: float) -> float:
        with tl.span(f"sleep({seconds})", lane=f"sleeper {seconds}"):
            await miniloop.sleep(seconds)
        return seconds

    async def sleepers() -> tuple[list[float], int]:
        loop = miniloop.get_running_loop()
        before = loop.iterations
        tasks = [miniloop.create_task(sleeper(s), name=f"sleeper {s}") for s in delays]
        woke = await miniloop.gather(*tasks)
        return woke, loop.iterations - before

    wall, cpu = time.perf_counter(), time.process_time()
    woke, iterations = miniloop.run(sleepers())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"results": woke, "wall_s": wall, "cpu_s": cpu, "iterations": iterations}


def busy_wait(seconds: float = 0.05) -> dict[str, Any]:
    """Wait ``seconds`` by polling the clock, as a loop without a selector would."""
    wall, cpu = time.perf_counter(), time.process_time()
    deadline, iterations = wall + seconds, 0
    while time.perf_counter() < deadline:
        iterations += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "iterations": iterations}


# -- command line: the measurements that must run in a fresh interpreter ---------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m concurrency_lab.aio", description="print one measurement as JSON"
    )
    parser.add_argument("command", choices=["steps", "loop-samples", "nest-cost"])
    parser.add_argument("--n", type=int, default=20_000, help="steps or switches per sample")
    parser.add_argument("--repeats", type=int, default=5, help="samples per median")
    parser.add_argument("--rounds", type=int, default=1, help="loop-samples: interleaved rounds")
    parser.add_argument("--patched", action="store_true", help="nest-cost: apply nest_asyncio2")
    args = parser.parse_args(argv)
    if args.command == "steps":
        result: Any = step_costs(args.n, args.repeats, fresh=False)
    elif args.command == "loop-samples":
        result = _loop_samples(args.n, args.rounds)
    else:
        result = _nest_measure(args.n, args.repeats, args.patched)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
