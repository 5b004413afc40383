"""Waiting for many tasks: gather, wait, as_completed and TaskGroup on the same three jobs.

Chapter 05 sets them side by side: what the caller gets, what happens when one job raises, and
what state the other tasks are left in.
"""

from __future__ import annotations

import asyncio

from concurrency_lab._runner import run_sync

__all__ = ["COMBINATORS", "compare_combinators"]


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
