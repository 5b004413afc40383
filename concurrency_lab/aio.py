"""asyncio demos for chapters 04–06: step costs, loop comparisons, old-style runs, nest-asyncio2.

Every function here runs its own event loop (in a helper thread when the caller already runs
one, as a notebook does), so chapters call them synchronously. Timings are medians of repeats
(see :mod:`concurrency_lab.stats`); they are noisy on a shared machine, so compare ratios
measured side by side in one run, not absolute numbers across runs.

``python -m concurrency_lab.aio nest-cost [--patched]`` prints the nest-asyncio2 measurements
of one fresh interpreter as JSON; :func:`nest_asyncio_cost` runs it twice, with and without the
patch, so the caller's asyncio is never patched.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import re
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from concurrency_lab import miniloop
from concurrency_lab._aio import run_sync
from concurrency_lab.stats import summarize

if TYPE_CHECKING:
    from concurrency_lab.timeline import Timeline

__all__ = [
    "COMBINATORS",
    "LOOPS",
    "blocking_demo",
    "blocking_io",
    "compare_combinators",
    "compare_loops",
    "handoff",
    "hold_cpu",
    "nest_asyncio_cost",
    "old_style_report",
    "step_costs",
    "submit_tasks",
    "switch_cost",
    "yield_pingpong",
]

#: The event loops :func:`switch_cost` knows; uvloop only where it is installed.
LOOPS = ["miniloop", "asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])

GetLoop = Callable[[], Any]


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
    """Seconds per switch of ``workload`` (a key of ``WORKLOADS``) on ``loop`` (in ``LOOPS``)."""
    body = WORKLOADS[workload]
    if loop == "miniloop":
        return miniloop.run(body(n, miniloop.get_running_loop))
    if loop not in LOOPS:
        raise ValueError(f"unknown or uninstalled loop {loop!r}; choose from {LOOPS}")
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    return run_sync(lambda: body(n, asyncio.get_running_loop), loop_factory=factory)


def compare_loops(n: int = 20_000, repeats: int = 5, progress: bool = False) -> list[dict]:
    """Every workload on every loop, interleaved; rows with medians in µs and ratios."""
    with warnings.catch_warnings():  # without ipywidgets tqdm.auto falls back to text: fine
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

    samples: dict[tuple[str, str], list[float]] = {(w, lp): [] for w in WORKLOADS for lp in LOOPS}
    # Interleave repeats so that a burst of load from another program hits every loop alike.
    rounds = [(w, lp) for _ in range(repeats) for w in WORKLOADS for lp in LOOPS]
    for workload, loop in tqdm(rounds, desc="loops", disable=not progress):
        samples[workload, loop].append(switch_cost(loop, workload, n) * 1e6)
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


# -- chapter 04: what one step costs -------------------------------------------------------
def _per_call(fn: Callable[[int], float], n: int, repeats: int) -> float:
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


def step_costs(n: int = 100_000, repeats: int = 5) -> dict[str, float]:
    """µs per step: a call, a generator ``send``, ``await`` of a coroutine, loop switches."""
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
def _nest_measure(n: int, repeats: int, patched: bool) -> dict[str, Any]:
    """Measured in this (fresh) interpreter; called by the ``nest-cost`` command."""
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
        "sleep(0) switch us": _per_call(on_loop(yield_pingpong), n, repeats),
        "Future hand-off us": _per_call(on_loop(handoff), n, repeats),
        "run_until_complete us": _per_call(run_until_complete_cost, max(n // 10, 100), repeats),
        "nested call": loop.run_until_complete(nested()),
    }
    loop.close()
    return result


def nest_asyncio_cost(n: int = 20_000, repeats: int = 5, rounds: int = 2) -> list[dict[str, Any]]:
    """The same measurements in fresh interpreters, plain asyncio then nest-asyncio2.

    The pair runs ``rounds`` times, alternating, and each number is the median over rounds,
    so that a burst of load from another program does not land on one side only.
    """
    command = [sys.executable, "-m", "concurrency_lab.aio", "nest-cost", f"--n={n}"]
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(rounds):
        for patched in (False, True):
            proc = subprocess.run(
                [*command, f"--repeats={repeats}", *(["--patched"] if patched else [])],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if proc.returncode:
                raise RuntimeError(f"nest-cost measurement failed:\n{proc.stderr}")
            runs[patched].append(json.loads(proc.stdout))
    rows = []
    for patched in (False, True):
        row = dict(runs[patched][0])
        for key, value in row.items():
            if isinstance(value, float):
                row[key] = statistics.median(r[key] for r in runs[patched])
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m concurrency_lab.aio")
    parser.add_argument("command", choices=["nest-cost"])
    parser.add_argument("--patched", action="store_true", help="apply nest_asyncio2 first")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(_nest_measure(args.n, args.repeats, args.patched)))
    return 0


if __name__ == "__main__":
    sys.exit(main())


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
    collects the results at the end; the tasks ran meanwhile.
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
            await asyncio.sleep(0.01)  # hand the loop back so the tasks can take their turn
        with tl.span("collect results"):
            results = await asyncio.gather(*tasks)
    with tl.span("use results"):
        hold_cpu(0.01)
    return results


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
