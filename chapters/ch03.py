"""Chapter 03 (switching costs): the printed lines that read the measured order and hand-over."""

from __future__ import annotations

from concurrency_lab.handover import HandOver, Step
from concurrency_lab.stats import three_digits as _us
from concurrency_lab.switching import Ordering

__all__ = ["PART_NAMES", "compare", "hand_over_lines", "ordering_lines", "step_lines"]

#: How the chapter names each part of :class:`~concurrency_lab.handover.Step`.
PART_NAMES = {
    "os_process_switch": "the OS switching to another process instead of a thread",
    "pipe_work": "mp.Pipe's own work (pickle, header, system calls)",
    "event_copy": "pickling and copying the event",
}


def compare(a: float, b: float) -> str:
    """a against b in words: about the same, close, or how many times dearer or cheaper."""
    r = a / b
    if 0.8 <= r <= 1.25:
        return f"{r:.2f}×: about the same"
    if 2 / 3 <= r <= 1.5:
        return f"{r:.2f}×: close"
    return f"{r:.1f}×: dearer" if r > 1 else f"{1 / r:.1f}× cheaper"


def ordering_lines(o: Ordering) -> list[str]:
    """The measured order, whether the seed's order held, and the gap between neighbours."""
    lines = [
        "measured order: " + " > ".join(o.order),
        f"the seed's process > thread > coroutine (> generator) holds: {o.seed_order_holds}",
    ]
    for g in o.gaps:
        s, f = g.slow, g.fast
        lines.append(
            f"  {s.mechanism} / {f.mechanism}: {g.ratio:,.1f}× ({s.variant} "
            f"{_us(s.median_us)} µs vs {f.variant} {_us(f.median_us)} µs)"
        )
    if o.smallest_gap and o.largest_gap:
        small, large = o.smallest_gap, o.largest_gap
        lines.append(
            f"smallest gap: {small.slow.mechanism} / {small.fast.mechanism}; "
            f"largest gap: {large.slow.mechanism} / {large.fast.mechanism}"
        )
    return lines


def hand_over_lines(h: HandOver) -> list[str]:
    """What the like-for-like cases show, one line each, in words chosen by the numbers."""
    return [
        f"the OS alone (1 byte, pinned): process {_us(h.os_process)} µs vs thread "
        f"{_us(h.os_thread)} µs -> process/thread {compare(h.os_process, h.os_thread)}",
        f"mp.Pipe with a bare int, not pinned: {_us(h.pipe_int_unpinned)} µs; "
        f"threading.Condition {_us(h.condition_unpinned)} µs "
        f"({compare(h.pipe_int_unpinned, h.condition_unpinned)}), threading.Event "
        f"{_us(h.event_unpinned)} µs ({compare(h.pipe_int_unpinned, h.event_unpinned)})",
        f"the order book instead of an int (pinned): {_us(h.pipe_book)} vs {_us(h.pipe_int)} µs, "
        f"+{_us(h.copy_cost)} µs of pickling and copying per round trip",
        f"mp.Pipe's own work (pickle, a length header, more system calls) over the OS alone: "
        f"+{_us(h.pipe_work)} µs (pinned)",
    ]


def step_lines(s: Step) -> list[str]:
    """The conclusion of this run: did process > thread hold, and which part of the step won."""
    lines = []
    if s.held is not None and s.fastest_process and s.fastest_thread:
        p, th = s.fastest_process, s.fastest_thread
        lines.append(
            f"section 2, one CPU, the event handed over: process > thread "
            f"{'held' if s.held else 'did not hold'} ({p.variant} {_us(p.median_us)} µs vs "
            f"{th.variant} {_us(th.median_us)} µs, {p.median_us / th.median_us:.1f}×)"
        )
    lines.append(
        f"the step from a thread switch ({_us(s.thread)} µs) to handing the event to a process "
        f"({_us(s.process)} µs), pinned: {s.total:+.3g} µs, made of"
    )
    lines += [
        f"  {PART_NAMES[part]}: {v:+.3g} µs ({s.share(part):.0%})" for part, v in s.parts.items()
    ]
    lines.append(f"largest part in this run: {PART_NAMES[s.largest]}")
    return lines
