"""Who gains from concurrency: every workload in every mode, against serial, with its noise.

The seed claims that concurrency (并发) pays off only for IO-bound (IO密集型) programs, and that
because of the GIL (全局解释器锁) nothing runs in parallel (并行). :func:`compare` measures the
speed-up and the cores used of threads, processes and asyncio for each workload of
:mod:`concurrency_lab.workloads`; :func:`verdicts` says which speed-ups are more than noise.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from concurrency_lab.workloads import MODES, TITLES, WORKLOADS, Mode, Timing, Workload, run, sizes

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["Verdict", "compare", "plot_speedups", "verdicts"]


def compare(quick: bool = False, jobs: int = 4, repeats: int | None = None) -> pd.DataFrame:
    """Median wall time, speed-up over serial and cores used, for every workload and mode.

    Within a repeat, the modes of one workload run between two serial runs of the same jobs,
    and each mode's speed-up is the mean of those two serial times divided by its own. Pairing
    neighbouring runs cancels most of the drift in load from other programs; the median over
    repeats is reported. ``cores used`` is the CPU time the jobs used divided by the wall time.
    ``noise`` is how much the two serial runs around the modes disagreed (median over repeats,
    as a fraction of their mean): a speed-up closer to 1 than that is no speed-up.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    repeats = repeats or (3 if quick else 5)
    size = sizes(quick)
    cases = [(w, m) for w in WORKLOADS for m in MODES]
    times: dict[tuple[Workload, Mode], list[float]] = {c: [] for c in cases}
    ratios: dict[tuple[Workload, Mode], list[float]] = {c: [] for c in cases}
    cores: dict[tuple[Workload, Mode], list[float]] = {c: [] for c in cases}
    drift: dict[Workload, list[float]] = {w: [] for w in WORKLOADS}
    for _ in tqdm(range(repeats), desc="repeats", leave=False):
        for w in WORKLOADS:
            before = run(w, "serial", jobs, size[w])
            measured: dict[Mode, Timing] = {
                m: run(w, m, jobs, size[w]) for m in MODES if m != "serial"
            }
            after = run(w, "serial", jobs, size[w])
            base = (before.seconds + after.seconds) / 2
            drift[w].append(abs(before.seconds - after.seconds) / base)
            measured["serial"] = Timing(base, (before.cpu_seconds + after.cpu_seconds) / 2)
            for m, (seconds, cpu) in measured.items():
                times[w, m].append(seconds)
                ratios[w, m].append(base / seconds)
                cores[w, m].append(cpu / seconds)
    rows = [
        {
            "workload": w,
            "mode": m,
            "seconds": statistics.median(times[w, m]),
            "speedup": statistics.median(ratios[w, m]),
            "cores used": statistics.median(cores[w, m]),
            "noise": statistics.median(drift[w]),
        }
        for w, m in cases
    ]
    frame = pd.DataFrame(rows)
    frame["jobs"], frame["cores"] = jobs, os.cpu_count()
    return frame


@dataclass(frozen=True)
class Verdict:
    """One workload and mode of :func:`compare` against serial: gained, no gain, or slower."""

    workload: str
    mode: str
    speedup: float
    band: float  # how far from 1 a speed-up must be to count (twice the noise, at least a floor)
    cores_used: float
    serial_cores_used: float  # nan when the frame has no serial run of this workload

    @property
    def verdict(self) -> Literal["gained", "no gain", "slower"]:
        if self.speedup >= 1 + self.band:
            return "gained"
        if self.speedup <= 1 - self.band:
            return "slower"
        return "no gain"

    @property
    def one_core_gain(self) -> bool:
        """A CPU-bound gain made on at most one core's worth of CPU: a bigger share of one core
        (the OS schedules each thread against the other programs), not parallelism."""
        return self.verdict == "gained" and self.workload != "io" and self.cores_used <= 1.05


def verdicts(frame: pd.DataFrame, floor: float = 0.15) -> list[Verdict]:
    """One verdict per workload and mode of :func:`compare` (serial is the baseline, not one).

    A speed-up counts only when it is further from 1 than twice the measured noise (and at
    least ``floor``): on a busy machine, 1.2× may be nothing but the load changing.
    """
    out = []
    rows = frame.set_index(["workload", "mode"])
    for (w, m), row in rows.iterrows():
        if m == "serial":
            continue
        out.append(
            Verdict(
                str(w),
                str(m),
                float(row["speedup"]),
                max(floor, 2 * float(row["noise"])),
                float(row["cores used"]),
                float(rows.loc[(w, "serial"), "cores used"])
                if (w, "serial") in rows.index
                else float("nan"),
            )
        )
    return out


def plot_speedups(frame: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Grouped bars: speed-up over serial per mode, CPU-bound next to IO-bound."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 4))
    width = 0.8 / len(MODES)
    for i, mode in enumerate(MODES):
        rows = frame[frame["mode"] == mode].set_index("workload").loc[list(WORKLOADS)]
        xs = [k + (i - (len(MODES) - 1) / 2) * width for k in range(len(WORKLOADS))]
        bars = ax.bar(xs, rows["speedup"], width, label=mode)
        ax.bar_label(bars, fmt="%.1f×", fontsize="small")
    jobs, cores = int(frame["jobs"].iloc[0]), int(frame["cores"].iloc[0])
    ax.axhline(1, color="k", lw=0.8)
    ax.axhline(cores, color="grey", ls="--", lw=0.8, label=f"{cores} cores")
    ax.set_xticks(range(len(WORKLOADS)), [TITLES[w] for w in WORKLOADS])
    ax.set_ylabel("speed-up over serial (×)")
    ax.set_xlabel(f"workload ({jobs} equal jobs, one worker each)")
    ax.set_title("Who gains from concurrency? Speed-up over running the jobs one by one")
    ax.legend(fontsize="small", ncols=3)
    ax.set_ylim(0, max(jobs, frame["speedup"].max()) * 1.2)
    return ax
