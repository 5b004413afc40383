"""What the paper sessions share: when a live run stops, and the median they show."""

from __future__ import annotations

import asyncio
import time

from mqlab.live.common import Until, p50, run_until


def test_until_counts_bars_and_the_condition() -> None:
    flag = [False]
    until = Until.after(max_bars=3, stop_when=lambda: flag[0])
    assert not until.reached(2)
    assert until.reached(3)
    flag[0] = True
    assert until.reached(0) and until.quiet()
    assert not Until.after().reached(10**6)  # no limit: only stop() ends it


async def test_run_until_stops_a_quiet_stream_at_its_deadline() -> None:
    """No event ever comes, so nothing checks after one: the watcher must call stop()."""
    task = asyncio.ensure_future(asyncio.Event().wait())
    stops: list[float] = []

    def stop() -> None:
        stops.append(time.monotonic())
        task.cancel()

    started = time.monotonic()
    await asyncio.wait_for(run_until(task, Until.after(seconds=0.2), stop, poll=0.01), 10)
    assert len(stops) == 1 and task.cancelled()
    assert stops[0] - started >= 0.2


async def test_run_until_without_a_limit_waits_for_the_work() -> None:
    async def work() -> None:
        await asyncio.sleep(0.05)

    task = asyncio.ensure_future(work())
    await run_until(task, Until.after(), lambda: None)
    assert task.done() and not task.cancelled()


def test_p50_is_the_upper_median() -> None:
    assert p50([]) is None
    assert p50([3.0, 1.0, 2.0]) == 2.0
    assert p50([4.0, 1.0, 3.0, 2.0]) == 3.0
