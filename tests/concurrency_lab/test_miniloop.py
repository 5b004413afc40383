"""miniloop: the same printed order as asyncio, timers, sockets, errors, cancellation, idling."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest

from concurrency_lab import miniloop as m

AB_LINES = ["Suspending a", "In b", "Resuming a"]


async def seed_a() -> None:
    """The seed's coroutine a(), verbatim: asyncio.sleep(0) is a bare yield, loop-agnostic."""
    print("Suspending a")
    await asyncio.sleep(0)
    print("Resuming a")


async def seed_b() -> None:
    print("In b")


def test_ab_example_prints_what_asyncio_prints(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        await asyncio.gather(seed_a(), seed_b())

    asyncio.run(main())
    on_asyncio = capsys.readouterr().out.splitlines()
    m.run(m.ab_example())
    assert capsys.readouterr().out.splitlines() == on_asyncio == AB_LINES


def test_docstring_one_liner_prints_the_seed_output() -> None:
    one_liner = "import concurrency_lab.miniloop as m; m.run(m.ab_example())"
    assert one_liner in m.__doc__
    out = subprocess.run(
        [sys.executable, "-c", one_liner], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == AB_LINES


def test_seed_coroutines_run_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> None:
        await m.gather(seed_a(), seed_b())

    m.run(main())
    assert capsys.readouterr().out.splitlines() == AB_LINES


def test_awaiting_a_bare_coroutine_does_not_switch(capsys: pytest.CaptureFixture[str]) -> None:
    async def nothing() -> None:
        pass

    async def a() -> None:
        print("Suspending a")
        await nothing()  # runs inline like a call: b does not get in
        print("Resuming a")

    async def main() -> None:
        await m.gather(a(), seed_b())

    m.run(main())
    assert capsys.readouterr().out.splitlines() == ["Suspending a", "Resuming a", "In b"]


def test_call_soon_is_fifo_and_timers_fire_by_deadline() -> None:
    fired: list[str] = []

    async def main() -> None:
        loop = m.get_running_loop()
        loop.call_later(0.03, fired.append, "t30")
        loop.call_later(0.01, fired.append, "t10")
        loop.call_later(0.02, fired.append, "t20")
        loop.call_soon(fired.append, "soon1")
        loop.call_soon(fired.append, "soon2")
        cancelled = loop.call_later(0.015, fired.append, "never")
        cancelled.cancel()
        await m.sleep(0.05)

    m.run(main())
    assert fired == ["soon1", "soon2", "t10", "t20", "t30"]


def test_timers_due_at_the_same_instant_keep_insertion_order() -> None:
    fired: list[int] = []

    async def main() -> None:
        loop = m.get_running_loop()
        when = loop.time() + 0.01
        for i in range(5):
            loop.call_at(when, fired.append, i)
        await m.sleep(0.02)

    m.run(main())
    assert fired == [0, 1, 2, 3, 4]


def test_sleepers_wake_in_deadline_order_and_sleep_returns_result() -> None:
    async def sleeper(delay: float) -> float:
        return await m.sleep(delay, result=delay)

    async def main() -> tuple[list[float], list[float]]:
        woke: list[float] = []

        async def note(delay: float) -> None:
            woke.append(await sleeper(delay))

        results = await m.gather(note(0.03), note(0.01), note(0.02))
        return woke, results

    woke, results = m.run(main())
    assert woke == [0.01, 0.02, 0.03]
    assert results == [None, None, None]


def test_reader_fires_only_when_the_socket_is_readable() -> None:
    events: list[str] = []
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)

    async def main() -> None:
        loop = m.get_running_loop()
        got = loop.create_future()

        def on_readable() -> None:
            events.append("readable")
            loop.remove_reader(right)
            got.set_result(right.recv(100))

        loop.add_reader(right, on_readable)
        await m.sleep(0.02)
        events.append("before send")
        left.send(b"x")
        events.append(f"got {(await got)!r}")

    try:
        m.run(main())
    finally:
        left.close()
        right.close()
    assert events == ["before send", "readable", "got b'x'"]


def test_reader_and_writer_on_one_socket_are_independent() -> None:
    left, right = socket.socketpair()
    left.setblocking(False)

    async def main() -> list[str]:
        loop = m.get_running_loop()
        seen: list[str] = []
        loop.add_reader(left, seen.append, "read")
        loop.add_writer(left, seen.append, "write")
        await m.sleep(0)
        loop.remove_writer(left)  # the reader stays registered
        right.send(b"y")
        await m.sleep(0.01)
        loop.remove_reader(left)
        return seen

    try:
        seen = m.run(main())
    finally:
        left.close()
        right.close()
    assert seen[0] == "write" and "read" in seen and seen.count("write") == 1


@pytest.mark.parametrize("on", ["miniloop", "asyncio"])
def test_echo_over_socketpair_runs_on_both_loops(on: str) -> None:
    messages = [b"ping", b"hello", b"bye"]

    async def on_asyncio() -> list[bytes]:
        return await m.echo_demo(messages, get_loop=asyncio.get_running_loop)

    replies = asyncio.run(on_asyncio()) if on == "asyncio" else m.run(m.echo_demo(messages))
    assert replies == messages


def test_sock_sendall_survives_a_full_socket_buffer() -> None:
    payload = b"z" * 2_000_000
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)

    async def main() -> bytes:
        loop = m.get_running_loop()
        sender = m.create_task(loop.sock_sendall(left, payload))
        received = bytearray()
        while len(received) < len(payload):
            received += await loop.sock_recv(right, 65536)
        await sender
        return bytes(received)

    try:
        assert m.run(main()) == payload
    finally:
        left.close()
        right.close()


