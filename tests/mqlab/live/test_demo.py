"""Chapter 10's live section: the demo's endpoint setting, its comparison table, its plot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from mqlab.live.demo import (
    NO_FAULTS,
    LocalFaults,
    SmaSettings,
    bus_paper_demo,
    live_comparison,
    paper_demo,
    plot_live,
    same_fills,
)
from mqlab.live.fakeserver import FakeBinanceServer, session_script, time_lapse_klines


async def test_an_endpoint_given_as_a_setting_is_streamed_until_enough_bars(
    tmp_path: Path,
) -> None:
    """The path a learner with internet takes (``endpoint=BINANCE_STREAM_URL``), here pointed
    at the local server so it needs no network."""
    klines = time_lapse_klines(80)
    async with FakeBinanceServer(session_script(klines, book="depth5")) as server:
        url = server.url
        demo = await paper_demo(
            50,
            endpoint=url,
            interval="1m",
            sma=SmaSettings(fast=2, slow=5),
            record=tmp_path / "s.jsonl",
        )
    assert demo.source.startswith(url) and "BTCUSDT 1m" in demo.source
    assert demo.identical, demo.differences
    assert demo.fills >= 2
    assert demo.live.index.nunique() == 50  # stopped after 50 closed bars, though the server had 80
    # the backtest there runs on the recorded events: with no latency, the same curve
    assert demo.backtest.equals(demo.live)
    assert demo.first_divergence() is None


async def test_comparison_and_divergence_are_computed(tmp_path: Path) -> None:
    faults = LocalFaults(70, lost_bars=2, malformed_at=None, burst_at=None)
    faulty = await paper_demo(160, faults=faults, record=tmp_path / "a.jsonl")
    table = faulty.comparison()
    assert table["equal"].all() and "fills_sha256" in table.index
    assert table.loc["fills", "live (recorded)"] == faulty.fills
    first = faulty.first_divergence()
    # the live run lost two bars while away: it cannot part from the clean backtest before them
    assert first is not None and first >= faulty.live.index[2 * 69]
    clean = await paper_demo(160, faults=NO_FAULTS, record=tmp_path / "b.jsonl")
    assert clean.first_divergence() is None
    # a changed replay shows as unequal rows, not as a pass
    clean.replay_summary = {**clean.replay_summary, "equity": "0"}
    assert not clean.comparison().loc["equity", "equal"]


async def test_plot_has_three_labelled_curves(tmp_path: Path) -> None:
    faults = LocalFaults(50, malformed_at=None, burst_at=None)
    demo = await paper_demo(100, faults=faults, record=tmp_path / "s.jsonl")
    ax = plot_live(demo, tmp_path / "live.png")
    try:
        assert len(ax.lines) == 3 and ax.get_title() and "USDT" in ax.get_ylabel()
        assert ax.get_xlabel() == "time (UTC)"
        assert "retraces" in ax.get_title()  # the replay was identical, and the title says so
        assert (tmp_path / "live.png").stat().st_size > 0
    finally:
        plt.close(ax.figure)


@pytest.mark.slow  # the chapter's whole bus leg: seconds
async def test_bus_leg_of_the_chapter(embedded_url: str, tmp_path: Path) -> None:
    faults = LocalFaults(60, lost_bars=2, malformed_at=None, burst_at=None)
    demo = await paper_demo(120, faults=faults, record=tmp_path / "a.jsonl")
    over_bus = await bus_paper_demo(embedded_url, 120, faults=faults, record=tmp_path / "b.jsonl")
    assert over_bus.identical, over_bus.differences
    assert over_bus.reconnects == 1 and over_bus.fills > 0
    assert len(over_bus.extra["latencies_ms"]) == over_bus.live_summary["orders_sent"]
    table = live_comparison(demo, over_bus)
    assert list(table.columns) == ["in process", "over the bus"]
    assert table.loc["fills", "over the bus"] == over_bus.fills
    assert table.loc["replay identical to the live run"].all()
    missed = table.loc["market events orders could not trade on", "over the bus"]
    assert missed == sum(over_bus.extra["overtaken"])
    # same_fills compares what was traded: equal to itself, unequal once a price moves
    assert same_fills(demo, demo)
    moved = [(*e[:3], e[3] + 1, e[4]) for e in demo.executions]
    assert not same_fills(demo, replace(demo, executions=moved))
