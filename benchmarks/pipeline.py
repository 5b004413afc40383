"""The trading pipeline in-process, on the embedded broker and on RabbitMQ, in one run.

    python benchmarks/pipeline.py                  # full sample (4320 bars), 3 repeats, a table
    python benchmarks/pipeline.py --quick --json   # 800 bars, 1 repeat, JSON on stdout

Every variant runs the same SMA crossover on the same synthetic bars and must produce the
backtest's fills exactly (``same_fills``). Measured for each:

- ``events_per_s``: market events through the whole chain per second of wall time;
- ``latency_ms_p50`` / ``latency_ms_p99``: from a market event entering the system to an
  order it caused reaching the simulated exchange. In-process that is the engine taking the
  event off its heap → ``on_order``; over the bus, the market service publishing it →
  the exchange service receiving the order (two broker hops and the strategy in between).

Variants: ``in_process`` (the backtest engine, no broker); ``embedded`` (four services and the
broker in one process, what ``make demo`` runs); ``embedded_process`` (the embedded broker in
its own process, ``python -m mqlab broker``, as RabbitMQ always is); ``rabbitmq``
(``MQLAB_RABBITMQ_URL`` or guest on loopback; ``null`` when unreachable). Repeats alternate
the variants so background load hits all alike; figures are medians. ``ratios`` compare
embedded (own process, like for like) with RabbitMQ: >= 1 means the embedded broker is no
slower. Full runs (not ``--quick``) also write benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mqlab.pipeline import fill_rows, in_process_latency, run_pipeline
from mqlab.services.config import RunConfig

RESULTS = Path(__file__).parent / "results" / "pipeline.json"
DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


def in_process(config: RunConfig) -> dict[str, Any]:
    measured = in_process_latency(config)
    measured["same_fills"] = measured.pop("fills") == fill_rows(config.backtest().fills)
    return measured


async def over_bus(config: RunConfig, url: str | None, processes: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as out:
        result = await run_pipeline(
            config, url=url, out=Path(out), processes=processes, progress=False, plots=False
        )
    return {
        "events_per_s": result.events_per_s,
        "latency_ms_p50": result.latency(50),
        "latency_ms_p99": result.latency(99),
        "same_fills": bool(result.parity),
    }


@contextlib.contextmanager
def broker_process() -> Iterator[str]:
    """``python -m mqlab broker`` on a free port, in its own process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "mqlab", "broker", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("python -m mqlab broker did not start") from None
                time.sleep(0.05)
        yield f"amqp://guest:guest@127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(10)


def reachable(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 1).close()
    except OSError:
        return False
    return True


def _median(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not runs:
        return None
    keys = ("events_per_s", "latency_ms_p50", "latency_ms_p99")
    merged: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    merged["same_fills"] = all(r["same_fills"] for r in runs)
    return merged


def measure(quick: bool) -> dict[str, Any]:
    config = RunConfig(limit=800 if quick else None)
    repeats = 1 if quick else 3
    rabbit = os.environ.get("MQLAB_RABBITMQ_URL", DEFAULT_RABBITMQ)
    has_rabbit = reachable(rabbit)
    runs: dict[str, list[dict[str, Any]]] = {
        "in_process": [], "embedded": [], "embedded_process": [], "rabbitmq": []
    }  # fmt: skip
    steps = repeats * (3 + has_rabbit)
    with tqdm(total=steps, desc="pipeline benchmark", leave=False) as bar, broker_process() as url:
        for _ in range(repeats):
            runs["in_process"].append(in_process(config))
            bar.update()
            runs["embedded"].append(asyncio.run(over_bus(config, None)))
            bar.update()
            runs["embedded_process"].append(asyncio.run(over_bus(config, url)))
            bar.update()
            if has_rabbit:
                runs["rabbitmq"].append(asyncio.run(over_bus(config, rabbit)))
                bar.update()
    result: dict[str, Any] = {"events": len(config.events), "repeats": repeats}
    result |= {name: _median(r) for name, r in runs.items()}
    embedded, rabbitmq = result["embedded_process"], result["rabbitmq"]
    ratios = None
    if rabbitmq:
        e, r = embedded, rabbitmq
        ratios = {
            # > 1: the embedded broker moves more events per second
            "events_per_s_embedded_vs_rabbitmq": e["events_per_s"] / r["events_per_s"],
            # > 1: the embedded broker's latency is lower
            "latency_p50_rabbitmq_vs_embedded": r["latency_ms_p50"] / e["latency_ms_p50"],
            "latency_p99_rabbitmq_vs_embedded": r["latency_ms_p99"] / e["latency_ms_p99"],
        }
        ratios = {k: round(v, 3) for k, v in ratios.items()}
    result["ratios"] = ratios
    result["in_process_vs_embedded_events_per_s"] = round(
        result["in_process"]["events_per_s"] / result["embedded"]["events_per_s"], 1
    )
    result["goal_embedded_no_slower"] = (
        None if ratios is None else ratios["events_per_s_embedded_vs_rabbitmq"] >= 1.0
    )
    result["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    print(f"pipeline benchmark: {result['events']} bars, median of {result['repeats']} run(s)")
    print(f"{'variant':<18} {'events/s':>10} {'p50 ms':>9} {'p99 ms':>9}  same fills")
    for name in ("in_process", "embedded", "embedded_process", "rabbitmq"):
        row = result[name]
        if row is None:
            print(f"{name:<18} {'(RabbitMQ not reachable)':>30}")
            continue
        print(f"{name:<18} {row['events_per_s']:>10.0f} {row['latency_ms_p50']:>9.3f} "
              f"{row['latency_ms_p99']:>9.3f}  {row['same_fills']}")  # fmt: skip
    if result["ratios"]:
        for key, value in result["ratios"].items():
            print(f"{key}: {value}")
    print(f"in-process is {result['in_process_vs_embedded_events_per_s']}x the embedded bus")
    print(f"load average while measuring: {result['machine']['load_1min']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="800 bars, one repeat")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    result = measure(args.quick)
    if not args.quick:  # a quick run is a smoke test: it must not replace the full figures
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
