"""The embedded broker against RabbitMQ, same aio-pika client, in one run.

    python benchmarks/broker.py                  # full run, a table
    python benchmarks/broker.py --quick --json   # < 60 s, JSON on stdout

Three client workloads, each with 100-byte transient messages on a fresh queue:

- ``publish``: ``exchange.publish`` without confirms, timed until the queue holds them all;
- ``publish_confirm``: a confirming channel, awaiting each publish's ack before the next;
- ``consume``: a consumer with manual ack (prefetch 100) draining the queue.

The embedded broker runs in a SEPARATE process (``python -m mqlab broker --port <free>``), so
the client and the broker don't take turns on one GIL; RabbitMQ is ``MQLAB_RABBITMQ_URL`` or
guest on loopback, skipped (``null``) when unreachable. Repeats alternate the two brokers so
background load hits both alike; each figure is the median. ``ratio`` is embedded/RabbitMQ:
the geometric mean of the three per-metric ratios (also given under ``ratios``). CPU shares
(client process, broker process) show which side is the bottleneck. Results also go to
benchmarks/results/broker.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import psutil
from tqdm.auto import tqdm

METRICS = ("publish", "publish_confirm", "consume")
BODY = b"x" * 100
PREFETCH = 100
RESULTS = Path(__file__).parent / "results" / "broker.json"
DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672/"


class CpuMeter:
    """CPU seconds of this (client) process and of the broker's process over one measurement."""

    def __init__(self, broker: psutil.Process | None) -> None:
        self.broker = broker

    def _broker_cpu(self) -> float:
        if self.broker is None:
            return math.nan
        try:
            times = self.broker.cpu_times()
        except psutil.Error:
            return math.nan
        return times.user + times.system

    def start(self) -> None:
        self.wall, self.client, self.server = time.perf_counter(), time.process_time(), None
        self.server = self._broker_cpu()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall
        broker_seconds = self._broker_cpu() - self.server
        return {
            "seconds": wall,
            "client_cpu": (time.process_time() - self.client) / wall,
            "broker_cpu": broker_seconds / wall,
            "broker_cpu_seconds": broker_seconds,
        }


async def _wait_count(channel: aio_pika.abc.AbstractChannel, name: str, want: int) -> None:
    while True:
        queue = await channel.declare_queue(name, passive=True)
        if queue.declaration_result.message_count == want:
            return
        await asyncio.sleep(0.001)


async def run_broker(url: str, n: int, n_confirm: int, cpu: CpuMeter) -> dict[str, dict]:
    """One round of the three workloads against one broker; msg/s and CPU shares for each."""
    out: dict[str, dict] = {}
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=False)
        queue = await channel.declare_queue(f"mqlab-bench-{uuid.uuid4().hex}", exclusive=True)

        cpu.start()
        for _ in range(n):
            await channel.default_exchange.publish(aio_pika.Message(BODY), queue.name)
        await _wait_count(channel, queue.name, n)
        out["publish"] = cpu.stop()
        out["publish"]["n"] = n

        consumer_channel = await connection.channel()
        await consumer_channel.set_qos(prefetch_count=PREFETCH)
        consumer_queue = await consumer_channel.get_queue(queue.name, ensure=False)
        done = asyncio.Event()
        seen = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            await message.ack()
            seen += 1
            if seen == n:
                done.set()

        cpu.start()
        tag = await consumer_queue.consume(on_message)
        await asyncio.wait_for(done.wait(), 300)
        await consumer_queue.cancel(tag)  # its cancel-ok comes after every ack is processed
        out["consume"] = cpu.stop()
        out["consume"]["n"] = n

        confirming = await connection.channel(publisher_confirms=True)
        cpu.start()
        for _ in range(n_confirm):
            await confirming.default_exchange.publish(aio_pika.Message(BODY), queue.name)
        out["publish_confirm"] = cpu.stop()
        out["publish_confirm"]["n"] = n_confirm
        await queue.delete(if_unused=False, if_empty=False)
    for row in out.values():
        row["rate"] = row["n"] / row["seconds"]
        row["broker_us"] = row["broker_cpu_seconds"] / row["n"] * 1e6
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def embedded_broker() -> Iterator[tuple[str, psutil.Process]]:
    """``python -m mqlab broker`` on a free port, in its own process."""
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mqlab", "broker", "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"embedded broker exited: {log.read().decode()[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("embedded broker did not listen within 20 s") from None
                    time.sleep(0.05)
            yield f"amqp://guest:guest@127.0.0.1:{port}/", psutil.Process(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def rabbitmq_process() -> psutil.Process | None:
    """The local RabbitMQ's Erlang VM (beam.smp), to read its CPU time; None if not found."""
    for process in psutil.process_iter(["name"]):
        if (process.info["name"] or "").startswith("beam"):
            return process
    return None


async def reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), 1).close()
        connection = await aio_pika.connect(url, timeout=5)
    except Exception:
        return False
    await connection.close()
    return True


def summarise(rounds: list[dict[str, dict]]) -> dict[str, dict[str, float]]:
    """Median rate (and CPU shares) per metric over the rounds."""
    return {
        metric: {
            key: statistics.median(r[metric][key] for r in rounds)
            for key in ("rate", "client_cpu", "broker_cpu", "broker_us")
        }
        for metric in METRICS
    }


