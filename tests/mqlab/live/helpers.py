"""Helpers shared by the live tests: a free port, ``python -m mqlab`` as a subprocess, the
local Binance-format server as one, and the checks the paper commands' tests share."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mqlab(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "mqlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kw,
    )


@contextlib.contextmanager
def fake_binance(*extra: str, pace: str, expect: str = "SYNTHETIC") -> Iterator[str]:
    """``python -m mqlab fake-binance`` on a free port while the block runs: its URL. The line
    it prints once it listens must hold ``expect``; Ctrl-C stops it at the end."""
    port = free_port()
    server = mqlab("fake-binance", "--port", str(port), "--pace", pace, *extra)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()  # printed once it listens
        assert expect in line, line
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)


def interrupt_after_some_bars(
    paper: subprocess.Popen[str], wait: float, timeout: float
) -> tuple[str, str]:
    """Wait (up to ``wait`` s) for a status line of ``paper`` with more than one bar in it,
    press Ctrl-C, and return its stdout and the rest of its stderr."""
    assert paper.stderr is not None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        line = paper.stderr.readline()
        if " bars " in line and " bars 0 " not in line and " bars 1 " not in line:
            break
    paper.send_signal(signal.SIGINT)
    return paper.communicate(timeout=timeout)


def assert_cli_replay_matches(record: Path, report: dict[str, Any]) -> None:
    """``python -m mqlab backtest --replay RECORD`` must say it is identical to the live run,
    with the fills and money of the live run's ``report``."""
    replay = mqlab("backtest", "--replay", str(record), "--json")
    out, err = replay.communicate(timeout=60)
    assert replay.returncode == 0, out + err
    again = json.loads(out)
    assert again["identical_to_live"] is True
    for key in ("fills", "equity", "realised", "fees", "orders_sent"):
        assert again[key] == report[key]
