"""The optional ccxt adapter, against the local fake server (no network: URL override and
set_markets). Skipped, with the reason, when ccxt is not installed."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from mqlab.events import Kline
from mqlab.live.binance import LiveInputError
from mqlab.live.fakeserver import FakeBinanceServer, session_script, time_lapse_klines

from .helpers import free_port, mqlab

needs_ccxt = pytest.mark.skipif(
    importlib.util.find_spec("ccxt") is None,
    reason="ccxt is optional (pip install -e '.[live]'); not installed here",
)


async def read_all(server: FakeBinanceServer, source: object) -> list[Kline]:
    out: list[Kline] = []

    async def read() -> None:
        async for bar in source:  # type: ignore[attr-defined]
            out.append(bar)

    task = asyncio.create_task(read())
    async with asyncio.timeout(20):
        await server.exhausted.wait()
        await asyncio.sleep(0.2)  # let ccxt hand over what is in flight
    task.cancel()
    return out


@needs_ccxt
async def test_ccxt_klines_are_the_closed_bars_with_exact_prices() -> None:
    from mqlab.live.ccxt_source import CcxtKlineSource, ccxt_market, make_exchange

    bars = time_lapse_klines(12)
    script = session_script(bars, updates=2, gap_at=6, gap_bars=2)
    async with FakeBinanceServer(script, pace=0.002) as server:
        exchange = make_exchange("binance", ws_url=f"{server.url}/ws",
                                 markets=[ccxt_market("BTC/USDT")])  # fmt: skip
        source = CcxtKlineSource(exchange, "BTC/USDT", "1m")
        try:
            got = await read_all(server, source)
        finally:
            await source.aclose()
    assert server.streams_asked == [["btcusdt@kline_1m"]]  # ccxt subscribed with SUBSCRIBE
    # ccxt drops the closed flag: a bar is delivered when the next one starts, so the last
    # bar is still pending; the two skipped bars are a reported gap.
    want = [b for i, b in enumerate(bars[:-1]) if i not in (6, 7)]
    assert [b.open_time for b in got] == [b.open_time for b in want]
    for g, w in zip(got, want, strict=True):
        assert (g.open, g.high, g.low, g.close, g.volume) == (w.open, w.high, w.low, w.close,
                                                             w.volume)  # fmt: skip
        assert g.symbol == "BTCUSDT" and g.platform == "binance"
    (gap,) = source.gaps
    assert gap.missing == 2


@needs_ccxt
def test_cli_paper_through_ccxt_then_replay(tmp_path: Path) -> None:
    port = free_port()
    server = mqlab("fake-binance", "--port", str(port), "--bars", "200", "--pace", "0.003")
    assert server.stdout is not None
    assert "serving" in server.stdout.readline()
    try:
        record = tmp_path / "s.jsonl"
        paper = mqlab("paper", "--ccxt", "binance", "--symbol", "BTC/USDT", "--endpoint",
                      f"ws://127.0.0.1:{port}", "--bars", "60", "--param", "fast=3",
                      "--param", "slow=8", "--record", str(record), "--json")  # fmt: skip
        out, err = paper.communicate(timeout=90)
        assert paper.returncode == 0, err
        replay = mqlab("backtest", "--replay", str(record))
        out, err = replay.communicate(timeout=60)
        assert replay.returncode == 0, out + err
        assert "identical_to_live  True" in out
    finally:
        server.terminate()
        server.communicate(timeout=10)


@needs_ccxt
def test_unknown_ccxt_exchange_and_symbol() -> None:
    from mqlab.live.ccxt_source import ccxt_market, make_exchange

    with pytest.raises(LiveInputError, match="unknown ccxt exchange 'nosuchex'"):
        make_exchange("nosuchex")
    with pytest.raises(LiveInputError, match="BASE/QUOTE"):
        ccxt_market("BTCUSDT")


def test_without_ccxt_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from mqlab.live.ccxt_source import make_exchange

    monkeypatch.setitem(sys.modules, "ccxt", None)  # import ccxt now fails, as if absent
    monkeypatch.setitem(sys.modules, "ccxt.pro", None)
    with pytest.raises(LiveInputError, match=r"ccxt is not installed.*pip install -e '.\[live\]'"):
        make_exchange("binance")
