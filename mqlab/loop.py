"""``run(main())``: :func:`asyncio.run` on uvloop's event loop where uvloop is installed.

The pipeline's services and the embedded broker spend a third of their time in the event
loop itself (scheduling callbacks, waking futures, moving bytes through transports); uvloop
does that work in C (chapter 06 measures the difference). The code is the same asyncio code
either way. ``MQLAB_LOOP=asyncio`` keeps the standard loop, e.g. to compare the two.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["ENV_LOOP", "loop_name", "run"]

T = TypeVar("T")

#: ``asyncio`` for the standard library's loop; anything else (or unset) prefers uvloop.
ENV_LOOP = "MQLAB_LOOP"


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop :func:`run` uses in this environment."""
    if os.environ.get(ENV_LOOP, "").strip().lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:  # Windows, or a minimal install
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh event loop, as :func:`asyncio.run` does."""
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
