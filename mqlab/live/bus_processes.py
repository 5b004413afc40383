"""A bus paper session as three OS processes: ``python -m mqlab paper --processes``.

:func:`run_processes` writes the session's settings to a config file and starts
``python -m mqlab.live.bus_processes ROLE CONFIG.json`` once for each service of
:mod:`mqlab.live.bus` (venue, strategy host, market); they share nothing but the broker. On
Ctrl-C only the market service acts: it publishes the end of the session as it would at the
end of its data, so the venue still writes its session file and its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mqlab.live.bus import LiveMarketService, LiveStrategyHost, LiveVenueService
from mqlab.live.common import make_strategy_from, status_writer, stop_on_signals
from mqlab.live.source import BinanceSource

__all__ = ["make_source", "run_processes", "service_main"]

ROLES = ("venue", "strategy", "market")  # the order they start in: consumers first


def service_main(argv: list[str] | None = None) -> int:
    """``python -m mqlab.live.bus_processes ROLE CONFIG.json``: one service of ``paper
    --processes``."""
    role, config_path = (argv if argv is not None else sys.argv[1:])[:2]
    config = json.loads(Path(config_path).read_text())
    url, prefix, meta = config["url"], config["prefix"], config["meta"]
    if role != "market":  # Ctrl-C in the terminal reaches every process: only the market acts
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def main() -> int:
        if role == "venue":
            show = status_writer() if config.get("status") else None
            result = await LiveVenueService(url, prefix, meta, config["record"],
                                            status=show).run()  # fmt: skip
            Path(config["result"]).write_text(json.dumps({
                "summary": result.summary,
                "latencies_ms": result.latencies_ms,
                "notices": result.notices,
            }))  # fmt: skip
        elif role == "strategy":
            await LiveStrategyHost(url, prefix, make_strategy_from(meta)).run()
        elif role == "market":
            from mqlab.live.source import LiveSourceError

            market = LiveMarketService(url, prefix, make_source(config))
            stop_on_signals(market.stop)
            try:
                await market.run(max_bars=config.get("bars"), seconds=config.get("seconds"))
            except LiveSourceError as exc:
                print(f"\nerror: {exc}", file=sys.stderr)
                return 1
        else:
            print(f"error: unknown service {role!r}: market, strategy or venue", file=sys.stderr)
            return 2
        return 0

    return asyncio.run(main())


def make_source(config: dict[str, Any]) -> BinanceSource:
    """The websocket source a ``paper --processes`` config describes."""
    from mqlab.live.binance import Subscription
    from mqlab.live.source import Backoff

    s = config["source"]
    subscription = Subscription((s["symbol"],), s["interval"], trades=s["trades"], book=s["book"])
    return BinanceSource(subscription, endpoint=s["endpoint"], in_progress=s["in_progress"],
                         backoff=Backoff(attempts=s["retries"]),
                         first_data_timeout=s["first_data_timeout"])  # fmt: skip


def run_processes(config: dict[str, Any], workdir: Path) -> tuple[int, dict[str, Any] | None]:
    """Start venue, strategy host and market as OS processes; wait; the venue's result."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.json"
    config = {**config, "result": str(workdir / "result.json")}
    path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "mqlab.live.bus_processes"]
    procs = {role: subprocess.Popen([*argv, role, str(path)], env=env) for role in ROLES}

    def forward(signum: int, frame: object) -> None:  # Ctrl-C here: the market stops first
        with contextlib.suppress(ProcessLookupError):
            procs["market"].send_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, forward)
    try:
        market_rc = procs["market"].wait()
        if market_rc != 0:  # no end message will come: stop the others
            for role in ("strategy", "venue"):
                procs[role].terminate()
        codes = {role: p.wait() for role, p in procs.items()}
    finally:
        signal.signal(signal.SIGINT, previous)
    if market_rc != 0:
        return market_rc, None
    if any(codes.values()):
        return 1, None
    return 0, json.loads(Path(config["result"]).read_text())


if __name__ == "__main__":
    sys.exit(service_main())
