"""What every service shares: a journal, a deterministic ``apply``, and crash recovery.

A service is a state machine fed by the bus. Each input it accepts becomes a *record* (a
JSON-able dict with a unique ``id``); :meth:`Service.commit` runs the three steps below under
one lock, so records are applied strictly one after another:

1. ``outputs = apply(record)``: pure and deterministic; changes the state, does no IO;
2. the record is appended to the service's journal (flushed to the OS);
3. each output is handed to the broker, in order; once the broker confirmed all of them, a
   ``confirmed`` line is appended to the journal (flushed with the next record: losing it
   only makes a restart publish those outputs again, which consumers drop by id).

The bus acks the input once the record is journaled: confirms are awaited in the background,
so one service keeps many messages in flight instead of waiting a round trip for each (the
order of the outputs is kept: they are written to one channel in commit order). A crash at
any point is therefore safe: on restart,
:meth:`Service.recover` replays the journal through a fresh state machine (which rebuilds the
exact state, since ``apply`` is deterministic) and republishes the outputs of every record
without its ``confirmed`` line, in case the crash hit while they were being published; their
ids are deterministic, so the consumers drop whatever had already arrived. An input that was
not journaled is still unacked, so the broker delivers it again.

**Batches.** A strategy's ``done`` and the exchange's progress markers are sent for several
steps at once (half the market's window). So that a slow feed does not leave them waiting,
when every queue of a service has stayed dry for ``IDLE_FLUSH_S``, :meth:`Service.on_idle`
commits a ``flush`` record if :meth:`Service.pending` says something is batched. Being a
journaled record, a flush is replayed exactly like any other input: batching stays
deterministic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, TextIO

from mqlab.bus import Bus, Outgoing
from mqlab.events.codec import compact_json

__all__ = [
    "IDLE_FLUSH_S",
    "EngineService",
    "Journal",
    "Outgoing",
    "Service",
    "add_common_arguments",
    "journal_for",
]


#: How long a service's queues must stay dry before it flushes a batch early (seconds).
IDLE_FLUSH_S = 0.005


class Journal:
    """An append-only JSON-lines file of applied records; ``path=None`` keeps it in memory.

    Each append is flushed to the operating system, which survives the process being killed.
    ``fsync=True`` also survives the machine losing power, at about a millisecond per record.
    ``append(line, flush=False)`` leaves the line in the file's buffer, to be flushed with the
    next append (or at :meth:`close`): for lines whose loss is harmless, such as ``confirmed``.
    """

    def __init__(self, path: Path | str | None, *, fsync: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.fsync = fsync
        self._memory: list[dict[str, Any]] = []
        self._file: TextIO | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self.path is None:
            yield from self._memory
            return
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.endswith("\n"):
                    break  # a torn last line: the crash hit mid-write, before any publish
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(
                        f"{self.path}:{number} is corrupt ({exc}); delete the state directory "
                        "to start the run again from scratch"
                    ) from exc

    def append(self, record: Mapping[str, Any], *, flush: bool = True) -> None:
        if self.path is None:
            self._memory.append(dict(record))
            return
        if self._file is None:
            self._truncate_torn_tail()
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(compact_json(record) + "\n")
        if flush:
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())

    def flush(self) -> None:
        """Hand the lines still buffered (``flush=False``) to the operating system."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _truncate_torn_tail(self) -> None:
        assert self.path is not None
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])


