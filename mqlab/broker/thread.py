"""Run a :class:`~mqlab.broker.server.Broker` in a background thread with its own event loop.

The same code then works from a plain script, from pytest, and from inside Jupyter, where a
loop is already running in the main thread (so ``asyncio.run`` is not an option there).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mqlab.broker.server import Broker
from mqlab.broker.vhost import Topology

__all__ = ["BrokerThread"]

T = TypeVar("T")


class BrokerThread:
    """An embedded broker on its own thread: ``with BrokerThread(port=0) as b: b.url``.

    Keyword arguments are passed to :class:`Broker`. ``port=0`` picks a free port.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.broker = Broker(host=host, port=port, data_dir=data_dir, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return self.broker.url

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> BrokerThread:
        """Start the thread and wait until the broker listens (re-raising its error)."""
        if self.running:
            return self
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="mqlab-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"embedded broker did not start within {timeout} s")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            self._stop = asyncio.Event()
            try:
                loop.run_until_complete(self.broker.start())
            except BaseException as exc:
                self._error = exc
                return
            finally:
                self._ready.set()
            loop.run_until_complete(self._stop.wait())
            loop.run_until_complete(self.broker.stop())
        finally:
            loop.close()
            self.loop = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (closing client connections) and join the thread."""
        thread, loop, stop = self._thread, self.loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        self._thread = None

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn()`` on the broker's loop thread and return its result."""
        loop = self.loop
        if loop is None or not self.running:
            raise RuntimeError("the embedded broker is not running; call start() first")
        if threading.current_thread() is self._thread:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout)

    def topology(self) -> Topology:
        """A consistent snapshot of exchanges, queues and bindings (see Broker.topology)."""
        return self.call(self.broker.topology)

    def __enter__(self) -> BrokerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<BrokerThread {self.url} {state}>"
