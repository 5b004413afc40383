"""Measurements that must run in a fresh interpreter, printed as JSON.

``python -m concurrency_lab.fresh steps|loop-samples|nest-cost [options]``: the chapters call
this through :func:`concurrency_lab._runner.run_fresh`, so that no notebook kernel (its running
loop, its threads) shares the interpreter with the timing.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from concurrency_lab.coroutines import step_costs
from concurrency_lab.loops import loop_samples
from concurrency_lab.nest_cost import nest_measure

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m concurrency_lab.fresh", description="print one measurement as JSON"
    )
    parser.add_argument("command", choices=["steps", "loop-samples", "nest-cost"])
    parser.add_argument("--n", type=int, default=20_000, help="steps or switches per sample")
    parser.add_argument("--repeats", type=int, default=5, help="samples per median")
    parser.add_argument("--rounds", type=int, default=1, help="loop-samples: interleaved rounds")
    parser.add_argument("--patched", action="store_true", help="nest-cost: apply nest_asyncio2")
    args = parser.parse_args(argv)
    if args.command == "steps":
        result: Any = step_costs(args.n, args.repeats, fresh=False)
    elif args.command == "loop-samples":
        result = loop_samples(args.n, args.rounds)
    else:
        result = nest_measure(args.n, args.repeats, args.patched)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
