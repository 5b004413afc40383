"""The embedded broker against RabbitMQ, same aio-pika client, in one run.

    python benchmarks/broker.py                  # full run, a table
    python benchmarks/broker.py --quick --json   # < 60 s, JSON on stdout

Client workloads, each with 100-byte messages on a fresh queue:

- ``publish``: ``exchange.publish`` without confirms, timed until the queue holds them all;
- ``publish_confirm``: a confirming channel, awaiting each publish's ack before the next;
- ``consume``: a consumer with manual ack (prefetch 100) draining the queue;
- ``confirm_burst``: 10,000 confirming publishes in flight at once (``asyncio.gather``),
  transient messages;
- ``confirm_burst_disk``: the same with persistent messages to a durable queue. On RabbitMQ
  that is its message store; the embedded broker runs a second process with ``--data-dir``
  for it, so every confirm waits for an fsync.

One warm-up round per broker runs first and is discarded (connection set-up, caches, the
JIT-less interpreter's first-time costs would otherwise land in the first repeat).

The embedded broker runs in a SEPARATE process (``python -m mqlab broker --port <free>``), so
the client and the broker don't take turns on one GIL; RabbitMQ is ``MQLAB_RABBITMQ_URL`` or
guest on loopback, skipped (``null``) when unreachable; its CPU is read from the process that
listens on the URL's port (found with psutil), not from whichever ``beam`` process comes first.
Repeats alternate the two brokers so background load hits both alike; each figure is the
median. ``ratio`` is embedded/RabbitMQ: the geometric mean of the first three per-metric
ratios (all are under ``ratios``). CPU shares (client process, broker process) show which
side is the bottleneck. Results also go to benchmarks/results/broker.json.
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

RATIO_METRICS = ("publish", "publish_confirm", "consume")
BURST_METRICS = ("confirm_burst", "confirm_burst_disk")
METRICS = RATIO_METRICS + BURST_METRICS
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
    _rates(out)
    return out


def _rates(rows: dict[str, dict]) -> None:
    for row in rows.values():
        row["rate"] = row["n"] / row["seconds"]
        row["broker_us"] = row["broker_cpu_seconds"] / row["n"] * 1e6


async def run_burst(url: str, n: int, persistent: bool, cpu: CpuMeter) -> dict:
    """``n`` confirming publishes in flight together; persistent ones go to a durable queue."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        name = f"mqlab-bench-burst-{uuid.uuid4().hex}"
        queue = await channel.declare_queue(name, durable=persistent, exclusive=not persistent)
        mode = (
            aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
        )
        try:
            cpu.start()
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(BODY, delivery_mode=mode), queue.name
                    )
                    for _ in range(n)
                )
            )
            row = cpu.stop()
        finally:
            await queue.delete(if_unused=False, if_empty=False)
    row["n"] = n
    return row


async def run_round(
    urls: tuple[str, str], n: int, n_confirm: int, n_burst: int, cpus: tuple[CpuMeter, CpuMeter]
) -> dict[str, dict]:
    """Every workload once; ``urls``/``cpus``: (plain broker, broker with a data dir)."""
    out = await run_broker(urls[0], n, n_confirm, cpus[0])
    out["confirm_burst"] = await run_burst(urls[0], n_burst, False, cpus[0])
    out["confirm_burst_disk"] = await run_burst(urls[1], n_burst, True, cpus[1])
    _rates({m: out[m] for m in BURST_METRICS})
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def embedded_broker(data_dir: str | None = None) -> Iterator[tuple[str, psutil.Process]]:
    """``python -m mqlab broker`` on a free port, in its own process."""
    port = _free_port()
    command = [sys.executable, "-m", "mqlab", "broker", "--host", "127.0.0.1", "--port", str(port)]
    if data_dir is not None:
        command += ["--data-dir", data_dir]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
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


def rabbitmq_process(url: str) -> psutil.Process | None:
    """The process listening on ``url``'s port (RabbitMQ's beam.smp), for its CPU time.

    None when it cannot be found (a remote host, or no permission to see other users'
    sockets): CPU figures are then NaN rather than another process's.
    """
    parts = urlsplit(url)
    port = parts.port or 5672
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            listening = conn.status == psutil.CONN_LISTEN and conn.laddr
            if listening and conn.laddr.port == port and conn.pid is not None:
                return psutil.Process(conn.pid)
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
    n_burst = 10_000
    rabbit_url = args.rabbitmq_url
    with (
        tempfile.TemporaryDirectory(prefix="mqlab-bench-") as data_dir,
        embedded_broker() as (embedded_url, embedded_process),
        embedded_broker(data_dir) as (disk_url, disk_process),
    ):
        Target = tuple[tuple[str, str], tuple[psutil.Process | None, psutil.Process | None]]
        targets: dict[str, Target] = {
            "embedded": ((embedded_url, disk_url), (embedded_process, disk_process))
        }
        if asyncio.run(reachable(rabbit_url)):
            beam = rabbitmq_process(rabbit_url)
            targets["rabbitmq"] = ((rabbit_url, rabbit_url), (beam, beam))
        else:
            print(f"RabbitMQ not reachable at {rabbit_url}: embedded only", file=sys.stderr)
        rounds: dict[str, list] = {name: [] for name in targets}
        steps = tqdm(
            total=(repeats + 1) * len(targets), desc="broker bench", unit="round", file=sys.stderr
        )
        for repeat in range(-1, repeats):  # -1: the warm-up round, not recorded
            order = list(targets) if repeat % 2 == 0 else list(reversed(targets))
            for name in order:
                urls, processes = targets[name]
                cpus = (CpuMeter(processes[0]), CpuMeter(processes[1]))
                if repeat < 0:
                    asyncio.run(run_round(urls, n // 5, n_confirm // 5, n_burst // 5, cpus))
                else:
                    rounds[name].append(asyncio.run(run_round(urls, n, n_confirm, n_burst, cpus)))
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
    ratio = (
        math.prod(ratios[m] for m in RATIO_METRICS) ** (1 / len(RATIO_METRICS)) if ratios else None
    )
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
        "n": {
            "publish": n,
            "publish_confirm": n_confirm,
            "consume": n,
            "confirm_burst": n_burst,
            "confirm_burst_disk": n_burst,
        },
        "burst_seconds": {
            name: {m: round(n_burst / s[m]["rate"], 2) for m in BURST_METRICS}
            for name, s in summary.items()
        },
        "repeats": repeats,
        "quick": args.quick,
        "body_bytes": len(BODY),
        "note": (
            "same aio-pika client for both; embedded broker in a separate process "
            "(python -m mqlab broker), so client and broker don't share a GIL; one warm-up "
            "round discarded, then medians of alternating repeats; ratio = geometric mean of "
            "embedded/rabbitmq over publish, publish_confirm, consume; confirm_burst* = "
            "10,000 confirms in flight, *_disk = persistent to a durable queue (embedded: a "
            "second broker process with --data-dir); "
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
    print(
        "10,000 confirms in flight, seconds: "
        + "; ".join(
            f"{name} " + ", ".join(f"{m} {v:.2f}" for m, v in per.items())
            for name, per in result["burst_seconds"].items()
        )
    )
    print(f"ratio embedded/RabbitMQ (geometric mean of the first three): {overall}")
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
