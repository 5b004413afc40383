"""Chapter 01 (concurrency and the GIL): the lines that read the timelines and the speed-ups."""

from __future__ import annotations

from concurrency_lab.gil import Overlap, ProcessOverlap
from concurrency_lab.main_thread import MainThreadRun
from concurrency_lab.speedups import Verdict
from concurrency_lab.workloads import LABELS, TITLES

__all__ = ["main_thread_lines", "overlap_line", "process_overlap_line", "verdict_lines"]


def verdict_lines(verdicts: list[Verdict]) -> list[str]:
    """One line per workload and mode: speed-up, verdict, the noise band and the cores used."""
    lines = []
    for v in verdicts:
        line = (
            f"{TITLES[v.workload].replace(chr(10), ' '):<38} {v.mode:<10} {v.speedup:4.1f}×  "
            f"{v.verdict:<8} (±{v.band:.2f} is noise)  {v.cores_used:4.2f} cores used"
        )
        if v.one_core_gain:
            line += (
                f" (serial {v.serial_cores_used:.2f}): a bigger share of one core, not parallelism"
            )
        lines.append(line)
    return lines


def overlap_line(o: Overlap) -> str:
    """What the timeline shows: in parallel, taking turns, or waits that overlapped."""
    if o.label == LABELS["io"]:
        verdict = "the waits overlapped" if o.overlapped else "the waits did not overlap"
    else:
        verdict = "ran in parallel" if o.overlapped else "took turns: no parallelism"
    at_once = f"{o.both_s * 1e3:.1f} of {o.anyone_s * 1e3:.1f} ms ({o.share:.0%})"
    return f"{o.label!r} in two lanes at once for {at_once}: {verdict}"


def process_overlap_line(p: ProcessOverlap) -> str:
    """Whether two processes overlapped, and why, in a sentence chosen by the numbers."""
    seen = f"the two processes computed at the same instant for {p.share:.0%} of the time"
    room = f"other programs kept {p.busy:.1f} of {p.cores} cores busy, leaving {p.free:.1f} free"
    if p.parallel:
        return f"{seen}: parallelism, visible on the timeline ({room})."
    if p.crowded:
        return (
            f"{seen}: no parallelism visible here, because {room}: less than the two free "
            "cores two processes need to run at once, so the OS made them take turns. "
            "Nothing in Python stopped them: with two free cores they can overlap."
        )
    return (
        f"{seen}: no parallelism visible here, although {room} just before the run: the load "
        "changed during the run, or the OS kept both on one core. Re-run the cell to see."
    )


def main_thread_lines(runs: dict[bool, MainThreadRun]) -> list[str]:
    """Blocking at once against carrying on: when each was done, and the difference."""
    lines = []
    for wait, r in runs.items():
        name = "blocks at once " if wait else "carries on     "
        lines.append(
            f"{name}: done after {r.total_ms:4.0f} ms; blocked {r.blocked_ms:3.0f} ms, "
            f"own work {r.own_work_ms:3.0f} ms"
        )
    gain = runs[True].total_ms - runs[False].total_ms
    if gain >= 0:
        lines.append(
            f"carrying on finished {gain:.0f} ms sooner: its own work ran while the tasks waited"
        )
    else:
        lines.append(
            f"carrying on finished {-gain:.0f} ms later in this run: the own work did not "
            "overlap the waits enough to pay off"
        )
    return lines
