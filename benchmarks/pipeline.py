"""The trading pipeline in-process and over the bus, on the embedded broker and on RabbitMQ.

    python benchmarks/pipeline.py                  # full sample (4320 bars), 3 repeats, a table
    python benchmarks/pipeline.py --quick --json   # 800 bars, 1 repeat, JSON on stdout

Every variant runs the same SMA crossover on the same synthetic bars and must produce the
backtest's fills exactly (``same_fills``). Measured for each:

- ``events_per_s``: market events through the whole chain per second of wall time;
- ``latency_ms_p50`` / ``latency_ms_p99``: from a market event entering the system to an
  order it caused reaching the simulated exchange. In-process that is the engine taking the
  event off its heap → ``on_order``; over the bus, the market service publishing it →
  the exchange service receiving the order (two broker hops and the strategy in between);
- ``messages_per_event``: messages the services published, and the broker delivered to
  them, per market event (``total`` is both);
- ``ceiling_share``: the pipeline's broker messages per second (published + delivered) as a
  share of what the same broker and aio-pika move with nothing else to do (one publisher
  with confirms in flight, one consumer acking), measured in this run (``ceiling``).

Like for like, every broker keeps messages on disk: the embedded broker runs with a data
directory (as ``make demo`` does), RabbitMQ with its durable queues and persistent messages.
Variants: ``in_process`` (the backtest engine, no broker); ``embedded`` (what ``make demo``
runs: four services in one process, the broker it starts with a data dir in another);
``embedded_batch8`` (``--batch 8``: eight events per message); ``embedded_paced`` (the market
publishing 500 events/s, as a live feed arrives: latency without queueing);
``embedded_process`` (the same with a broker started by hand, ``python -m mqlab broker
--data-dir``); ``embedded_processes`` (``--processes``: broker and each service in its own
process) and ``embedded_processes_window32`` (the same with ``--window 32``); ``rabbitmq``
and ``rabbitmq_processes`` (``MQLAB_RABBITMQ_URL`` or guest on loopback;
``null`` when unreachable). Each variant is warmed up once; repeats alternate the variants so
background load hits all alike; figures are medians. ``targets`` checks the issue's "must
reach" figures on the default settings (window 16, one event per message) unless a row says
otherwise. Full runs (not ``--quick``) also write benchmarks/results/pipeline.json.
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

from mqlab.config import RunConfig
from mqlab.connection import listening
from mqlab.loop import loop_name
from mqlab.loop import run as run_loop
from mqlab.pipeline import embedded_broker, fill_rows, in_process_latency, run_pipeline
from mqlab.services.protocol import DEFAULT_WINDOW

RESULTS = Path(__file__).parent / "results" / "pipeline.json"
DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


def in_process(config: RunConfig) -> dict[str, Any]:
    measured = in_process_latency(config)
    measured["same_fills"] = measured.pop("fills") == fill_rows(config.backtest().fills)
    return measured


async def over_bus(
    config: RunConfig,
    url: str,
    processes: bool = False,
    *,
    batch: int = 1,
    speed: float = 0.0,
    window: int = DEFAULT_WINDOW,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as out:
        result = await run_pipeline(
            config, url=url, out=Path(out), processes=processes, progress=False, plots=False,
            batch=batch, speed=speed, window=window,
        )  # fmt: skip
    return {
        "events_per_s": result.events_per_s,
        "latency_ms_p50": result.latency(50),
        "latency_ms_p99": result.latency(99),
        "same_fills": bool(result.parity),
        "messages_per_event": result.messages_per_event,
        "messages_per_s": (result.published + result.delivered) / result.elapsed,
    }


def embedded_demo(config: RunConfig, **knobs: Any) -> dict[str, Any]:
    """What ``make demo`` runs: the services in this process, and the embedded broker it
    starts in a process of its own, with a data dir."""
    with tempfile.TemporaryDirectory() as data, embedded_broker(Path(data)) as url:
        return run_loop(over_bus(config, url, **knobs))


async def ceiling(url: str, n: int) -> float:
    """Broker messages per second (published + delivered) with nothing else to do: one
    publisher keeping 100 confirms in flight, one consumer acking, persistent messages,
    through the same client path as the bus (aiormq's publish and consumer, on this loop)."""
    import aiormq

    connection = await aiormq.connect(url)
    try:
        publisher = await connection.channel(publisher_confirms=True)
        consumer = await connection.channel()
        await consumer.basic_qos(prefetch_count=256)
        name = f"bench.ceiling.{os.getpid()}.{time.monotonic_ns()}"
        await consumer.queue_declare(name, durable=True)
        got = 0
        finished = asyncio.get_running_loop().create_future()

        async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
            nonlocal got
            assert message.delivery_tag is not None
            await consumer.basic_ack(message.delivery_tag)
            got += 1
            if got == n and not finished.done():
                finished.set_result(None)

        started = time.perf_counter()
        ok = await consumer.basic_consume(name, on_message)
        body = b"x" * 550  # about a market event's size
        persistent = aiormq.spec.Basic.Properties(delivery_mode=2)
        for chunk in range(0, n, 100):
            await asyncio.gather(*(
                publisher.basic_publish(body, routing_key=name, properties=persistent)
                for _ in range(min(100, n - chunk))
            ))  # fmt: skip
        await asyncio.wait_for(finished, 120)
        elapsed = time.perf_counter() - started
        await consumer.basic_cancel(ok.consumer_tag)
        await consumer.queue_delete(name)
        return 2 * n / elapsed
    finally:
        await connection.close()


@contextlib.contextmanager
def broker_process(data_dir: str) -> Iterator[str]:
    """``python -m mqlab broker --data-dir`` on a free port, in its own process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [sys.executable, "-m", "mqlab", "broker", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*argv, "--data-dir", data_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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


BUS_ROWS = ("embedded", "embedded_batch8", "embedded_paced", "embedded_process",
            "embedded_processes", "embedded_processes_window32", "rabbitmq",
            "rabbitmq_processes")  # fmt: skip
#: ``embedded_paced``: the market publishes at this many events a second (about a third of
#: what the pipeline can take), the way a live feed arrives. Flat out, an event's latency is
#: mostly the time it queues behind the window's other events (Little's law: about
#: window / throughput); paced, it is the pipeline's own: two broker hops and the strategy.
PACED_EVENTS_PER_S = 500
#: The issue's "must reach" figures: (row, figure, "min" or "max", bound).
TARGETS = [
    ("embedded", "events_per_s", "min", 1000),
    ("embedded_processes", "events_per_s", "min", 1500),
    ("rabbitmq", "events_per_s", "min", 1000),
    ("embedded", "messages_per_event", "max", 3),
    ("embedded_batch8", "messages_per_event", "max", 3),
    ("embedded", "latency_ms_p99", "max", 10),
    ("embedded_paced", "latency_ms_p99", "max", 10),
]


def paced(config: RunConfig) -> dict[str, Any]:
    """``embedded`` with the market publishing ``PACED_EVENTS_PER_S`` (1m bars: 60 s each)."""
    return embedded_demo(config, speed=PACED_EVENTS_PER_S * 60)


def check(row: dict[str, Any] | None, figure: str, kind: str, bound: float) -> bool | None:
    if row is None:
        return None
    value = row[figure]["total"] if figure == "messages_per_event" else row[figure]
    return bool(value >= bound if kind == "min" else value <= bound)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not runs:
        return None
    keys = [k for k in ("events_per_s", "latency_ms_p50", "latency_ms_p99", "messages_per_s")
            if k in runs[0]]  # fmt: skip
    merged: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    merged["same_fills"] = all(r["same_fills"] for r in runs)
    if "messages_per_event" in runs[0]:
        merged["messages_per_event"] = runs[len(runs) // 2]["messages_per_event"]
    return merged


def measure(quick: bool) -> dict[str, Any]:
    load_start = round(os.getloadavg()[0], 2)
    config = RunConfig(limit=800 if quick else None)
    warm = RunConfig(limit=200)
    repeats = 1 if quick else 3
    rabbit = os.environ.get("MQLAB_RABBITMQ_URL", DEFAULT_RABBITMQ)
    has_rabbit = listening(rabbit)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ("in_process", *BUS_ROWS)}
    ceilings: dict[str, list[float]] = {"embedded": [], "rabbitmq": []}
    with tempfile.TemporaryDirectory() as data, broker_process(data) as url:
        variants: dict[str, Any] = {
            "in_process": lambda c: in_process(c),
            "embedded": lambda c: embedded_demo(c),
            "embedded_batch8": lambda c: embedded_demo(c, batch=8),
            "embedded_paced": paced,
            "embedded_process": lambda c: run_loop(over_bus(c, url)),
            "embedded_processes": lambda c: run_loop(over_bus(c, url, processes=True)),
            # The window is the knob between throughput and latency (Little's law): with
            # each service on its own process, twice the default keeps more of them busy.
            "embedded_processes_window32": lambda c: run_loop(
                over_bus(c, url, processes=True, window=32)
            ),
        }
        if has_rabbit:
            variants["rabbitmq"] = lambda c: run_loop(over_bus(c, rabbit))
            variants["rabbitmq_processes"] = lambda c: run_loop(over_bus(c, rabbit, processes=True))
        brokers = {"embedded": url} | ({"rabbitmq": rabbit} if has_rabbit else {})
        n = 2000 if quick else 10_000
        steps = len(variants) * (repeats + 1) + len(brokers) * (repeats + 1)
        with tqdm(total=steps, desc="pipeline benchmark", leave=False) as bar:
            for run in variants.values():  # warm-up: imports, caches, broker files
                run(warm)
                bar.update()
            for broker_url in brokers.values():
                run_loop(ceiling(broker_url, n // 10))
                bar.update()
            for _ in range(repeats):
                for name, run in variants.items():
                    runs[name].append(run(config))
                    bar.update()
                for name, broker_url in brokers.items():
                    ceilings[name].append(run_loop(ceiling(broker_url, n)))
                    bar.update()
    result: dict[str, Any] = {"events": len(config.events), "repeats": repeats}
    result |= {name: _median(r) for name, r in runs.items()}
    result["ceiling_messages_per_s"] = {
        k: round(statistics.median(v)) for k, v in ceilings.items() if v
    }
    for name in BUS_ROWS:
        row, broker = result[name], name.split("_")[0]
        if row is not None and broker in result["ceiling_messages_per_s"]:
            row["ceiling_share"] = round(
                row["messages_per_s"] / result["ceiling_messages_per_s"][broker], 3
            )
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
    result["targets"] = {
        f"{row}.{figure}{'>=' if kind == 'min' else '<='}{bound}": check(
            result[row], figure, kind, bound
        )
        for row, figure, kind, bound in TARGETS
    }
    result["paced_events_per_s"] = PACED_EVENTS_PER_S
    result["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_1min_start": load_start,
        "load_1min": round(os.getloadavg()[0], 2),
        "event_loop": loop_name(),
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    print(f"pipeline benchmark: {result['events']} bars, median of {result['repeats']} run(s)")
    print(f"{'variant':<20} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'msgs/event':>11} "
          f"{'of ceiling':>10}  same fills")  # fmt: skip
    for name in ("in_process", *BUS_ROWS):
        row = result[name]
        if row is None:
            print(f"{name:<20} {'(RabbitMQ not reachable)':>30}")
            continue
        per = row.get("messages_per_event", {}).get("total")
        share = row.get("ceiling_share")
        print(f"{name:<20} {row['events_per_s']:>9.0f} {row['latency_ms_p50']:>8.2f} "
              f"{row['latency_ms_p99']:>8.2f} {'' if per is None else per:>11} "
              f"{'' if share is None else f'{share:.0%}':>10}  {row['same_fills']}")  # fmt: skip
    ceilings = result["ceiling_messages_per_s"]
    print(f"broker ceilings (messages/s, published + delivered): {ceilings}")
    if result["ratios"]:
        for key, value in result["ratios"].items():
            print(f"{key}: {value}")
    print(f"in-process is {result['in_process_vs_embedded_events_per_s']}x the embedded bus")
    for target, ok in result["targets"].items():
        print(f"must reach {target}: {'yes' if ok else 'NO' if ok is False else 'not measured'}")
    print(f"load average while measuring: {result['machine']['load_1min']}")


#: How docs/benchmarks.md names each row.
LABELS = {
    "in_process": "in-process backtest (no broker)",
    "embedded": "`make demo`: services in one process, embedded broker in its own",
    "embedded_batch8": "the same, `--batch 8` (8 events per message)",
    "embedded_paced": "the same, market paced at {paced} events/s (a live feed)",
    "embedded_process": "the same, broker started by hand",
    "embedded_processes": "embedded broker, `--processes`",
    "embedded_processes_window32": "the same, `--window 32` (default 16)",
    "rabbitmq": "RabbitMQ, one process",
    "rabbitmq_processes": "RabbitMQ, `--processes`",
}


def markdown(result: dict[str, Any]) -> str:
    """docs/benchmarks.md's table, from a result (so no figure there is typed by hand)."""
    lines = [
        "| variant | events/s | p50 ms | p99 ms | broker messages per bar "
        "(published + delivered) | of which market / orders / sync | share of the broker's "
        "ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("in_process", *BUS_ROWS):
        row = result.get(name)
        label = LABELS[name].format(paced=result.get("paced_events_per_s", PACED_EVENTS_PER_S))
        if row is None:
            lines.append(f"| {label} | not measured | | | | | |")
            continue
        per = row.get("messages_per_event")
        msgs = f"{per['total']} ({per['published']} + {per['delivered']})" if per else ""
        groups = (per or {}).get("by_group")
        split = " / ".join(str(groups[g]) for g in ("market", "orders", "sync")) if groups else ""
        share = row.get("ceiling_share")
        lines.append(
            f"| {label} | {row['events_per_s']:,.0f} | {row['latency_ms_p50']:.2f} | "
            f"{row['latency_ms_p99']:.2f} | {msgs} | {split} | "
            f"{'' if share is None else f'{share:.0%}'} |"
        )
    ceilings = ", ".join(f"{k} {v:,}" for k, v in result["ceiling_messages_per_s"].items())
    lines.append("")
    lines.append(f"Broker ceilings, messages/s (published + delivered): {ceilings}.")
    verdicts = {True: "holds", False: "**not met**", None: "not measured"}
    lines.append("")
    lines.append("| must reach | |")
    lines.append("|---|---|")
    lines += [f"| `{target}` | {verdicts[ok]} |" for target, ok in result["targets"].items()]
    machine = result["machine"]
    rows = [result[name] for name in ("in_process", *BUS_ROWS) if result.get(name)]
    parity = "made" if all(row["same_fills"] for row in rows) else "did NOT make"
    lines.append("")
    lines.append(
        f"{result['events']} bars, median of {result['repeats']} interleaved runs after a "
        f"warm-up; {machine['cpus']} cores, load average "
        f"{machine.get('load_1min_start', '?')} at the start and {machine['load_1min']} at "
        "the end, "
        f"Python {machine['python']}, {machine.get('event_loop', 'asyncio')}; every row "
        f"{parity} the backtest's fills."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="800 bars, one repeat")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help=f"measure nothing: print docs/benchmarks.md's table from {RESULTS.name}",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        if not RESULTS.exists():
            parser.error(f"{RESULTS} does not exist yet: run python benchmarks/pipeline.py first")
        print(markdown(json.loads(RESULTS.read_text())))
        return 0
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
