"""Market data service (行情服务): replays klines, order books and trades onto the bus.

This is aioquant's market module, made reliable and replayable. Each event goes to the
``market`` topic exchange under its aioquant-style routing key, with the kline interval that
aioquant left out (``kline.binance.BTCUSDT.1m``), as a persistent, confirmed message whose
``message_id`` is the event's stable id and whose ``x-seq`` header numbers the step.

Pacing: ``--speed 0`` replays as fast as the pipeline can take it, ``--speed 1`` in real time
(by the events' receive times), ``--speed 60`` an hour a minute. ``--window W`` is flow
control: step N is published only when the exchange service has matched step N-W, so the
latency the pipeline reports is the bus's, not time spent queueing behind a flood.

The service journals what it published, so a restart resumes with the next step.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mqlab.bus import Bus, Delivery
from mqlab.events import MarketEvent, encode, encode_batch, routing_key
from mqlab.services._runtime import (
    Journal,
    Outgoing,
    Service,
)
from mqlab.services.options import ServiceOptions
from mqlab.services.protocol import (
    DEFAULT_WINDOW,
    END_KEY,
    EXCHANGE_END,
    EXCHANGE_STEP,
    EXECUTION,
    HEADER_COUNT,
    HEADER_SENT,
    HEADER_SEQ,
    HEADER_WINDOW,
    MARKET,
    PAUSE_KEY,
    default_queues,
    parse_control,
)

__all__ = ["MarketService", "add_arguments", "default_queues", "run"]


class MarketService(Service):
    """Publish the run's events as steps 1..n, then ``control.end`` as step n+1, once every
    queue in ``wait_for`` (by default the options' consumer queues) has a consumer."""

    name = "market"

    def __init__(
        self,
        bus: Bus,
        options: ServiceOptions,
        journal: Journal | None = None,
        *,
        wait_for: Sequence[str] = (),
        wait_timeout: float = 60.0,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(bus, journal)
        window, batch = options.window, options.batch
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if not 1 <= batch <= window:
            raise ValueError(f"batch must be between 1 and the window ({window}), got {batch}")
        self.events: list[MarketEvent] = list(options.config.events)
        self.speed = options.speed
        self.window = window
        #: Market events per message (consecutive ones with the same routing key). 1, one
        #: event per message, is how aioquant and this chapter teach it; more is the knob an
        #: exchange's own stream turns (Binance sends depth updates in batches too).
        self.batch = batch
        self.wait_for = list(wait_for) or options.consumer_queues
        self.wait_timeout = wait_timeout
        self.on_wait = on_wait
        self.published = 0  # last step published
        self.matched = 0  # last step the exchange service reported matched
        self.ended = False

    @property
    def total(self) -> int:
        return len(self.events)

    def apply(self, record: dict[str, Any]) -> list[Outgoing]:
        if record["kind"] == "matched":
            self.matched = max(self.matched, record["seq"])
            return []
        seq = record["seq"]
        headers = {HEADER_SEQ: seq, HEADER_SENT: record["sent_ns"], HEADER_WINDOW: self.window}
        self.published = max(self.published, seq)
        if record["kind"] == "end":
            self.ended = True
            return [Outgoing(MARKET, END_KEY, b"{}", f"end.{seq}", headers, type="end")]
        if record["kind"] == "pause":
            body = json.dumps({"kind": "pause", "after": seq}).encode()
            return [Outgoing(MARKET, PAUSE_KEY, body, record["id"], headers, type="pause")]
        count = record.get("count", 1)
        self.published = max(self.published, seq + count - 1)
        event = self.events[seq - 1]
        key = routing_key(event)
        if count == 1:
            return [Outgoing(MARKET, key, encode(event), event.id, headers, "market")]
        body = encode_batch(self.events[seq - 1 : seq - 1 + count])
        headers[HEADER_COUNT] = count
        return [Outgoing(MARKET, key, body, f"{event.id}+{count}", headers, "market")]

    def _count(self, seq: int) -> int:
        """How many events from step ``seq`` on go in one message (same routing key)."""
        key = routing_key(self.events[seq - 1])
        count = 1
        while (
            count < self.batch
            and seq + count <= self.total
            and routing_key(self.events[seq + count - 1]) == key
        ):
            count += 1
        return count

    async def on_step(self, delivery: Delivery) -> None:
        data = parse_control(delivery.body, kind=str)
        field = "seq" if data["kind"] == "step" else "after"
        seq = parse_control(delivery.body, **{field: int})[field]
        await self.commit({"id": delivery.message_id, "kind": "matched", "seq": seq})

    async def run(self) -> int:
        """Publish every remaining step; return how many this run published."""
        await self.recover()
        await self.bus.subscribe(
            "market.progress",
            [(EXECUTION, EXCHANGE_STEP), (EXECUTION, EXCHANGE_END)],
            self.on_step,
            seen=self.applied,
        )
        await self.bus.wait_for_consumers(self.wait_for, self.wait_timeout, self.on_wait)
        start, sent = self.published, 0
        clock = _Pacer(self.speed, self.events[start].recv_ts if start < self.total else 0)
        seq = start + 1
        while seq <= self.total:
            count = self._count(seq)
            await self.wait_until(self._may_publish(seq + count - 1))
            if self.stopping.is_set():
                break
            await clock.wait(self.events[seq + count - 2].recv_ts)
            record = {"id": f"pub.{seq}", "kind": "pub", "seq": seq, "sent_ns": _now()}
            await self.commit(record | ({"count": count} if count > 1 else {}))
            sent += count
            seq += count
        if self.stopping.is_set():
            # Ctrl-C: tell the others to finish what was published, then stop; a restart
            # resumes with the next step.
            pause = f"pause.{self.published}.{_now()}"
            await self.commit({"id": pause, "kind": "pause", "seq": self.published, "sent_ns": 0})
            # Stay for the exchange's last step markers: the broker may not outlive this run
            # (an in-memory embedded broker), and the next run starts from what we journal.
            await self.wait_until(lambda: self.matched >= self.published)
        elif not self.ended:
            seq = self.total + 1
            await self.commit({"id": f"pub.{seq}", "kind": "end", "seq": seq, "sent_ns": _now()})
        await self.drain()  # every publish confirmed before the connection closes
        self.finished.set()
        return sent

    def _may_publish(self, seq: int) -> Callable[[], bool]:
        return lambda: self.stopping.is_set() or seq - self.matched <= self.window

    def summary(self) -> str:
        return f"published {min(self.published, self.total)} of {self.total} events"

    def stats(self) -> dict[str, Any]:
        return super().stats() | {"published": self.published, "total": self.total}


class _Pacer:
    """Sleep so that event time advances ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float, first_ts: int) -> None:
        self.speed = speed
        self.first_ts = first_ts
        self.started = time.monotonic()

    async def wait(self, ts: int) -> None:
        if self.speed <= 0:
            return
        due = self.started + (ts - self.first_ts) / 1000 / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


def _now() -> int:
    return time.time_ns()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mqlab.config import positive_int
    from mqlab.services import add_service_arguments

    add_service_arguments(parser)
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="replay speed: 0 as fast as the pipeline takes it (default), 1 real time, "
        "60 an hour of data per minute",
    )
    parser.add_argument(
        "--window",
        type=positive_int,
        default=DEFAULT_WINDOW,
        help=f"steps in flight (default: {DEFAULT_WINDOW})",
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        default=1,
        help="market events per message, at most --window (default: 1)",
    )
    parser.add_argument(
        "--wait-for",
        nargs="*",
        metavar="QUEUE",
        help="queues (without the prefix) that need a consumer before the first publish "
        "(default: those of the exchange, portfolio and --strategy's host, and with --risk "
        "the risk service's)",
    )
    parser.add_argument(
        "--wait-timeout",
        type=float,
        default=600.0,
        help="seconds to wait for those consumers before giving up (default: 600)",
    )
    parser.add_argument(
        "--risk", action="store_true", help="a risk service runs too: wait for it as well"
    )
    parser.add_argument("--out", type=Path, help="write market.json (counters) here")


def run(args: argparse.Namespace) -> int:
    from mqlab.services import run_service

    if args.batch > args.window:
        print(f"error: --batch {args.batch} is more than --window {args.window}; raise --window",
              file=sys.stderr)  # fmt: skip
        return 2

    def say(queue: str) -> None:
        print(f"market: waiting for a consumer on {queue} (start that service)", file=sys.stderr)

    def build(bus: Bus, options: ServiceOptions, journal: Journal) -> MarketService:
        return MarketService(
            bus, options, journal, wait_for=args.wait_for or (), wait_timeout=args.wait_timeout,
            on_wait=say,
        )  # fmt: skip

    return run_service(args, "market", build)
