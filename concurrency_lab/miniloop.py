"""An event loop (事件循环) from scratch: a ready queue, a timer heap and ``selectors``.

Run the seed chapter's a/b example on it and get exactly what asyncio prints::

    python -c "import concurrency_lab.miniloop as m; m.run(m.ab_example())"
    Suspending a
    In b
    Resuming a

How it differs from asyncio, on purpose:

- One class each for the loop, :class:`Future` and :class:`Task`, all in pure Python, no
  policies, no transports, no threads, no signal handling, no debug mode.
- The loop works in three phases per iteration, like ``BaseEventLoop._run_once``: wait on the
  selector (for as long as the nearest timer allows, so an idle loop sleeps instead of
  spinning), move due timers to the ready queue, then run what was ready at that moment.
- The coroutine protocol is asyncio's: a Task drives ``coro.send(None)``; a coroutine that
  yields a :class:`Future` is parked until that Future completes; a bare ``yield`` (what
  ``asyncio.sleep(0)`` does) just goes to the back of the ready queue. So coroutine code that
  uses only those two kinds of suspension, such as ``await asyncio.sleep(0)``, runs unchanged.
  ``asyncio.sleep(1)`` or ``asyncio.gather`` do not: they look up *asyncio's* running loop,
  which raises ``RuntimeError`` when there is none (a script) and, when there is one (a Jupyter
  kernel's), hands back an asyncio Future that a miniloop Task refuses to wait on.
- The loop's socket methods (``sock_recv``, ``sock_sendall``) and ``create_task`` /
  ``create_future`` have asyncio's names and signatures, so code written against
  ``get_running_loop()`` runs on both loops (see :func:`echo_demo`).
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import socket
import time
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import Any

__all__ = [
    "CancelledError",
    "Future",
    "Handle",
    "InvalidStateError",
    "Loop",
    "Task",
    "ab_example",
    "cancel_demo",
    "create_task",
    "current_task",
    "echo_demo",
    "gather",
    "get_running_loop",
    "run",
    "sleep",
]


class CancelledError(BaseException):
    """Raised inside a cancelled Task (a BaseException, as asyncio's is since 3.8)."""


class InvalidStateError(Exception):
    """A result was asked of a pending Future, or a done Future was completed twice."""


class Handle:
    """A callback with its arguments, waiting in the ready queue or the timer heap."""

    __slots__ = ("args", "callback", "cancelled")

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.callback, self.args, self.cancelled = callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


_PENDING, _CANCELLED, _FINISHED = "pending", "cancelled", "finished"


class Future:
    """A result that will exist later; awaiting it parks the awaiting Task until it is set."""

    def __init__(self, loop: Loop | None = None) -> None:
        self._loop = loop or get_running_loop()
        self._state = _PENDING
        self._result: Any = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[Future], Any]] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state}>"

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> Any:
        if self._state == _CANCELLED:
            raise CancelledError()
        if self._state == _PENDING:
            raise InvalidStateError("result is not ready: await the Future first")
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        if self._state == _CANCELLED:
            raise CancelledError()
        if self._state == _PENDING:
            raise InvalidStateError("exception is not set yet")
        return self._exception

    def add_done_callback(self, fn: Callable[[Future], Any]) -> None:
        if self.done():
            self._loop.call_soon(fn, self)
        else:
            self._callbacks.append(fn)

    def _finish(self, state: str) -> None:
        if self._state != _PENDING:
            raise InvalidStateError(f"{self!r} is already done")
        self._state = state
        # Callbacks go through the ready queue, never run inline: that is what keeps the order
        # of prints the same as asyncio's.
        for fn in self._callbacks:
            self._loop.call_soon(fn, self)
        self._callbacks.clear()

    def set_result(self, result: Any) -> None:
        self._result = result
        self._finish(_FINISHED)

    def set_exception(self, exc: BaseException) -> None:
        self._exception = exc
        self._finish(_FINISHED)

    def cancel(self) -> bool:
        if self.done():
            return False
        self._finish(_CANCELLED)
        return True

    def __await__(self) -> Generator[Any, None, Any]:
        if not self.done():
            yield self  # the Task driving us sees a Future and parks until it is done
        return self.result()

    __iter__ = __await__


