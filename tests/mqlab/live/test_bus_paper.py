"""Paper trading over the bus, free-running: the replay of the venue's file is exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mqlab.live.binance import Subscription
from mqlab.live.bus import run_bus_session
from mqlab.live.bus_venue import replay_bus_session
from mqlab.live.fakeserver import FakeBinanceServer, session_script, time_lapse_klines
from mqlab.live.record import read_session
from mqlab.live.source import Backoff, BinanceSource
from mqlab.strategies import SmaCross

from .helpers import (
    assert_cli_replay_matches,
    fake_binance,
    free_port,
    interrupt_after_some_bars,
    mqlab,
)

META = {
    "symbol": "BTCUSDT",
    "interval": "1m",
    "strategy": "sma_cross",
    "params": {"fast": 3, "slow": 8, "qty": "0.1"},
    "cash": "10000",
    "fee": "0.001",
    "latency_ms": 0,
}


async def test_bus_session_with_a_disconnect_replays_to_the_same_fills_and_pnl(
    amqp_url: str, tmp_path: Path
) -> None:
    klines = time_lapse_klines(140)
    script = session_script(klines, book="depth5", disconnect_at=60, lost_bars=2,
                            malformed_at=30, burst_at=100)  # fmt: skip
    record = tmp_path / "bus.jsonl"
    async with FakeBinanceServer(script, pace=0.002) as server:
        source = BinanceSource(Subscription(("BTCUSDT",), "1m", book="depth5"),
                               endpoint=server.url, backoff=Backoff(initial=0.05))  # fmt: skip
        meta = {**META, "endpoint": server.url}
        result = await run_bus_session(amqp_url, SmaCross(3, 8, "0.1"), source, meta, record,
                                       max_bars=130)  # fmt: skip
    assert source.reconnects == 1 and len(result.fills) >= 4
    assert any("closed bar(s) missing" in n for n in result.notices)
    assert any(n.startswith("malformed frame ignored") for n in result.notices)
    assert len(result.latencies_ms) == result.summary["orders_sent"]  # each order measured
    session = read_session(record)
    assert session.meta["mode"] == "bus" and session.summary == result.summary
    replay = replay_bus_session(session)
    assert replay.identical, replay.differences
    assert replay.fills == result.fills
    assert replay.portfolio.equity_curve().equals(result.equity_curve)


async def test_bus_replay_notices_a_changed_arrival(embedded_url: str, tmp_path: Path) -> None:
    """The check can fail: move one order's venue arrival a bar later in the file."""
    klines = time_lapse_klines(80)
    record = tmp_path / "bus.jsonl"
    async with FakeBinanceServer(session_script(klines, book="depth5"), pace=0.002) as server:
        source = BinanceSource(Subscription(("BTCUSDT",), "1m", book="depth5"),
                               endpoint=server.url)  # fmt: skip
        await run_bus_session(embedded_url, SmaCross(2, 5, "0.1"), source, META, record,
                              max_bars=75)  # fmt: skip
    lines = record.read_text().splitlines()
    objs = [json.loads(line) for line in lines]
    first = next(i for i, o in enumerate(objs) if o["kind"] == "order")
    # Swap the order with the next market line: it now reaches the venue one event later.
    after = next(i for i in range(first + 1, len(objs)) if objs[i]["kind"] == "market")
    objs[first], objs[after] = objs[after], objs[first]
    objs[after]["t"] = objs[first]["t"] + 60_000 * 3
    record.write_text("".join(json.dumps(o) + "\n" for o in objs))
    replay = replay_bus_session(record)
    assert not replay.identical and replay.differences


@pytest.mark.slow
@pytest.mark.parametrize("processes", [False, True], ids=["one-process", "processes"])
def test_cli_paper_over_the_bus_then_backtest_replay(
    amqp_url: str, processes: bool, tmp_path: Path
) -> None:
    record = tmp_path / "s.jsonl"
    with fake_binance("--bars", "200", "--disconnect-at", "50", pace="0.003") as url:
        paper = mqlab("paper", "--endpoint", url, "--bars", "90", "--param", "fast=3",
                      "--param", "slow=8", "--record", str(record), "--json", "--url", amqp_url,
                      *(["--processes"] if processes else []))  # fmt: skip
        out, err = paper.communicate(timeout=120)
    assert paper.returncode == 0, err
    report = json.loads(out)
    assert report["mode"] == ("processes" if processes else "one process")
    assert report["fills"] > 0 and report["notices"] >= 1  # the reconnect
    assert_cli_replay_matches(record, report)


@pytest.mark.slow
def test_cli_paper_processes_ctrl_c_stops_cleanly_with_a_report(tmp_path: Path) -> None:
    record = tmp_path / "s.jsonl"
    with fake_binance("--bars", "2000", pace="0.003") as url:
        paper = mqlab("paper", "--endpoint", url, "--processes", "--record", str(record))
        out, err = interrupt_after_some_bars(paper, wait=60, timeout=60)
    assert paper.returncode == 0, err
    assert "equity" in out and "replay" in out and "Traceback" not in err
    assert replay_bus_session(record).identical


def test_cli_paper_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    paper = mqlab("paper", "--url", f"amqp://guest:guest@127.0.0.1:{port}/",
                  "--record", str(tmp_path / "s.jsonl"))  # fmt: skip
    _, err = paper.communicate(timeout=60)
    assert paper.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(port) in last, err


def test_overtaken_counts_events_stamped_before_an_order_reached_the_venue() -> None:
    from decimal import Decimal

    from mqlab.events import Order, OrderType, Side
    from mqlab.live.bus_venue import overtaken
    from mqlab.live.record import Session

    bars = time_lapse_klines(4, start_ms=0)  # closes at 60_000, 120_000, ...
    order = Order("s-1", "s", "binance", "BTCUSDT", Side.BUY, OrderType.MARKET,
                  Decimal("0.1"), None, 60_000, 60_000)  # fmt: skip
    session = Session(Path("x"), {}, events=list(bars), orders=[(150_000, order)])
    # handled: bar 1, the order (arrived at 150 s), bars 2 (ts 120 s: before it), 3, 4
    session.sequence = [("market", 0), ("order", 0), ("market", 1), ("market", 2),
                        ("market", 3)]  # fmt: skip
    assert overtaken(session) == [1]
    session.orders = [(100_000, order)]
    assert overtaken(session) == [0]
