"""Lost updates, locks, Condition and Queue, and deadlocks that are detected, never hung."""

from __future__ import annotations

import queue
import sys
import threading
from typing import Any

import pytest

from concurrency_lab import races
from concurrency_lab.timeline import Timeline

GIL = getattr(sys, "_is_gil_enabled", lambda: True)()


@pytest.mark.skipif(not GIL, reason="the hiding of the race is a property of the GIL build")
def test_plain_increment_loses_nothing_on_this_interpreter() -> None:
    r = races.lost_update(races.increment_plain, 4, 100_000, interval=1e-6)
    assert (r.expected, r.lost) == (400_000, 0)


def test_a_call_between_read_and_write_loses_updates() -> None:
    r = races.lost_update(races.increment_with_call, 4, 100_000, interval=1e-6)
    assert r.lost > 0


def test_releasing_the_gil_between_read_and_write_loses_updates() -> None:
    r = races.lost_update(races.increment_with_sleep, 4, 500)
    assert r.lost > 0 and r.actual + r.lost == 2000


def test_a_lock_makes_the_same_increment_exact() -> None:
    safe = races.locked(races.increment_with_sleep)
    r = races.lost_update(safe, 4, 500, interval=1e-6)
    assert r.lost == 0 and r.increment == "locked_increment_with_sleep"


def test_switch_interval_is_restored() -> None:
    before = sys.getswitchinterval()
    with races.switch_interval(1e-6):
        assert sys.getswitchinterval() == pytest.approx(1e-6)
    assert sys.getswitchinterval() == before


@pytest.mark.slow  # runs every race for real: seconds
def test_race_table_lists_every_case_with_both_intervals() -> None:
    frame = races.race_table(quick=True)
    assert len(frame) == 2 * (len(races.INCREMENTS) + 1)
    assert (frame["expected"] == frame["actual"] + frame["lost"]).all()
    locked_rows = frame[frame["increment"].str.startswith("with Lock")]
    assert (locked_rows["lost"] == 0).all()


def test_reentry_needs_an_rlock() -> None:
    assert races.reenter(threading.RLock()) is True
    assert races.reenter(threading.Lock(), timeout=0.05) is False


class _CheckedBuffer(races.BoundedBuffer):
    peak = 0

    def put(self, item: Any) -> None:
        super().put(item)
        self.peak = max(self.peak, self.qsize())


@pytest.mark.parametrize("make", [lambda: _CheckedBuffer(3), lambda: queue.Queue(3)])
def test_producers_and_consumers_hand_over_every_item_once(make: Any) -> None:
    buffer = make()
    tl = Timeline()
    got = races.produce_consume(buffer, items=30, produce_s=0.0005, consume_s=0.001, timeline=tl)
    assert sorted(got) == list(range(30))
    assert {"producer-0", "producer-1", "consumer-0", "consumer-1"} <= set(tl.lanes)
    if isinstance(buffer, _CheckedBuffer):
        assert buffer.peak <= 3


def test_opposite_transfers_deadlock_and_are_detected() -> None:
    tl = Timeline()
    a, b = (races.Account(n, 100, races.TimedLock(n, 0.2, 0.05, tl)) for n in "AB")
    report = races.run_transfers(races.transfer_naive, [a, b], [(0, 1, 10), (1, 0, 20)])
    assert report.deadlocked
    assert "DeadlockError" in report.errors[0] and "global order" in report.errors[0]
    assert report.total_after == report.total_before == 200
    labels = {s.label for s in tl.spans}
    assert {"holds A", "holds B", "waits for A", "waits for B"} <= labels


def test_ordered_locks_do_not_deadlock() -> None:
    a, b = (races.Account(n, 100, races.TimedLock(n, 0.5, 0.02)) for n in "AB")
    report = races.run_transfers(races.transfer_ordered, [a, b], [(0, 1, 10), (1, 0, 20)])
    assert not report.deadlocked and report.finished == 2
    assert (a.balance, b.balance) == (110, 90)


def test_taking_the_same_lock_twice_names_the_culprit() -> None:
    lock = races.TimedLock("A", timeout=0.05)
    with pytest.raises(races.DeadlockError, match="which it holds"), lock, lock:
        pass
    assert not lock.locked()


def test_stuck_threads_are_reported_not_waited_for() -> None:
    gate = threading.Event()

    def stuck(src: races.Account, dst: races.Account, amount: int) -> None:
        gate.wait(5)

    try:
        accounts = [races.Account("A", 1), races.Account("B", 1)]
        report = races.run_transfers(stuck, accounts, [(0, 1, 1)], join_timeout=0.1)
        assert report.errors and "still waiting" in report.errors[0]
    finally:
        gate.set()


def test_lock_cost_compares_like_with_like() -> None:
    bare, guarded = races.lock_cost(n=2_000, repeats=2)
    assert bare > 0 and guarded > 0


def test_lock_diagram_has_one_holder_at_a_time_and_keeps_every_update() -> None:
    tl, counter = races.lock_diagram(threads=3, rounds=2, hold=0.002, own=0.001)
    assert counter.value == 6
    assert tl.most_at_once("holds lock") == 1
    assert sorted(tl.lanes) == ["thread-1", "thread-2", "thread-3"]
    assert {"own work (no lock needed)", "waits for lock", "holds lock"} <= {
        s.label for s in tl.spans
    }


def test_transfer_ordered_is_the_fix_for_opposite_transfers() -> None:
    a, b = (races.Account(n, 100, races.TimedLock(n, 0.5, 0.02)) for n in "AB")
    report = races.run_transfers(races.transfer_ordered, [a, b], [(0, 1, 10), (1, 0, 20)])
    assert not report.deadlocked and (a.balance, b.balance) == (110, 90)


def test_plot_threads_hatches_every_wait() -> None:
    import matplotlib

    matplotlib.use("Agg")
    tl = Timeline()
    races.produce_consume(
        races.BoundedBuffer(2), items=6, produce_s=0.0, consume_s=0.002, timeline=tl
    )
    a, b = (races.Account(n, 100, races.TimedLock(n, 0.5, 0.0, tl)) for n in "AB")
    races.run_transfers(races.transfer_ordered, [a, b], [(0, 1, 10)])
    ax = races.plot_threads(tl, title="t")
    labelled = [c for c in ax.collections if not str(c.get_label()).startswith("_")]
    assert len(labelled) == 8  # produce/put/get/consume, waits for/holds A and B
    for bars in labelled:
        waiting = "wait" in str(bars.get_label())
        assert bool(bars.get_hatch()) == waiting, bars.get_label()
    lanes = [t.get_text() for t in ax.get_yticklabels()]
    assert lanes.index("producer-0") < lanes.index("consumer-0")
