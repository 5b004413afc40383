"""Paper trading on the local server, its session file, and the replay's exact equality."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mqlab.__main__ import main
from mqlab.live.demo import NO_FAULTS, LocalFaults, paper_demo
from mqlab.live.record import SessionError, read_session
from mqlab.live.replay import replay_session

from .helpers import (
    assert_cli_replay_matches,
    fake_binance,
    free_port,
    interrupt_after_some_bars,
    mqlab,
)


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("paper") / "session.jsonl"


async def test_replay_of_a_session_with_a_disconnect_gives_the_same_fills_and_pnl(
    tmp_path: Path,
) -> None:
    path = tmp_path / "session.jsonl"
    demo = await paper_demo(160, faults=LocalFaults(70, lost_bars=2, malformed_at=40, burst_at=110),
                            record=path)  # fmt: skip
    # the session really had its faults
    assert demo.reconnects == 1
    assert any("connection closed by the server (code 1001)" in n for n in demo.notices)
    assert any("2 closed bar(s) missing" in n for n in demo.notices)
    assert any(n.startswith("malformed frame ignored") for n in demo.notices)
    assert demo.fills >= 4  # the strategy traded, so equal fills mean something
    # the replay, from the file alone, against what the live run did
    replay = replay_session(path)
    session = read_session(path)
    assert replay.identical, replay.differences
    assert session.summary is not None
    assert replay.summary["fills_sha256"] == session.summary["fills_sha256"]
    assert replay.summary["equity"] == session.summary["equity"]
    assert replay.summary["realised"] == session.summary["realised"]
    assert replay.summary["fees"] == session.summary["fees"]
    assert [(t, o.id) for t, o in session.orders] == [
        (o.ts, o.id) for o in replay.result.orders
    ]  # latency 0: each order reached the venue when it was sent
    assert demo.live.equals(demo.replay)
    # the faults changed what the strategy saw: the clean backtest is a different run
    assert len(demo.backtest) > len(demo.live)


async def test_replay_is_exact_with_order_latency_too(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    demo = await paper_demo(160, latency_ms=40_000, jitter_ms=30_000, record=path)
    session = read_session(path)
    delays = {t - o.ts for t, o in session.orders}
    assert len(delays) > 1 and min(delays) >= 40_000  # orders reached the venue later, jittered
    assert demo.fills >= 4 and demo.identical, demo.differences


async def test_replay_notices_a_session_that_does_not_match(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    await paper_demo(120, faults=NO_FAULTS, record=path)
    lines = path.read_text().splitlines()
    # Move one bar's close: the strategy's decisions and the marks change.
    for i, line in enumerate(lines):
        obj = json.loads(line)
        if obj["kind"] == "market" and obj["event"]["event"] == "kline" and i > 100:
            event = obj["event"]
            event["close"] = event["high"] = str(float(event["high"]) * 1.05)[:12]
            lines[i] = json.dumps(obj)
            break
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    replay = replay_session(tampered)
    assert not replay.identical
    assert any(d.startswith(("equity", "order", "fills", "live sent")) for d in replay.differences)


def test_session_file_errors_are_one_line_and_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="not found; record one with python -m mqlab paper"):
        read_session(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "market", "t": 1, "event": {}}\n')
    with pytest.raises(SessionError, match="line 1: not a session file"):
        read_session(bad)
    bad.write_text('{"kind": "session", "version": 1, "cash": "1"}\n{"kind": "market"}\n')
    with pytest.raises(SessionError, match="line 2: incomplete market line"):
        read_session(bad)
    bad.write_text('{"kind": "session", "version": 1}\n{"kind": "market", "t": 1, "event": '
                   '{"event": "kline", "symbol": "X"}}\n')  # fmt: skip
    with pytest.raises(SessionError, match="line 2: field 'platform': missing"):
        read_session(bad)


def test_a_session_cut_mid_line_still_reads_up_to_it(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    path.write_text('{"kind": "session", "version": 1}\n{"kind": "notice", "t": 1, "text": "x"}\n'
                    '{"kind": "market", "t": 2, "ev')  # fmt: skip
    session = read_session(path)
    assert session.notices == ["x"] and session.summary is None


# --- the command line, end to end -----------------------------------------------------------


@pytest.fixture
def fake_server() -> Iterator[str]:
    listening = "serving 400 SYNTHETIC BTCUSDT 1m bars at ws://127.0.0.1:"
    with fake_binance(
        "--bars", "400", "--disconnect-at", "60", pace="0.003", expect=listening
    ) as url:
        yield url


@pytest.mark.slow
def test_cli_paper_then_backtest_replay(fake_server: str, tmp_path: Path) -> None:
    record = tmp_path / "s.jsonl"
    paper = mqlab("paper", "--endpoint", fake_server, "--bars", "120", "--param", "fast=3",
                  "--param", "slow=8", "--record", str(record), "--json")  # fmt: skip
    out, err = paper.communicate(timeout=60)
    assert paper.returncode == 0, err
    report = json.loads(out)
    assert report["bars"] == 120 and report["reconnects"] == 1 and report["fills"] > 0
    assert_cli_replay_matches(record, report)


@pytest.mark.slow
def test_cli_paper_ctrl_c_stops_cleanly_with_a_report(fake_server: str, tmp_path: Path) -> None:
    record = tmp_path / "s.jsonl"
    paper = mqlab("paper", "--endpoint", fake_server, "--record", str(record))
    out, err = interrupt_after_some_bars(paper, wait=30, timeout=20)
    assert paper.returncode == 0, err
    assert "equity" in out and "replay" in out and "Traceback" not in err
    assert read_session(record).summary is not None  # the end line was written
    assert replay_session(record).identical


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["paper", "--symbol", "BTC/USDT"], "error: unknown symbol 'BTC/USDT'"),
        (["paper", "--interval", "7m"], "error: unknown interval '7m'"),
        (["paper", "--endpoint", "http://x"], "error: bad endpoint 'http://x'"),
        (["paper", "--param", "fast"], "error: --param 'fast': write NAME=VALUE"),
        (["fake-binance", "--symbol", "BTC-USDT"], "error: unknown symbol 'BTC-USDT'"),
        (["fake-binance", "--interval", "2m"], "error: unknown interval '2m'"),
        (["backtest", "--replay", "no/such/session.jsonl"],
         "error: session file no/such/session.jsonl not found"),
    ],
)  # fmt: skip
def test_cli_live_commands_bad_input_is_one_clear_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(message), err


@pytest.mark.slow  # the CLI in a subprocess, with retries
def test_cli_paper_unreachable_endpoint(tmp_path: Path) -> None:
    port = free_port()
    paper = mqlab("paper", "--endpoint", f"ws://127.0.0.1:{port}", "--retries", "2",
                  "--record", str(tmp_path / "s.jsonl"))  # fmt: skip
    _, err = paper.communicate(timeout=60)
    assert paper.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: could not reach ws://127.0.0.1:{port}/stream?streams=")
    assert "after 2 attempts" in last and "Connect" in last


@pytest.mark.slow  # a CLI subprocess session: ~12 s; make test runs it
def test_cli_paper_malformed_frames_and_a_gap_are_reported_and_survived(tmp_path: Path) -> None:
    record = tmp_path / "s.jsonl"
    with fake_binance("--bars", "120", "--malformed-at", "20", "--gap-at", "40",
                      pace="0.002") as url:  # fmt: skip
        paper = mqlab("paper", "--endpoint", url, "--bars", "80", "--record", str(record),
                      "--json")  # fmt: skip
        out, err = paper.communicate(timeout=60)
    assert paper.returncode == 0, err
    report = json.loads(out)
    assert report["malformed"] == 1 and report["gaps"] == 1 and report["bars"] == 80
    reasons = [line for line in err.splitlines() if line.startswith("malformed frame ignored")]
    assert len(reasons) == 1 and "not JSON" in reasons[0]  # one line, with its reason
    assert "Traceback" not in err
    assert replay_session(record).identical


@pytest.mark.slow  # a CLI subprocess session: ~12 s; make test runs it
def test_cli_paper_well_formed_but_unlisted_symbol_ends_with_a_clear_error(
    tmp_path: Path,
) -> None:
    record = str(tmp_path / "s.jsonl")
    with fake_binance("--bars", "50", pace="0.002") as url:  # serves BTCUSDT only
        paper = mqlab("paper", "--endpoint", url, "--symbol", "ETHUSDT",
                      "--first-data-timeout", "1", "--record", record)  # fmt: skip
        _, err = paper.communicate(timeout=60)
    assert paper.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: no market data within 1") and "ETHUSDT" in last, err
