"""The sans-IO Binance stream parser: frames in, events / gaps / reasons out."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from mqlab.events import Kline, OrderBook, Side, Trade
from mqlab.live.binance import (
    Gap,
    LiveInputError,
    Malformed,
    ServerShutdown,
    StreamParser,
    Subscription,
    check_interval,
    check_symbol,
    events_only,
)
from mqlab.live.fakeserver import (
    book_ticker_frame,
    depth_frame,
    kline_frame,
    time_lapse_klines,
    trade_frame,
)

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def bars(n: int = 5) -> list[Kline]:
    return time_lapse_klines(n, start_ms=T0)


def parser(**kw: object) -> StreamParser:
    sub = Subscription(("BTCUSDT",), "1m", trades=True, book="depth5")
    return StreamParser(sub, **kw)  # type: ignore[arg-type]


# Binance's documented kline payload, verbatim in shape (values changed to a BTCUSDT bar).
DOC_KLINE = {
    "stream": "btcusdt@kline_1m",
    "data": {
        "e": "kline",
        "E": 1672515782136,
        "s": "BTCUSDT",
        "k": {
            "t": 1672515780000,
            "T": 1672515839999,
            "s": "BTCUSDT",
            "i": "1m",
            "f": 100,
            "L": 200,
            "o": "16500.10",
            "c": "16502.00",
            "h": "16510.00",
            "l": "16499.00",
            "v": "12.5",
            "n": 100,
            "x": True,
            "q": "206275.0",
            "V": "500",
            "Q": "0.500",
            "B": "123456",
        },
    },
}


def doc_kline(**k: object) -> str:
    """The documented kline frame with some of its ``k`` fields replaced."""
    data = dict(DOC_KLINE["data"])  # type: ignore[call-overload]
    data["k"] = {**data["k"], **k}
    return json.dumps({**DOC_KLINE, "data": data})


def test_documented_kline_payload_becomes_a_kline() -> None:
    p = parser()
    (bar,) = p.feed(json.dumps(DOC_KLINE), 1672515840005)
    assert isinstance(bar, Kline)
    assert (bar.symbol, bar.interval, bar.open_time) == ("BTCUSDT", "1m", 1672515780000)
    assert (bar.open, bar.high, bar.low, bar.close) == tuple(
        Decimal(x) for x in ("16500.10", "16510.00", "16499.00", "16502.00")
    )
    assert bar.ts == 1672515840000  # closes at open + interval, like the CSV source
    assert bar.recv_ts == 1672515840005  # when it arrived
    assert bar.trades == 100 and bar.quote_volume == Decimal("206275.0")


def test_kline_is_delivered_once_when_closed_unless_in_progress_asked() -> None:
    b = bars(2)[0]
    p = parser()
    assert p.feed(kline_frame(b, closed=False, event_time=b.open_time + 2000).text(), T0) == []
    assert p.in_progress_dropped == 1
    (closed,) = p.feed(kline_frame(b).text(), b.ts + 3)
    assert closed.id == b.id
    assert p.feed(kline_frame(b).text(), b.ts + 9) == []  # a resend is dropped
    assert p.duplicates == 1

    live = parser(in_progress=True)
    (update,) = live.feed(kline_frame(b, closed=False, event_time=b.open_time + 2000).text(), T0)
    assert isinstance(update, Kline) and update.ts == b.open_time + 2000 < b.open_time + 60_000
    (final,) = live.feed(kline_frame(b).text(), b.ts)
    assert final.ts == b.ts


def test_missing_bars_are_reported_as_a_gap_and_the_bar_still_delivered() -> None:
    b = bars(5)
    p = parser()
    p.feed(kline_frame(b[0]).text(), b[0].ts)
    out = p.feed(kline_frame(b[3]).text(), b[3].ts)
    gap, bar = out
    assert isinstance(gap, Gap) and gap.missing == 2
    assert "2 closed bar(s) missing" in str(gap)
    assert bar.id == b[3].id
    assert p.gaps == [gap]


def trade(tid: int, maker: bool = False) -> Trade:
    side = Side.SELL if maker else Side.BUY
    return Trade("binance", "BTCUSDT", tid, Decimal("42000.5"), Decimal("0.01"), side, T0, T0)


def test_trades_side_from_the_maker_flag_and_skipped_ids_are_gaps() -> None:
    p = parser()
    (t1,) = p.feed(trade_frame(trade(10, maker=True)).text(), T0 + 1)
    assert isinstance(t1, Trade) and t1.side is Side.SELL  # buyer was maker: a seller hit
    (t2,) = p.feed(trade_frame(trade(11)).text(), T0 + 2)
    assert t2.side is Side.BUY
    gap, t5 = p.feed(trade_frame(trade(15)).text(), T0 + 3)
    assert isinstance(gap, Gap) and gap.missing == 3 and gap.what == "trade id"
    assert p.feed(trade_frame(trade(12)).text(), T0 + 4) == []  # old id: dropped
    assert t5.trade_id == 15


def book(seq: int) -> OrderBook:
    bids = ((Decimal("100.0"), Decimal("1")), (Decimal("99.9"), Decimal("2")))
    asks = ((Decimal("100.1"), Decimal("1")), (Decimal("100.2"), Decimal("3")))
    return OrderBook("binance", "BTCUSDT", bids, asks, seq, T0, T0)


def test_depth_has_no_time_so_arrival_is_its_time_and_backwards_ids_are_gaps() -> None:
    p = parser()
    (b,) = p.feed(depth_frame(book(500)).text(), T0 + 7)
    assert isinstance(b, OrderBook) and b.seq == 500 and b.ts == b.recv_ts == T0 + 7
    assert b.bids[0] == (Decimal("100.0"), Decimal("1"))
    (later,) = p.feed(depth_frame(book(530)).text(), T0 + 8)  # ids skip by design: no gap
    assert later.seq == 530 and not p.gaps
    (back,) = p.feed(depth_frame(book(520)).text(), T0 + 9)
    assert isinstance(back, Gap) and back.missing == -1 and "went back" in str(back)


def test_book_ticker_is_a_one_level_book() -> None:
    sub = Subscription(("BTCUSDT",), "1m", book="bookTicker")
    (b,) = StreamParser(sub).feed(book_ticker_frame(book(9)).text(), T0)
    assert isinstance(b, OrderBook) and len(b.bids) == len(b.asks) == 1
    assert b.asks[0] == (Decimal("100.1"), Decimal("1"))


def test_clock_never_runs_backwards_nor_behind_the_data() -> None:
    b = bars(3)
    p = parser()
    (k,) = p.feed(kline_frame(b[0]).text(), b[0].ts - 50)  # local clock 50 ms behind
    assert k.recv_ts == k.ts and p.max_clock_skew_ms == 50
    (d,) = p.feed(depth_frame(book(1)).text(), b[0].ts - 10)  # earlier than the clock
    assert d.recv_ts == d.ts == b[0].ts


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"result": null, "id": 1}', "not a combined-stream message"),
        ('{"stream": "ethusdt@trade", "data": {}}', "unexpected stream 'ethusdt@trade'"),
        ('{"error": {"code": 2, "msg": "Invalid request"}, "id": 1}', "answered with an error"),
        (
            json.dumps({**DOC_KLINE, "data": {**DOC_KLINE["data"], "k": {"x": True}}}),
            "interval None is not 1m",
        ),
        (doc_kline(c=1.5), "field 'c': expected a decimal string"),
        (doc_kline(l="99999"), "above open or close"),
        (
            '{"stream": "btcusdt@depth5", "data": {"lastUpdateId": 1, "bids": [], "asks": []}}',
            "empty side",
        ),
    ],
)  # fmt: skip
def test_malformed_frames_get_a_one_line_reason_and_no_exception(frame: str, reason: str) -> None:
    p = parser()
    (bad,) = p.feed(frame, T0)
    assert isinstance(bad, Malformed)
    assert reason in bad.reason and "\n" not in str(bad)
    assert p.malformed == [bad]
    # and the parser goes on
    assert events_only(p.feed(kline_frame(bars(1)[0]).text(), T0 + 60_000))


def test_server_shutdown_notice() -> None:
    (note,) = parser().feed('{"e": "serverShutdown", "E": 1}', T0)
    assert isinstance(note, ServerShutdown)


def test_symbols_and_intervals_are_checked_with_clear_errors() -> None:
    assert check_symbol("btcusdt") == "BTCUSDT"
    with pytest.raises(LiveInputError, match=r"unknown symbol 'BTC/USDT'.*letters and digits"):
        check_symbol("BTC/USDT")
    with pytest.raises(LiveInputError, match="must end in a quote asset"):
        check_symbol("BTCXYZ")
    assert check_interval("5m") == "5m"
    with pytest.raises(LiveInputError, match=r"unknown interval '7m'; Binance's kline intervals"):
        check_interval("7m")
    with pytest.raises(LiveInputError, match="no fixed length"):
        check_interval("1M")
    with pytest.raises(LiveInputError, match="unknown book stream"):
        Subscription(("BTCUSDT",), book="depth7")
    with pytest.raises(LiveInputError, match="bad endpoint"):
        Subscription(("BTCUSDT",)).url("http://example.invalid")


def test_combined_stream_url() -> None:
    sub = Subscription(("BTCUSDT", "ethusdt"), "1m", trades=True, book="depth5")
    assert sub.url("ws://127.0.0.1:9443/") == (
        "ws://127.0.0.1:9443/stream?streams=btcusdt@kline_1m/btcusdt@trade/btcusdt@depth5/"
        "ethusdt@kline_1m/ethusdt@trade/ethusdt@depth5"
    )
