"""Switch cost of miniloop, asyncio and uvloop side by side, and what nest-asyncio2 costs.

    python benchmarks/loops.py            # full run: about 55 s on a shared 2-core machine
    python benchmarks/loops.py --quick    # about 6 s
    python benchmarks/loops.py --json out/loops.json   # also write the rows ("-" = stdout)

The same coroutine code (``concurrency_lab.loops.yield_pingpong`` and ``handoff``) runs on every
loop. Each repeat runs in a fresh interpreter (as chapter 06 does), so every loop runs in the
main thread with nothing else around, and repeats are interleaved so background load hits every
loop alike. Ratios are against stock asyncio measured in the same run; the ranking joins loops
with ``<`` only where their p10–p90 ranges do not overlap. uvloop is skipped when it is not
installed (it is a dependency of the course everywhere but on Windows).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from chapters import ch06
from concurrency_lab import QUICK, loops, nest_cost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=QUICK, help="small n, 5 repeats")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON ('-': stdout)")
    parser.add_argument("--no-nest", action="store_true", help="skip the nest-asyncio2 runs")
    args = parser.parse_args(argv)
    n, repeats = (20_000, 5) if args.quick else (100_000, 9)

    rows = loops.compare_loops(n, repeats, progress=True)
    print(
        f"\nSwitch cost, µs per switch (median of {repeats} fresh interpreters; n={n}; "
        f"Python {platform.python_version()})"
    )
    print(f"{'workload':<18}{'loop':<10}{'median':>9}{'p10':>9}{'p90':>9}{'x asyncio':>11}")
    for r in rows:
        print(
            f"{r['workload']:<18}{r['loop']:<10}{r['median_us']:>9.3f}{r['p10_us']:>9.3f}"
            f"{r['p90_us']:>9.3f}{r['vs_asyncio']:>11.2f}"
        )
    print("\nranking, fastest first ('<': p10-p90 ranges apart, '≈': they overlap):")
    print("\n".join(ch06.ranking_lines(loops.rank_loops(rows))))
    if "uvloop" not in loops.LOOPS:
        print("(uvloop is not installed: it does not exist on Windows)")

    nest: list[dict] = []
    if not args.no_nest:
        rounds = 2 if args.quick else 3
        nest = nest_cost.nest_asyncio_cost(*((5_000, 15) if args.quick else (50_000, 25)), rounds)
        plain, patched = nest
        table = nest_cost.nest_cost_table(plain, patched)
        print(f"\nnest-asyncio2: medians of {plain['samples']} samples a side ({rounds} rounds)")
        print(nest_cost.format_nest_cost(table))
        print("\n".join(ch06.nest_verdict_lines(nest_cost.nest_cost_verdicts(table))))
        print(f"nested run_until_complete: plain -> {plain['nested call']}")
        print(f"                           patched -> {patched['nested call']}")

    if args.json:
        payload = {
            "python": platform.python_version(),
            "quick": args.quick,
            "loops": rows,
            "nest_asyncio2": nest,
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(text)
            print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
