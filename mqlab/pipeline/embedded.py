"""The embedded broker in a process of its own, for a pipeline run, and how a run names
its broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mqlab.loop import run as run_loop

__all__ = ["broker_key", "broker_name", "embedded_broker"]

#: URLs of the embedded brokers this process started for a pipeline, with their data dirs.
_EMBEDDED_URLS: dict[str, Path] = {}


@contextlib.contextmanager
def embedded_broker(data_dir: Path) -> Iterator[str]:
    """The embedded broker in a process of its own, as RabbitMQ always is: broker and services
    then use two cores instead of taking turns on one interpreter's lock."""
    import multiprocessing

    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_serve_broker, args=(child, str(data_dir), os.getpid()), daemon=True,
        name="mqlab-broker",
    )  # fmt: skip
    process.start()
    try:
        if not parent.poll(60):
            raise RuntimeError("the embedded broker did not start within 60 s")
        url = parent.recv()
        if not isinstance(url, str):
            raise RuntimeError(f"the embedded broker did not start: {url}")
        _EMBEDDED_URLS[url] = data_dir.resolve()
        yield url
    finally:
        process.terminate()
        process.join(10)


def _serve_broker(conn: Any, data_dir: str, parent: int) -> None:
    """Run a broker with ``data_dir`` on a free loopback port, send its URL, and stop when
    told to or when ``parent`` is gone (even killed by SIGKILL)."""
    from mqlab.broker import Broker

    async def serve() -> None:
        broker = Broker(host="127.0.0.1", port=0, data_dir=data_dir)
        try:
            await broker.start()
        except OSError as exc:
            conn.send(repr(exc))
            return
        conn.send(broker.url)
        try:
            while os.getppid() == parent:
                await asyncio.sleep(0.2)
        finally:
            await broker.stop()

    with contextlib.suppress(KeyboardInterrupt):
        run_loop(serve())


def broker_name(url: str) -> str:
    """The masked URL, prefixed with ``embedded`` when it is an embedded broker of ours."""
    from mqlab.connection import mask_url, running_embedded_broker

    mine = running_embedded_broker(url) is not None
    return ("embedded " if mine or url in _EMBEDDED_URLS else "") + mask_url(url)


def broker_key(url: str) -> str:
    """What identifies the broker holding a run's messages: a CLI embedded broker by its
    data directory (its port changes on every start), any other by its masked URL."""
    from mqlab.connection import mask_url

    data = _EMBEDDED_URLS.get(url)
    return f"embedded broker with data in {data}" if data else mask_url(url)
