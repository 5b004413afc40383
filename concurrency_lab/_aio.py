"""Run a coroutine to completion from synchronous code, even inside Jupyter.

``asyncio.run()`` refuses to start when the calling thread already runs a loop, which is always
the case in a notebook. The synchronous helpers of this package (benchmarks, workloads) then run
their private loop in a short-lived helper thread instead; the notebook's loop is not touched.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

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
