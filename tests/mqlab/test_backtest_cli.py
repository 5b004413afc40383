"""`python -m mqlab backtest`: one clear line for bad arguments; true progress and plot path."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mqlab.__main__ import main
from mqlab.market import SAMPLE_DATA

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)


def test_a_parameter_of_the_wrong_type_is_named_with_its_type(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["backtest", "--param", "fast=abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "'fast'" in err and "whole number (int)" in err and "not supported" not in err


def test_a_negative_latency_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["backtest", "--latency-ms", "-5"])
    assert info.value.code == 2
    assert "--latency-ms: expected a whole number of milliseconds >= 0" in capsys.readouterr().err


def _header_file(tmp_path: Path) -> Path:
    """The bundled sample with a header row, as newer Binance files have."""
    rows = [r for r in SAMPLE_DATA.read_text().splitlines(keepends=True) if not r.startswith("#")]
    path = tmp_path / "BTCUSDT-1m-2024-01-01.csv"
    path.write_text(HEADER + "".join(rows))
    return path


@pytest.mark.parametrize("zipped", [False, True])
def test_progress_ends_at_exactly_the_event_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zipped: bool
) -> None:
    import tqdm.auto

    bars: list[Any] = []

    class Bar:
        def __init__(self, total: int | None = None, **_: object) -> None:
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, k: int) -> None:
            self.n += k

        def close(self) -> None:
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    data = _header_file(tmp_path)
    if zipped:
        archive = data.with_suffix(".zip")
        with zipfile.ZipFile(archive, "w") as z:
            z.write(data, data.name)
        data = archive
    assert main(["backtest", "--data", str(data)]) == 0
    (bar,) = bars
    assert bar.n == bar.total == 4320


def test_plot_into_new_folders_says_where_the_file_went(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "some" / "dir" / "x.png"
    assert main(["backtest", "--json", "--plot", str(plot)]) == 0
    out, err = capsys.readouterr()
    assert plot.exists() and json.loads(out)["plot"] == str(plot)
    assert f"equity curve written to {plot.resolve()}" in err
    assert f"created the folder {tmp_path / 'some'}" in err
    capsys.readouterr()
    assert main(["backtest", "--json", "--plot", str(plot)]) == 0  # folders exist now
    err = capsys.readouterr().err
    assert f"written to {plot.resolve()}" in err and "created" not in err