def test_exceptions_propagate_through_await_gather_and_run() -> None:
    async def fail() -> None:
        await m.sleep(0.001)
        raise ValueError("boom")

    async def middle() -> None:
        await m.create_task(fail())

    async def main() -> None:
        await m.gather(middle(), m.sleep(0.01))

    with pytest.raises(ValueError, match="boom"):
        m.run(main())


def test_task_result_and_exception_accessors() -> None:
    async def fail() -> None:
        raise KeyError("k")

    async def main() -> tuple[m.Task, m.Task]:
        ok = m.create_task(m.sleep(0, result=42))
        bad = m.create_task(fail())
        with pytest.raises(m.InvalidStateError):
            ok.result()
        assert not ok.done()
        await m.gather(ok, bad, return_exceptions=True)
        return ok, bad

    ok, bad = m.run(main())
    assert ok.result() == 42 and ok.exception() is None
    assert isinstance(bad.exception(), KeyError)
    with pytest.raises(KeyError):
        bad.result()


def test_gather_return_exceptions_keeps_order() -> None:
    async def fail() -> None:
        raise ValueError("v")

    async def main() -> list[object]:
        return await m.gather(m.sleep(0.01, "a"), fail(), m.sleep(0, "c"), return_exceptions=True)

    first, second, third = m.run(main())
    assert first == "a" and isinstance(second, ValueError) and third == "c"


async def _sleep_and_log(seconds: float, log: list[str]) -> None:
    """Sleeps; logs "cleanup" if cancelled (and lets the cancellation through), else "woke"."""
    try:
        await m.sleep(seconds)
    except m.CancelledError:
        log.append("cleanup")
        raise
    log.append("woke")


def test_cancellation_runs_cleanup_and_marks_the_task_cancelled() -> None:
    log: list[str] = []

    async def main() -> m.Task:
        task = m.create_task(_sleep_and_log(10, log))
        await m.sleep(0.01)
        assert task.cancel()
        with pytest.raises(m.CancelledError):
            await task
        assert not task.cancel()  # already done
        return task

    started = time.monotonic()
    task = m.run(main())
    assert task.cancelled() and log == ["cleanup"]
    assert time.monotonic() - started < 5  # the 10 s timer was dropped, not waited for


