from __future__ import annotations

import asyncio
from collections import Counter

import aio_pika
import pytest

from mqlab.patterns import dead_letter, work_queue
from mqlab.patterns.work_queue import Worker, task_body
from mqlab.topology import TopologyRecorder

SLOW, FAST = 0.3, 0.0
DURATIONS = [SLOW, FAST] * 3


async def test_without_prefetch_dispatch_is_round_robin(connection) -> None:
    records = await work_queue.distribute(connection, DURATIONS, prefetch=None)
    by_worker = {
        w: sorted(r.task for r in records if r.worker == w) for w in ("worker-1", "worker-2")
    }
    # Dealt out up front, alternately: worker-1 gets every slow task, worker-2 every fast one.
    assert by_worker == {
        "worker-1": ["task-00", "task-02", "task-04"],
        "worker-2": ["task-01", "task-03", "task-05"],
    }


async def test_with_prefetch_one_both_workers_take_slow_tasks(connection) -> None:
    records = await work_queue.distribute(connection, DURATIONS, prefetch=1)
    assert Counter(r.task for r in records if r.outcome == "done") == {
        f"task-{i:02d}": 1 for i in range(len(DURATIONS))
    }
    slow = {f"task-{i:02d}" for i, d in enumerate(DURATIONS) if d == SLOW}
    assert {r.worker for r in records if r.task in slow} == {"worker-1", "worker-2"}


async def test_a_dead_workers_task_is_redelivered_to_another(connection) -> None:
    run = await work_queue.crash_demo(connection, seconds=0.3)
    attempts = [(d.consumer, d.body, d.redelivered, d.note) for d in run.log]
    assert ("worker-1", "task-00", False, "died") in attempts
    assert ("worker-2", "task-00", True, "done") in attempts
    assert sum(note == "done" for *_, note in attempts) == 2  # task-00 and task-01, once each


async def test_a_failing_task_is_rejected_to_the_dead_letter_queue(connection) -> None:
    async def work(body: bytes) -> None:
        if body.startswith(b"task-01"):
            raise ValueError("bad task")

    records: list[work_queue.TaskRecord] = []
    async with TopologyRecorder(connection) as rec:
        queue, _, dead = await dead_letter.declare_with_dead_letters(rec, work_queue.unique("t.wq"))
        worker = Worker("w", connection, queue.name, work, records=records)
        await worker.start()
        await work_queue.publish_tasks(rec.channel, queue.name, [task_body(i, 0) for i in range(3)])
        parked = await _get(dead)
        await worker.stop()
    assert parked.body.startswith(b"task-01")
    assert dead_letter.death_reason(parked).startswith("x-death: rejected")
    assert sorted((r.task, r.outcome) for r in records) == [
        ("task-00", "done"), ("task-01", "failed"), ("task-02", "done"),
    ]  # fmt: skip


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    for _ in range(500):
        if (message := await queue.get(fail=False, no_ack=True)) is not None:
            return message
        await asyncio.sleep(0.01)
    pytest.fail(f"nothing arrived in {queue.name}")


def test_plot_distribution_has_one_panel_per_run() -> None:
    rec = work_queue.TaskRecord("task-00", "worker-1", 0.0, 0.3, False, "done")
    fig = work_queue.plot_distribution({"a": [rec], "b": [rec]})
    assert len(fig.axes) == 2
    assert fig.axes[-1].get_xlabel().endswith("(s)")


def test_summarize_reports_makespan_and_busy_time() -> None:
    recs = [
        work_queue.TaskRecord("task-00", "worker-1", 0.0, 0.3, False, "done"),
        work_queue.TaskRecord("task-01", "worker-2", 0.0, 0.1, False, "done"),
        work_queue.TaskRecord("task-02", "worker-2", 0.1, 0.2, False, "done"),
    ]
    table = work_queue.summarize({"run": recs})
    assert table.loc["run"].to_dict() == {
        "all done after (s)": 0.3,
        "worker-1 busy (s)": 0.3,
        "worker-2 busy (s)": 0.2,
    }
