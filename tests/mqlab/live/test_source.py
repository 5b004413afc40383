"""The websocket source against the local fake Binance server: faults, reconnects, errors."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mqlab.events import Kline, MarketEvent, OrderBook
from mqlab.live.binance import LiveInputError, Subscription
from mqlab.live.fakeserver import (
    Disconnect,
    FakeBinanceServer,
    Pause,
    kline_frame,
    session_script,
    time_lapse_klines,
)
from mqlab.live.source import Backoff, BinanceSource, LiveSourceError, Reconnect

from .helpers import free_port

FAST = Backoff(initial=0.02, factor=2.0, maximum=0.1, attempts=3)
SUB = Subscription(("BTCUSDT",), "1m", book="depth5")


async def collect(server: FakeBinanceServer, source: BinanceSource) -> list[MarketEvent]:
    """Every event until the server has played its script and the client has read it all."""
    out: list[MarketEvent] = []

    async def read() -> None:
        async for event in source:
            out.append(event)

    task = asyncio.create_task(read())
    async with asyncio.timeout(20):
        while not (server.exhausted.is_set() and source.parser.frames >= server.sent):
            if task.done():
                task.result()  # raise what ended it
            await asyncio.sleep(0.01)
    task.cancel()
    return out


def closed_bars(events: list[MarketEvent]) -> list[Kline]:
    return [e for e in events if isinstance(e, Kline)]


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "dropped"])
async def test_disconnect_reconnects_with_backoff_and_reports_the_gap(abrupt: bool) -> None:
    bars = time_lapse_klines(12)
    script = session_script(bars, updates=2, book="depth5", disconnect_at=5, lost_bars=2,
                            abrupt=abrupt)  # fmt: skip
    async with FakeBinanceServer(script) as server:
        source = BinanceSource(SUB, endpoint=server.url, backoff=FAST)
        events = await collect(server, source)
    got = [b.open_time for b in closed_bars(events)]
    want = [b.open_time for i, b in enumerate(bars) if i not in (5, 6)]  # lost while away
    assert got == want  # each closed bar once, in-progress updates never
    assert server.connections == 2 and source.reconnects == 1
    (reconnect,) = [n for n in source.notices if isinstance(n, Reconnect)]
    assert ("without a close frame" in reconnect.reason) == abrupt
    assert "code 1001" in reconnect.reason or abrupt
    (gap,) = source.parser.gaps
    assert gap.missing == 2
    assert all(isinstance(e, Kline | OrderBook) for e in events)
    times = [e.recv_ts for e in events]
    assert times == sorted(times)  # the clock never runs backwards, across the reconnect


async def test_malformed_frame_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    bars = time_lapse_klines(6)
    script = session_script(bars, malformed_at=3)
    async with FakeBinanceServer(script) as server:
        source = BinanceSource(Subscription(("BTCUSDT",)), endpoint=server.url, backoff=FAST)
        with caplog.at_level(logging.WARNING, logger="mqlab.live"):
            events = await collect(server, source)
    assert len(closed_bars(events)) == 6
    assert len(source.parser.malformed) == 1
    (record,) = [r for r in caplog.records if r.name == "mqlab.live"]
    assert record.getMessage().startswith("malformed frame ignored: not JSON")


async def test_gap_and_burst() -> None:
    bars = time_lapse_klines(30)
    script = session_script(bars, updates=1, gap_at=4, gap_bars=3, burst_at=10, burst_bars=15)
    async with FakeBinanceServer(script, pace=0.001) as server:
        source = BinanceSource(Subscription(("BTCUSDT",)), endpoint=server.url, backoff=FAST)
        events = await collect(server, source)
    assert len(closed_bars(events)) == 27  # 30 less the 3 skipped, the 15 of the burst intact
    (gap,) = source.parser.gaps
    assert gap.missing == 3 and gap.after == bars[3].open_time and gap.got == bars[7].open_time


async def test_server_shutdown_notice_triggers_a_reconnect() -> None:
    bars = time_lapse_klines(4)
    frames = [kline_frame(b) for b in bars]
    # Binance keeps streaming for a while after the notice; the client leaves at once.
    shutdown = '{"e": "serverShutdown", "E": 1}'
    script = [frames[0], frames[1], shutdown, Pause(0.3), frames[2], frames[3]]
    async with FakeBinanceServer(script) as server:
        source = BinanceSource(Subscription(("BTCUSDT",)), endpoint=server.url, backoff=FAST)
        events = await collect(server, source)
    assert len(closed_bars(events)) == 4
    assert source.reconnects == 1 and server.connections == 2


async def test_unreachable_endpoint_retries_then_says_so() -> None:
    port = free_port()  # nothing listens there
    source = BinanceSource(SUB, endpoint=f"ws://127.0.0.1:{port}", backoff=FAST)
    with pytest.raises(LiveSourceError) as info:
        async for _ in source:
            pass
    message = str(info.value)
    assert f"could not reach ws://127.0.0.1:{port}/stream" in message
    assert "after 3 attempts" in message and "last error" in message
    assert "\n" not in message
    assert source.reconnects == 3  # three waits: 0.02, 0.04, 0.08 s


async def test_unknown_symbol_silence_ends_with_a_clear_error() -> None:
    bars = time_lapse_klines(3)
    async with FakeBinanceServer([kline_frame(b) for b in bars]) as server:
        sub = Subscription(("DOGEXUSDT",))  # a well-formed name the server does not list
        source = BinanceSource(sub, endpoint=server.url, backoff=FAST, first_data_timeout=0.3)
        with pytest.raises(LiveSourceError, match=r"no market data within 0.3 s .*DOGEXUSDT"):
            async for _ in source:
                pass


def test_unknown_symbol_and_interval_refused_before_connecting() -> None:
    with pytest.raises(LiveInputError, match="unknown symbol"):
        Subscription(("BTC-USDT",))
    with pytest.raises(LiveInputError, match="unknown interval '2m'"):
        Subscription(("BTCUSDT",), "2m")


async def test_refused_handshake_is_not_retried() -> None:
    async with FakeBinanceServer([]) as server:
        source = BinanceSource(SUB, endpoint=server.url + "/nope", backoff=FAST)
        with pytest.raises(LiveSourceError, match="refused the websocket handshake with HTTP 400"):
            async for _ in source:
                pass
        assert source.reconnects == 0


async def test_idle_connection_is_presumed_dead_and_reopened() -> None:
    bars = time_lapse_klines(3)
    script = [kline_frame(bars[0]), Pause(0.5), kline_frame(bars[1]), kline_frame(bars[2])]
    async with FakeBinanceServer(script) as server:
        source = BinanceSource(SUB, endpoint=server.url, backoff=FAST, idle_timeout=0.15)
        events = await collect(server, source)
    assert source.reconnects >= 1
    assert any("no frame for 0.15 s" in str(n) for n in source.notices)
    assert [b.open_time for b in closed_bars(events)] == [b.open_time for b in bars]


async def test_nothing_is_sent_but_the_subscription_in_the_url() -> None:
    bars = time_lapse_klines(3)
    received: list[object] = []
    script = [*(kline_frame(b) for b in bars), Disconnect()]
    async with FakeBinanceServer(script, end="close") as server:
        original = server._handle

        async def spy(ws):  # type: ignore[no-untyped-def]
            async def listen() -> None:
                async for message in ws:
                    received.append(message)

            task = asyncio.create_task(listen())
            await original(ws)
            task.cancel()

        server._handle = spy  # type: ignore[method-assign]
        await server.stop()
        await server.start()
        source = BinanceSource(SUB, endpoint=server.url, backoff=FAST)
        count = 0
        async for _ in source:
            count += 1
            if count == 3:
                break
    assert received == []  # no subscribe message, no ping: only the URL asked
    assert server.streams_asked[0] == ["btcusdt@kline_1m", "btcusdt@depth5"]


async def test_the_servers_pings_are_answered_so_it_keeps_the_connection() -> None:
    bars = time_lapse_klines(3)
    script = [kline_frame(bars[0]), Pause(0.6), kline_frame(bars[1]), kline_frame(bars[2])]
    # The server pings every 50 ms and drops a client that has not answered within 100 ms.
    async with FakeBinanceServer(script, ping_interval=0.05, ping_timeout=0.1) as server:
        source = BinanceSource(SUB, endpoint=server.url, backoff=FAST)
        events = await collect(server, source)
    assert source.reconnects == 0 and server.connections == 1
    assert len(closed_bars(events)) == 3


@pytest.mark.slow  # waits out a missed pong
async def test_a_client_that_does_not_pong_is_dropped_by_the_server() -> None:
    # The control for the test above: with pongs withheld the same server does drop it.
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed
    from websockets.frames import Frame, Opcode

    server = await FakeBinanceServer([Pause(1)], ping_interval=0.05, ping_timeout=0.1).start()
    try:
        async with connect(SUB.url(server.url), ping_interval=None) as ws:
            send_frame = ws.protocol.send_frame

            def no_pongs(frame: Frame) -> None:
                if frame.opcode is not Opcode.PONG:
                    send_frame(frame)

            ws.protocol.send_frame = no_pongs  # type: ignore[method-assign]
            with pytest.raises(ConnectionClosed) as info:
                async with asyncio.timeout(3):
                    await ws.recv()
    finally:
        await server.stop()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011  # keepalive ping timeout
