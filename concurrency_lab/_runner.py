"""Where a measurement runs: a private event loop from synchronous code, or a fresh interpreter.

``asyncio.run()`` refuses to start when the calling thread already runs a loop, which is always
the case in a notebook. The synchronous helpers of this package (benchmarks, workloads) then run
their private loop in a short-lived helper thread instead; the notebook's loop is not touched
(:func:`run_sync`). Timings that must not share an interpreter with a kernel run in a new one
(:func:`run_fresh`), with the garbage collector kept out of the timed region (:func:`gc_paused`).

Private: learners never call these; the chapters' modules do.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["gc_paused", "run_fresh", "run_sync"]

T = TypeVar("T")


def run_sync(
    main: Callable[[], Coroutine[Any, Any, T]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run ``main()`` on a fresh event loop (made by ``loop_factory``) and return its result."""

    def go() -> T:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main())

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return go()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = go()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    helper = threading.Thread(target=target, name="asyncio-runner")
    helper.start()
    helper.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Collect first, then keep the collector out of the timed region (as ``timeit`` does)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_fresh(command: str, *options: str, timeout: float = 600) -> Any:
    """Run ``python -m concurrency_lab.fresh command *options``; return the JSON it prints."""
    proc = subprocess.run(
        [sys.executable, "-m", "concurrency_lab.fresh", command, *options],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode:
        raise RuntimeError(f"`python -m concurrency_lab.fresh {command}` failed:\n{proc.stderr}")
    return json.loads(proc.stdout)
