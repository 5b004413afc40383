"""Command line: ``python -m concurrency_lab COMMAND [--quick] [--json] [--plot FILE]``.

``bench``          round trip per switch for processes, threads, coroutines and generators;
``like-for-like``  what that ordering is made of: the OS switch alone for a thread and for a
                   process, ``mp.Pipe`` with a bare int and with the order book, pinned or not;
``memory``         memory per idle process, thread, task and generator;
``gil``            CPU- and IO-bound jobs run serially, with threads, processes and asyncio.

``--json`` prints machine-readable results only (a JSON list) on stdout; progress goes to
stderr. ``--quick`` (or ``LAB_QUICK=1``) is the setting the tests and chapters use.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chapters import ch01, ch03
from concurrency_lab import QUICK, handover, pingpong, speedups, switching, unit_costs

if TYPE_CHECKING:
    import pandas as pd


def _progress(desc: str) -> Callable[[Iterable[int]], Iterable[int]]:
    """A progress bar over the repeats, on stderr so that --json output stays clean."""
    from tqdm import tqdm

    # disable=None: a bar on a terminal, nothing in a log file or a pipe
    return lambda turns: tqdm(turns, desc=desc, unit="repeat", file=sys.stderr, disable=None)


def _plot(args: argparse.Namespace, figure: Callable[[], Any]) -> None:
    """With --plot FILE (and not --json), draw ``figure()`` off-screen and save it to FILE."""
    if not args.plot or args.json:
        return
    import matplotlib

    matplotlib.use("Agg")
    target = Path(args.plot)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure().savefig(target, dpi=120, bbox_inches="tight")
    print(f"plot written to {target.resolve()}")


def _print_frame(args: argparse.Namespace, frame: pd.DataFrame, lines: list[str]) -> None:
    """A measured frame as JSON (--json), or as a table followed by what it shows."""
    if args.json:
        print(frame.to_json(orient="records"))
        return
    print(frame.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print()
    print("\n".join(lines))


def _bench(args: argparse.Namespace) -> None:
    results = switching.run_switch_costs(
        args.quick, pin=not args.no_pin, progress=_progress("switch costs")
    )
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=1))
        return
    cpu = results[0].cpu
    where = f"both partners pinned to CPU {cpu}" if cpu is not None else "not pinned"
    size = len(pickle.dumps(pingpong.ORDER_BOOK))
    print(
        f"Round trip per switch ({'quick' if args.quick else 'full'} setting, {where}; the "
        f"message is a {size}-byte order-book event, pickled for processes):\n"
    )
    print(switching.format_table(results))
    print()
    print("\n".join(ch03.ordering_lines(switching.ordering(results))))
    _plot(args, lambda: switching.plot_switch_costs(results).figure)


def _like_for_like(args: argparse.Namespace) -> None:
    frame = handover.like_for_like(args.quick, progress=_progress("like for like"))
    _print_frame(args, frame, ch03.hand_over_lines(handover.hand_over(frame)))


def _memory(args: argparse.Namespace) -> None:
    results = unit_costs.memory_per_unit(args.quick)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
        return
    for r in results:
        print(f"{r.unit:<22} {r.kib_per_unit:>10,.2f} KiB each  (n={r.count:,}; {r.how})")
    _plot(args, lambda: unit_costs.plot_memory(results).figure)


def _gil(args: argparse.Namespace) -> None:
    frame = speedups.compare(quick=args.quick)
    _print_frame(args, frame, ch01.verdict_lines(speedups.verdicts(frame)))
    _plot(args, lambda: speedups.plot_speedups(frame).figure)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m concurrency_lab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run, text in [
        ("bench", _bench, "round trip per switch: process > thread > coroutine > generator?"),
        ("like-for-like", _like_for_like, "the OS switch alone, thread vs process; pinned or not"),
        ("memory", _memory, "memory per idle process, thread, task and generator"),
        ("gil", _gil, "CPU- vs IO-bound jobs: serial, threads, processes, asyncio"),
    ]:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--quick", action="store_true", default=QUICK, help="short runs")
        sub.add_argument("--json", action="store_true", help="print JSON only")
        if name != "like-for-like":
            sub.add_argument("--plot", metavar="FILE", help="also save a figure to FILE")
        if name == "bench":
            sub.add_argument(
                "--no-pin", action="store_true", help="let the OS spread partners over CPUs"
            )
        sub.set_defaults(run=run)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
