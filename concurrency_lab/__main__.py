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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chapters import ch01, ch03
from concurrency_lab import QUICK, gil, handover, pingpong, switching, unit_costs


def _save(fig: Any, path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=120, bbox_inches="tight")
    print(f"plot written to {target.resolve()}")


def _bench(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    results = switching.run_switch_costs(
        args.quick,
        pin=not args.no_pin,
        # disable=None: a bar on a terminal, nothing in a log file or a pipe
        progress=lambda turns: tqdm(
            turns, desc="switch costs", unit="repeat", file=sys.stderr, disable=None
        ),
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
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        ax = switching.plot_switch_costs(results)
        _save(ax.figure, args.plot)


def _like_for_like(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    frame = handover.like_for_like(
        args.quick,
        progress=lambda turns: tqdm(
            turns, desc="like for like", unit="repeat", file=sys.stderr, disable=None
        ),
    )
    if args.json:
        print(frame.to_json(orient="records"))
        return
    print(frame.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print()
    print("\n".join(ch03.hand_over_lines(handover.hand_over(frame))))


def _memory(args: argparse.Namespace) -> None:
    results = unit_costs.memory_per_unit(args.quick)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
        return
    for r in results:
        print(f"{r.unit:<22} {r.kib_per_unit:>10,.2f} KiB each  (n={r.count:,}; {r.how})")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        _save(unit_costs.plot_memory(results).figure, args.plot)


def _gil(args: argparse.Namespace) -> None:
    frame = gil.compare(quick=args.quick)
    if args.json:
        print(frame.to_json(orient="records"))
        return
    print(frame.to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    print()
    print("\n".join(ch01.verdict_lines(gil.verdicts(frame))))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        _save(gil.plot_speedups(frame).figure, args.plot)


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