class Task(Future):
    """A Future that drives a coroutine: one ``send`` per step, each step a ready-queue entry."""

    _names = itertools.count(1)

    def __init__(
        self, coro: Coroutine[Any, Any, Any], loop: Loop | None = None, name: str | None = None
    ) -> None:
        super().__init__(loop)
        self._coro = coro
        self.name = name or f"Task-{next(self._names)}"
        self._waiting: Future | None = None
        self._must_cancel = False
        self._loop._tasks.add(self)
        self._loop.call_soon(self._step)

    def __repr__(self) -> str:
        coro = getattr(self._coro, "__qualname__", repr(self._coro))
        return f"<Task {self._state} name={self.name!r} coro={coro}>"

    def cancel(self) -> bool:
        if self.done():
            return False
        if self._waiting is not None and self._waiting.cancel():
            return True  # its wake-up callback will throw CancelledError into the coroutine
        self._must_cancel = True
        return True

    def _step(self, exc: BaseException | None = None) -> None:
        if self.done():
            return
        if self._must_cancel:
            exc, self._must_cancel = CancelledError(), False
        self._waiting = None
        self._loop._current = self
        try:
            yielded = self._coro.send(None) if exc is None else self._coro.throw(exc)
        except StopIteration as stop:
            super().set_result(stop.value)
        except CancelledError:
            super().cancel()
        except (KeyboardInterrupt, SystemExit) as error:
            super().set_exception(error)
            raise
        except BaseException as error:
            super().set_exception(error)
        else:
            if yielded is None:  # a bare yield, e.g. asyncio.sleep(0): back of the queue
                self._loop.call_soon(self._step)
            elif isinstance(yielded, Future):
                self._waiting = yielded
                yielded.add_done_callback(self._wakeup)
                if self._must_cancel and yielded.cancel():
                    self._must_cancel = False
            else:
                bad = RuntimeError(
                    f"{self.name} awaited {yielded!r}, which miniloop cannot wait on: only "
                    "miniloop Futures and bare yields (asyncio.sleep(0)) suspend a Task here"
                )
                self._loop.call_soon(self._step, bad)
        finally:
            self._loop._current = None
        if self.done():
            self._loop._tasks.discard(self)

    def _wakeup(self, future: Future) -> None:
        try:
            future.result()
        except BaseException as error:
            self._step(error)
        else:
            self._step()


_running: Loop | None = None