def measure(args: argparse.Namespace) -> dict:
    n, n_confirm, repeats = (5_000, 2_000, 3) if args.quick else (20_000, 5_000, 5)
    rabbit_url = args.rabbitmq_url
    with embedded_broker() as (embedded_url, embedded_process):
        targets: dict[str, tuple[str, psutil.Process | None]] = {
            "embedded": (embedded_url, embedded_process)
        }
        if asyncio.run(reachable(rabbit_url)):
            targets["rabbitmq"] = (rabbit_url, rabbitmq_process())
        else:
            print(f"RabbitMQ not reachable at {rabbit_url}: embedded only", file=sys.stderr)
        rounds: dict[str, list] = {name: [] for name in targets}
        steps = tqdm(
            total=repeats * len(targets), desc="broker bench", unit="round", file=sys.stderr
        )
        for repeat in range(repeats):
            order = list(targets) if repeat % 2 == 0 else list(reversed(targets))
            for name in order:
                url, process = targets[name]
                rounds[name].append(asyncio.run(run_broker(url, n, n_confirm, CpuMeter(process))))
                steps.update()
        steps.close()

    summary = {name: summarise(r) for name, r in rounds.items()}
    embedded = {m: round(summary["embedded"][m]["rate"], 1) for m in METRICS}
    rabbitmq = (
        {m: round(summary["rabbitmq"][m]["rate"], 1) for m in METRICS}
        if "rabbitmq" in summary
        else None
    )
    ratios = {m: embedded[m] / rabbitmq[m] for m in METRICS} if rabbitmq else None
    ratio = math.prod(ratios.values()) ** (1 / len(ratios)) if ratios else None
    return {
        "embedded": embedded,
        "rabbitmq": rabbitmq,
        "ratio": None if ratio is None else round(ratio, 3),
        "ratios": None if ratios is None else {m: round(r, 3) for m, r in ratios.items()},
        "cpu": {
            name: {
                m: {
                    "client": round(s[m]["client_cpu"], 3),
                    "broker": round(s[m]["broker_cpu"], 3),
                }
                for m in METRICS
            }
            for name, s in summary.items()
        },
        "broker_cpu_us_per_message": {
            name: {m: round(s[m]["broker_us"], 1) for m in METRICS} for name, s in summary.items()
        },
        "spread": {
            name: {
                m: [round(min(x[m]["rate"] for x in r)), round(max(x[m]["rate"] for x in r))]
                for m in METRICS
            }
            for name, r in rounds.items()
        },
        "n": {"publish": n, "publish_confirm": n_confirm, "consume": n},
        "repeats": repeats,
        "quick": args.quick,
        "body_bytes": len(BODY),
        "note": (
            "same aio-pika client for both; embedded broker in a separate process "
            "(python -m mqlab broker), so client and broker don't share a GIL; medians of "
            "alternating repeats; ratio = geometric mean of embedded/rabbitmq per metric; "
            "cpu = CPU seconds per wall second (1.0 = one full core); spread = [min, max] msg/s "
            "over the repeats. On a busy machine single runs vary by +-30%: compare spreads. "
            "broker_cpu_us_per_message is less sensitive to that load (for RabbitMQ it is the "
            "whole beam.smp, so it includes anyone else's traffic on a shared server)"
        ),
        "python": platform.python_version(),
        "aio_pika": aio_pika.__version__,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "rabbitmq_url": rabbit_url if rabbitmq else None,
    }


def print_table(result: dict) -> None:
    print(f"\nmsg/s, median of {result['repeats']} (100 B messages; n = {result['n']})")
    print(
        f"{'metric':<18}{'embedded':>10}{'rabbitmq':>10}{'ratio':>8}"
        f"{'client cpu':>12}{'broker cpu':>12}"
    )
    for m in METRICS:
        rabbit = result["rabbitmq"][m] if result["rabbitmq"] else math.nan
        ratio = result["ratios"][m] if result["ratios"] else math.nan
        cpu = result["cpu"]["embedded"][m]
        print(
            f"{m:<18}{result['embedded'][m]:>10,.0f}{rabbit:>10,.0f}{ratio:>8.2f}"
            f"{cpu['client']:>12.2f}{cpu['broker']:>12.2f}"
        )
    if "rabbitmq" in result["cpu"]:
        print(
            "RabbitMQ CPU (client / beam.smp): "
            + ", ".join(
                f"{m} {c['client']:.2f}/{c['broker']:.2f}"
                for m, c in result["cpu"]["rabbitmq"].items()
            )
        )
    print(
        "broker CPU µs per message: "
        + "; ".join(
            f"{name} " + ", ".join(f"{m} {v:.0f}" for m, v in per.items())
            for name, per in result["broker_cpu_us_per_message"].items()
        )
    )
    overall = "n/a (no RabbitMQ)" if result["ratio"] is None else f"{result['ratio']:.2f}"
    print(f"ratio embedded/RabbitMQ (geometric mean of the three): {overall}")
    print(f"load average during the run: {result['load_average']} on {result['cpus']} CPUs")
    print("The embedded broker ran in a separate process (python -m mqlab broker).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small n, 3 repeats (< 60 s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--rabbitmq-url",
        default=os.environ.get("MQLAB_RABBITMQ_URL", DEFAULT_RABBITMQ),
        help="RabbitMQ to compare with (default: $MQLAB_RABBITMQ_URL or guest on loopback)",
    )
    args = parser.parse_args(argv)
    result = measure(args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