class Service:
    """Base class: subclasses set ``name`` and implement :meth:`apply` (and their handlers)."""

    name: ClassVar[str] = "service"

    def __init__(self, bus: Bus, journal: Journal | None = None) -> None:
        self.bus = bus
        self.journal = journal or Journal(None)
        self.applied: set[str] = set()
        self.records = 0
        self.replayed = 0
        #: Notified after every commit while someone waits in :meth:`wait_until`.
        self.changed = asyncio.Condition()
        self._waiting = 0
        self.finished = asyncio.Event()
        self.stopping = asyncio.Event()
        #: False while :meth:`recover` replays the journal, True once the service is live.
        self.live = False
        #: Wall-clock times (ns) of this incarnation's first and last live commit.
        self.first_ns = self.last_ns = 0
        self.flushes = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Task[None]] = set()
        self._parsed: dict[str, Any] = {}
        #: ``trace(label, start_ns, end_ns, lane)`` is called for every record applied, e.g.
        #: :meth:`concurrency_lab.timeline.Timeline.record` (chapter 10 draws who did what).
        self.trace: Callable[[str, int, int, str], None] | None = None
        #: Background tasks the service owns (e.g. a parent watchdog).
        self.tasks: set[asyncio.Task[None]] = set()
        self._failed: BaseException | None = None

    def apply(self, record: dict[str, Any]) -> list[Outgoing]:
        raise NotImplementedError

    def remember(self, record_id: Any, event: Any) -> None:
        """Keep the event a handler already decoded, for :meth:`event_of` (not journaled)."""
        self._parsed[record_id] = event

    def forget(self, record: dict[str, Any]) -> None:
        """The record's event will not be needed (e.g. a market event nobody subscribed to)."""
        self._parsed.pop(record["id"], None)

    def event_of(self, record: dict[str, Any]) -> Any:
        """The event in ``record["body"]``: as the handler decoded it, or decoded again (when
        the record comes from the journal)."""
        from mqlab.events import decode

        event = self._parsed.pop(record["id"], None)
        return event if event is not None else decode(record["body"])

    async def run(self) -> int:
        raise NotImplementedError

    def request_stop(self) -> None:
        """Ctrl-C: finish the record in progress, then stop (see :meth:`until_done`)."""
        self.stopping.set()
        asyncio.get_running_loop().create_task(self.poke())

    async def until_done(self) -> bool:
        """Wait for the end of the data (True) or a stop request (False).

        Raises the error of a subscription whose worker died (the bus gave up on the broker).
        Returns with the commit lock free, so nothing is left half-done when the bus closes.
        """
        finished = asyncio.ensure_future(self.finished.wait())
        stopping = asyncio.ensure_future(self.stopping.wait())
        workers = [s.worker for s in self.bus.subscriptions if s.worker is not None]
        try:
            await asyncio.wait([finished, stopping, *workers], return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            stopping.cancel()
        for worker in workers:
            if worker.done() and not worker.cancelled() and worker.exception():
                raise worker.exception()  # type: ignore[misc]
        # No more early flushes: the service is over (one already committing finishes first).
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        for task in list(self._flushing):
            if not self._lock.locked():
                task.cancel()
        await self._lock.acquire()  # released by nobody: the service is over
        await self.drain()
        return self.finished.is_set()

    async def drain(self) -> None:
        """Wait until the broker confirmed everything published; raise what a publish raised."""
        while self._inflight:
            await asyncio.wait(set(self._inflight))
        self.journal.flush()  # the confirmed lines, for whoever reads the journal next
        if self._failed is not None:
            raise self._failed

    async def recover(self) -> int:
        """Rebuild the state from the journal; return how many records were replayed.

        Outputs of records that have no ``confirmed`` line after them may not have reached
        the broker: they are published again (consumers drop what they already have).
        """
        unconfirmed: dict[str, list[Outgoing]] = {}
        for record in self.journal:
            if "confirmed" in record:
                unconfirmed.pop(record["confirmed"], None)
                continue
            outputs = self.apply(record)
            if outputs:
                unconfirmed[record["id"]] = outputs
            self.applied.add(record["id"])
            self.records += 1
        self.replayed = self.records
        self.live = True
        for outputs in unconfirmed.values():
            for out in outputs:
                if out.type != "pause":  # a stale pause would stop a run that is resuming
                    await self._publish(out)
        return self.replayed

    async def commit(self, record: dict[str, Any]) -> bool:
        """Apply, journal and publish one record; False when it had been applied already."""
        if self._failed is not None:
            raise self._failed
        async with self._lock:
            if record["id"] in self.applied:
                return False
            started = time.perf_counter_ns()
            outputs = self.apply(record)
            self.journal.append(record)
            if self.trace is not None:
                shift = time.time_ns() - time.perf_counter_ns()
                label = record.get("kind", "record")
                self.trace(label, started + shift, time.perf_counter_ns() + shift, self.name)
            self.applied.add(record["id"])
            self.records += 1
            if outputs:
                # One task per output, started in order: each writes its frames at once under
                # the channel's lock, so the broker receives them in commit order. Their
                # done-callbacks count the confirms (no task of its own to wait for them).
                confirm = _Confirm(self, record["id"], len(outputs))
                for out in outputs:
                    send = asyncio.create_task(self._publish(out))
                    self._inflight.add(send)
                    confirm.sends.append(send)
                    send.add_done_callback(confirm.settled)
            self.last_ns = time.time_ns()
            self.first_ns = self.first_ns or self.last_ns
        if self._waiting:  # a Condition costs a lock round trip: only when someone waits
            async with self.changed:
                self.changed.notify_all()
        return True

    def _confirmed(self, record_id: str) -> None:
        # Not flushed: the next record's append flushes it. A confirmed line lost in a crash
        # only makes recover() publish that record's outputs again, which consumers drop by
        # id; the record itself was flushed before any of its outputs was published.
        self.journal.append({"confirmed": record_id}, flush=False)

    def _fail(self, exc: BaseException) -> None:
        if self._failed is None:
            self._failed = exc
            self.stopping.set()  # until_done() returns and drain() raises it

    def pending(self) -> bool:
        """Whether a ``flush`` record would publish something (subclasses with batches)."""
        return False

    async def on_idle(self) -> None:
        """A queue ran dry: in ``IDLE_FLUSH_S``, if all still are, flush what is batched."""
        if self._idle_timer is None and self.pending():
            loop = asyncio.get_running_loop()
            self._idle_timer = loop.call_later(IDLE_FLUSH_S, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self.live and self.bus.idle() and self.pending() and not self.finished.is_set():
            task = asyncio.ensure_future(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        if not task.cancelled() and task.exception() is not None and self._failed is None:
            self._failed = task.exception()
            self.stopping.set()

    async def _flush(self) -> None:
        self.flushes += 1
        await self.commit({"id": f"flush.{self.records}", "kind": "flush"})

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Block until ``predicate()`` holds; it is rechecked after every commit."""
        if predicate():
            return
        self._waiting += 1
        try:
            async with self.changed:
                await self.changed.wait_for(predicate)
        finally:
            self._waiting -= 1

    async def poke(self) -> None:
        """Recheck every waiting predicate (after a change made outside :meth:`commit`)."""
        async with self.changed:
            self.changed.notify_all()

    async def _publish(self, out: Outgoing) -> None:
        await out.publish(self.bus)

    def summary(self) -> str:
        """One line for a person: what this service did (subclasses say more)."""
        return f"{self.records} records ({self.replayed} replayed from the journal)"

    def stats(self) -> dict[str, Any]:
        """Counters for the summary (subclasses add theirs)."""
        return {
            "records": self.records,
            "replayed": self.replayed,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
        }


class _Confirm:
    """The sends of one record's outputs: once all succeeded, its ``confirmed`` line; the
    first that failed stops the service (and cancels the others)."""

    __slots__ = ("left", "record_id", "sends", "service")

    def __init__(self, service: Service, record_id: str, count: int) -> None:
        self.service = service
        self.record_id = record_id
        self.left = count
        self.sends: list[asyncio.Task[None]] = []

    def settled(self, send: asyncio.Task[None]) -> None:
        service = self.service
        service._inflight.discard(send)
        if send.cancelled():
            self.left = -1  # never confirmed
            return
        exc = send.exception()
        if exc is not None:
            self.left = -1
            for other in self.sends:
                other.cancel()
            service._fail(exc)
            return
        self.left -= 1
        if self.left == 0:
            service._confirmed(self.record_id)


class EngineService(Service):
    r"""A service whose logic is one generator, :meth:`engine`, written like a plain loop.

    :meth:`store` files each record in the service's buffers; the engine then runs until it
    needs an input that has not arrived (it ``yield``\ s) and :meth:`emit`\ s its outputs
    on the way. Because records are only *stored* on arrival, whatever order the broker
    delivers them in, the engine consumes them in its own order: the backtest's.
    """

    def __init__(self, bus: Bus, journal: Journal | None = None) -> None:
        super().__init__(bus, journal)
        self._out: list[Outgoing] = []
        self._engine = self.engine()
        self._engine_done = False
        next(self._engine)

    def store(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def engine(self) -> Generator[None, None, None]:
        raise NotImplementedError

    def emit(self, out: Outgoing) -> None:
        self._out.append(out)

    def apply(self, record: dict[str, Any]) -> list[Outgoing]:
        self.store(record)
        self._out = []
        if not self._engine_done:
            try:
                self._engine.send(None)
            except StopIteration:
                self._engine_done = True
                self.on_engine_done()
        return self._out

    def on_engine_done(self) -> None:
        """The engine returned: the data is over. Live, that finishes the service."""
        if self.live:
            self.finished.set()

    def on_pause(self) -> None:
        """The engine reached a Ctrl-C pause: live, stop here (a restart resumes)."""
        if self.live:
            self.finished.set()

    async def run(self) -> int:
        await self.recover()
        if self._engine_done:
            print(f"{self.name}: this run is complete; delete its state directory to start over")
            return 0
        await self.subscribe()
        finished = await self.until_done()
        return 0 if finished else 1

    async def subscribe(self) -> None:
        raise NotImplementedError


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url``, ``--prefix`` and ``--state-dir``: the same on every service and the pipeline."""
    parser.add_argument(
        "--url",
        help="AMQP URL of the broker every service of the run shares, e.g. "
        "amqp://guest:guest@127.0.0.1:5672/ (default: $MQLAB_AMQP_URL)",
    )
    parser.add_argument(
        "--prefix",
        default="mqlab",
        help="prefix of every exchange and queue name; one per run (default: mqlab)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="directory for the service's journal; with it, a restarted service resumes "
        "where it stopped (default: in memory)",
    )
    from mqlab.ha import add_queue_type_argument

    add_queue_type_argument(parser)


def journal_for(state_dir: Path | None, name: str) -> Journal:
    return Journal(None if state_dir is None else Path(state_dir) / f"{name}.jsonl")