class Loop:
    """The event loop: run ready callbacks, fire due timers, wait for sockets; nothing else."""

    def __init__(self) -> None:
        self._ready: deque[Handle] = deque()
        self._timers: list[tuple[float, int, Handle]] = []
        self._seq = itertools.count()  # breaks ties between timers due at the same instant
        self._selector = selectors.DefaultSelector()
        self._tasks: set[Task] = set()
        self._current: Task | None = None
        self.iterations = 0

    def time(self) -> float:
        return time.monotonic()

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(callback, args)
        self._ready.append(handle)
        return handle

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(callback, args)
        heapq.heappush(self._timers, (when, next(self._seq), handle))
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Handle:
        return self.call_at(self.time() + delay, callback, *args)

    def create_future(self) -> Future:
        return Future(self)

    def create_task(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> Task:
        return Task(coro, self, name)

    # -- sockets: one reader and one writer callback per file descriptor -------------------
    def _watch(self, fileobj: Any, slot: int, handle: Handle | None) -> None:
        try:
            key: selectors.SelectorKey | None = self._selector.get_key(fileobj)
        except KeyError:
            key = None
        pair: list[Handle | None] = list(key.data) if key else [None, None]
        pair[slot] = handle
        mask = (pair[0] is not None) * selectors.EVENT_READ
        mask |= (pair[1] is not None) * selectors.EVENT_WRITE
        if key is None:
            if mask:
                self._selector.register(fileobj, mask, tuple(pair))
        elif mask:
            self._selector.modify(fileobj, mask, tuple(pair))
        else:
            self._selector.unregister(fileobj)

    def add_reader(self, fileobj: Any, callback: Callable[..., Any], *args: Any) -> None:
        self._watch(fileobj, 0, Handle(callback, args))

    def remove_reader(self, fileobj: Any) -> None:
        self._watch(fileobj, 0, None)

    def add_writer(self, fileobj: Any, callback: Callable[..., Any], *args: Any) -> None:
        self._watch(fileobj, 1, Handle(callback, args))

    def remove_writer(self, fileobj: Any) -> None:
        self._watch(fileobj, 1, None)

    async def _wait_io(self, sock: socket.socket, writing: bool) -> None:
        ready = self.create_future()
        add, remove = (
            (self.add_writer, self.remove_writer)
            if writing
            else (self.add_reader, self.remove_reader)
        )
        add(sock, _resolve, ready, None)
        try:
            await ready
        finally:
            remove(sock)

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        """Like ``loop.sock_recv``: ``sock`` must be non-blocking."""
        while True:
            try:
                return sock.recv(nbytes)
            except (BlockingIOError, InterruptedError):
                await self._wait_io(sock, writing=False)

    async def sock_sendall(self, sock: socket.socket, data: bytes) -> None:
        """Like ``loop.sock_sendall``: ``sock`` must be non-blocking."""
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except (BlockingIOError, InterruptedError):
                await self._wait_io(sock, writing=True)

    # -- the loop itself -----------------------------------------------------------------
    def _run_once(self) -> None:
        self.iterations += 1
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if self._ready:
            timeout: float | None = 0
        elif self._timers:
            timeout = max(0.0, self._timers[0][0] - self.time())
        elif self._selector.get_map():
            timeout = None  # nothing to do until a socket is ready: block in the kernel
        else:
            raise RuntimeError(
                "miniloop deadlock: nothing is ready, no timer is pending and no socket is "
                "watched, yet the main coroutine has not finished. Something awaits a Future "
                "that nobody will ever complete; give it a result (or a timer that sets one)."
            )
        for key, mask in self._selector.select(timeout):
            reader, writer = key.data
            if mask & selectors.EVENT_READ and reader is not None:
                self._ready.append(reader)
            if mask & selectors.EVENT_WRITE and writer is not None:
                self._ready.append(writer)
        now = self.time()
        while self._timers and self._timers[0][0] <= now:
            self._ready.append(heapq.heappop(self._timers)[2])
        # Only what is ready now: callbacks scheduled by these run on the next iteration.
        for _ in range(len(self._ready)):
            handle = self._ready.popleft()
            if not handle.cancelled:
                handle.callback(*handle.args)

    def run_until_complete(self, future: Future) -> Any:
        global _running
        if _running is not None:
            raise RuntimeError("miniloop.run() cannot be called while a miniloop is running")
        _running = self
        try:
            while not future.done():
                self._run_once()
        finally:
            _running = None
        return future.result()

    def close(self) -> None:
        self._selector.close()


def _resolve(future: Future, result: Any) -> None:
    if not future.done():
        future.set_result(result)


def get_running_loop() -> Loop:
    """The miniloop running now; a RuntimeError outside :func:`run` (asyncio does the same)."""
    if _running is None:
        raise RuntimeError("no running miniloop: start one with miniloop.run(main())")
    return _running


def current_task() -> Task | None:
    """The Task the running loop is stepping now (None between steps), as ``asyncio``'s."""
    return get_running_loop()._current


def create_task(coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> Task:
    """What the seed shows ``asyncio.create_task`` doing: ``get_running_loop().create_task``."""
    return get_running_loop().create_task(coro, name=name)


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` on a fresh loop, cancel what it left behind, close the loop (as asyncio.run)."""
    if _running is not None:
        main.close()  # never started: close it so Python does not warn "never awaited"
        raise RuntimeError("miniloop.run() cannot be called while a miniloop is running")
    loop = Loop()
    try:
        task = loop.create_task(main, name="main")
        try:
            return loop.run_until_complete(task)
        finally:
            leftovers = [t for t in loop._tasks if not t.done()]
            for t in leftovers:
                t.cancel()
            if leftovers:
                loop.run_until_complete(gather(*leftovers, loop=loop, return_exceptions=True))
    finally:
        loop.close()


@types.coroutine
def _yield_now() -> Generator[None, None, None]:
    yield  # a bare yield: the Task reschedules itself at the back of the ready queue


async def sleep(delay: float, result: Any = None) -> Any:
    """Suspend for ``delay`` seconds; ``sleep(0)`` just lets every other ready Task run once."""
    if delay <= 0:
        await _yield_now()
        return result
    loop = get_running_loop()
    future = loop.create_future()
    timer = loop.call_later(delay, _resolve, future, result)
    try:
        return await future
    finally:
        timer.cancel()  # when cancelled early, don't leave a dead timer to wake the loop


def gather(
    *aws: Awaitable[Any], loop: Loop | None = None, return_exceptions: bool = False
) -> Future:
    """Run awaitables as Tasks; a Future of their results in order (first error wins)."""
    loop = loop or get_running_loop()
    children = [a if isinstance(a, Future) else Task(_as_coro(a), loop) for a in aws]
    outer = loop.create_future()
    left = len(children)

    def child_done(child: Future) -> None:
        nonlocal left
        left -= 1
        if outer.done():
            return
        error = CancelledError() if child.cancelled() else child.exception()
        if error is not None and not return_exceptions:
            outer.set_exception(error)
        elif left == 0:
            outer.set_result([_outcome(c) for c in children])

    def cancel_children(future: Future) -> None:
        if future.cancelled():  # cancelling a gather cancels what it gathers, as in asyncio
            for child in children:
                child.cancel()

    for child in children:
        child.add_done_callback(child_done)
    outer.add_done_callback(cancel_children)
    if not children:
        outer.set_result([])
    return outer


def _outcome(future: Future) -> Any:
    if future.cancelled():
        return CancelledError()
    return future.exception() or future.result()


async def _as_coro(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def ab_example() -> None:
    """The seed's a/b example; ``run(ab_example())`` prints what ``asyncio.run`` prints."""

    async def a() -> None:
        print("Suspending a")
        await sleep(0)
        print("Resuming a")

    async def b() -> None:
        print("In b")

    await gather(a(), b())


async def cancel_demo() -> list[str]:
    """Cancel a parked Task (its ``finally`` runs), then catch an error raised two awaits down."""

    async def fails() -> None:
        await sleep(0.01)
        raise ValueError("raised two awaits down")

    async def worker(log: list[str]) -> None:
        try:
            await sleep(10)
        finally:
            log.append("worker cleaned up")

    log: list[str] = []
    task = create_task(worker(log))
    await sleep(0.01)
    task.cancel()
    await gather(task, return_exceptions=True)
    log.append(f"worker cancelled: {task.cancelled()}")
    try:
        await gather(create_task(fails()), sleep(0.02))
    except ValueError as error:
        log.append(f"main caught {error!r}")
    return log


async def echo_demo(
    messages: Iterable[bytes] = (b"ping", b"hello"), get_loop: Callable[[], Any] | None = None
) -> list[bytes]:
    """Echo over ``socket.socketpair()``; pass ``asyncio.get_running_loop`` to run on asyncio."""
    loop = (get_loop or get_running_loop)()
    client, server = socket.socketpair()
    for s in (client, server):
        s.setblocking(False)

    async def serve() -> None:
        while data := await loop.sock_recv(server, 4096):
            await loop.sock_sendall(server, data)

    server_task = loop.create_task(serve())
    replies = []
    try:
        for message in messages:
            await loop.sock_sendall(client, message)
            replies.append(await loop.sock_recv(client, 4096))
    finally:
        client.close()  # the server reads b"" and returns
        await server_task
        server.close()
    return replies
