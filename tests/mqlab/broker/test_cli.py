"""``python -m mqlab broker``: users and passwords, sizes, and what it prints (embedded only)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import aio_pika
import aiormq
import psutil
import pytest

from mqlab.broker.cli import PASSWORD_ENV, parse_size

from .helpers import TIMEOUT, free_port, start_cli_broker

SECRET = "correct-horse-battery-staple"


@pytest.mark.parametrize("source", ["file", "env"])
@pytest.mark.slow  # seconds each: make test-fast leaves it to make test
async def test_user_password_is_read_and_never_shown(tmp_path: Path, source: str) -> None:
    port, log = free_port(), tmp_path / "broker.log"
    extra = ["--user", "alice", "-v", "--trace"]
    old = os.environ.get(PASSWORD_ENV)
    if source == "file":
        (tmp_path / "pw").write_text(SECRET + "\n")
        extra += ["--password-file", str(tmp_path / "pw")]
    else:
        os.environ[PASSWORD_ENV] = SECRET
    try:
        process = await start_cli_broker(port, log, None, *extra)
    finally:
        if old is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = old
    try:
        assert SECRET not in " ".join(psutil.Process(process.pid).cmdline())
        connection = await aio_pika.connect(
            f"amqp://alice:{SECRET}@127.0.0.1:{port}/", timeout=TIMEOUT
        )
        await connection.close()
        with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
            await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{port}/", timeout=TIMEOUT)
    finally:
        process.terminate()
        process.wait(10)
    text = log.read_text()
    assert "amqp://alice:****@127.0.0.1" in text, text  # the banner, masked
    assert "login refused for user 'guest'" in text  # -v logs the refusal...
    assert SECRET not in text  # ...and nothing, banner, log or trace, shows the password


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--user", "alice"], "needs a password"),
        (["--password", "x"], "--password is not accepted"),
        (["--password-file", "/nonexistent"], "--password-file needs --user"),
        (["--user", "a", "--password-file", "/nonexistent"], "cannot read --password-file"),
        (["--memory-limit", "lots"], "is not a size"),
    ],
)
@pytest.mark.slow  # the CLI in a subprocess
def test_bad_options_get_one_line(args: list[str], words: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "mqlab", "broker", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode != 0
    # One line says it (argparse puts its usage line before it); no traceback.
    last = done.stderr.strip().splitlines()[-1]
    assert words in last and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("text", "size"),
    [("256MiB", 256 * 2**20), ("1GB", 10**9), ("1048576", 2**20), ("64 kib", 64 * 1024)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_relative_and_none() -> None:
    assert parse_size("none") is None
    share = parse_size("0.4")
    assert share is not None and share == pytest.approx(0.4 * psutil.virtual_memory().total, 0.01)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("0")