def test_cancel_before_first_step_never_starts_the_coroutine() -> None:
    started: list[bool] = []

    async def worker() -> None:
        started.append(True)

    async def main() -> bool:
        task = m.create_task(worker())
        task.cancel()
        await m.gather(task, return_exceptions=True)
        return task.cancelled()

    assert m.run(main()) is True
    assert started == []


def test_a_task_may_swallow_its_cancellation() -> None:
    async def stubborn() -> str:
        try:
            await m.sleep(10)
        except m.CancelledError:
            return "kept going"
        return "slept"

    async def main() -> str:
        task = m.create_task(stubborn())
        await m.sleep(0)
        task.cancel()
        return await task

    assert m.run(main()) == "kept going"


def test_cancelling_a_gather_cancels_its_children() -> None:
    async def main() -> list[bool]:
        children = [m.create_task(m.sleep(10)) for _ in range(3)]
        outer = m.gather(*children)
        await m.sleep(0)
        outer.cancel()
        await m.sleep(0)
        await m.sleep(0)
        return [c.cancelled() for c in children]

    assert m.run(main()) == [True, True, True]


def test_run_cancels_tasks_left_behind() -> None:
    log: list[str] = []

    async def main() -> str:
        m.create_task(_sleep_and_log(60, log))
        await m.sleep(0)
        return "done"

    assert m.run(main()) == "done"
    assert log == ["cleanup"]  # cancelled at shutdown


def test_idle_loop_sleeps_in_the_selector_instead_of_spinning() -> None:
    async def main() -> int:
        loop = m.get_running_loop()
        before = loop.iterations
        await m.sleep(0.3)
        return loop.iterations - before

    wall, cpu = time.perf_counter(), time.process_time()
    iterations = m.run(main())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    # Deterministic evidence: a spinning loop would iterate thousands of times in 0.3 s.
    assert iterations <= 3
    # And the process barely used the CPU while it waited (generous: the machine is shared).
    assert wall >= 0.29
    assert cpu < 0.3 * wall, f"{cpu=:.3f} s of CPU during {wall=:.3f} s: the loop is spinning"


def test_a_future_nobody_completes_is_reported_as_a_deadlock() -> None:
    async def main() -> None:
        await m.get_running_loop().create_future()

    with pytest.raises(RuntimeError, match="deadlock"):
        m.run(main())


def test_awaiting_an_asyncio_future_says_what_went_wrong() -> None:
    async def main() -> None:
        loop = asyncio.new_event_loop()
        try:
            await loop.create_future()
        finally:
            loop.close()

    with pytest.raises(RuntimeError, match="miniloop cannot wait on"):
        m.run(main())


def test_asyncio_sleep_with_a_delay_fails_on_miniloop_in_a_script() -> None:
    # No asyncio loop runs here: asyncio.sleep(0.1) cannot even create its Future.
    with pytest.raises(RuntimeError, match="no running event loop"):
        m.run(asyncio.sleep(0.1))


def test_asyncio_sleep_with_a_delay_fails_on_miniloop_in_jupyter() -> None:
    # In a notebook the kernel's asyncio loop runs: sleep() gets a Future from *that* loop.
    async def kernel() -> str:
        try:
            m.run(asyncio.sleep(0.1))
        except RuntimeError as error:
            return str(error)
        return "no error"

    message = asyncio.run(kernel())
    assert "awaited <Future pending" in message
    assert "miniloop cannot wait on" in message


def test_cancel_demo_cleans_up_and_catches_the_error() -> None:
    assert m.run(m.cancel_demo()) == [
        "worker cleaned up",
        "worker cancelled: True",
        "main caught ValueError('raised two awaits down')",
    ]


def test_no_running_loop_outside_run() -> None:
    with pytest.raises(RuntimeError, match=r"miniloop\.run"):
        m.get_running_loop()


def test_nested_run_is_refused() -> None:
    async def main() -> None:
        m.run(m.sleep(0))

    with pytest.raises(RuntimeError, match="cannot be called while a miniloop is running"):
        m.run(main())


def test_current_task_and_repr() -> None:
    async def main() -> str:
        return repr(m.current_task())

    text = m.run(main())
    assert text.startswith("<Task pending name='main'")
