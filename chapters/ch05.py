"""Chapter 05 (tasks and futures): the lines that read the seed's picture, run both ways."""

from __future__ import annotations

from concurrency_lab.tasks import SubmitRun

__all__ = ["submit_lines"]


def submit_lines(runs: dict[bool, SubmitRun]) -> list[str]:
    """wait=True against wait=False: totals, waits, own work and what carrying on bought."""
    at_once, carry_on = runs[True], runs[False]
    return [
        f"wait=True:  total {at_once.total_ms:.0f} ms; the main program waited "
        f"{at_once.waited_ms:.0f} ms in gather; the first task started "
        f"{at_once.first_task_delay_ms:.1f} ms after the submit",
        f"wait=False: total {carry_on.total_ms:.0f} ms; the main program did "
        f"{carry_on.own_work_ms:.0f} ms of its own work and waited {carry_on.waited_ms:.0f} ms; "
        f"the first task started {carry_on.first_task_delay_ms:.1f} ms after the submit",
        f"carrying on: {carry_on.own_work_ms:.0f} ms of work done for "
        f"{carry_on.total_ms - at_once.total_ms:+.0f} ms of total time; the same work after "
        f"gather would have added all {carry_on.own_work_ms:.0f} ms",
    ]
