"""Parity: over the bus, the pipeline makes exactly the backtest's fills and PnL.

Each test runs on the embedded broker and on RabbitMQ (``amqp_url``), with a unique prefix
(the pipeline picks ``mqlab-<random>`` per run and deletes its queues when it finishes).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import psutil
import pytest

from mqlab.bus import Bus
from mqlab.config import RunConfig
from mqlab.events import Kline
from mqlab.faults import malformed_messages
from mqlab.pipeline import (
    Pipeline,
    fill_rows,
    injected_table,
    mark_state,
    prepare_state,
    resumable,
    run_pipeline,
)
from mqlab.pipeline.result import message_groups, sum_counts
from mqlab.services._runtime import Journal
from mqlab.services.exchange import replay_journal
from mqlab.services.options import ServiceOptions

# Whole pipelines, processes and CLIs take seconds each: marked slow, make test-fast leaves them
# to make test. It keeps one in-process run on the embedded broker as the pipeline's smoke test.

CASES = {
    # bars, orders answered before the next bar: the common case
    "sma": RunConfig(limit=400),
    # order books: partial fills over several snapshots; answers (1.5 s latency) arrive after
    # the next snapshot, so the exchange must deliver them from its queue in time order
    "books-latency": RunConfig(strategy="imbalance", limit=500, latency_ms=1500),
}


def _check_parity(config: RunConfig, result) -> None:  # type: ignore[no-untyped-def]
    reference = config.backtest()
    print(
        f"{config.strategy}: events={result.events} orders={result.orders} "
        f"fills={len(result.fills)} (backtest {len(reference.fills)}) pnl={result.pnl} "
        f"duplicates_dropped={result.duplicates_dropped} dead_lettered={result.dead_lettered}"
    )
    assert result.complete
    assert result.events == len(config.events)
    assert result.fills == fill_rows(reference.fills), "fills differ from the backtest"
    assert result.equity == reference.portfolio.equity(), "final equity differs"
    assert result.pnl == reference.portfolio.equity() - reference.portfolio.initial
    assert len(result.fills) > 0, "a parity test without fills proves nothing"
    assert result.parity is True
    # One event per message: each is one publish and a delivery to the exchange and to the
    # one strategy, 3 messages; what else the run sent is orders, answers and the protocol's.
    per = result.messages_per_event
    assert per["by_group"]["market"] == 3.0
    assert per["by_group"]["orders"] > 0 and per["by_group"]["sync"] > 0
    assert abs(sum(per["by_group"].values()) - per["total"]) <= 0.003


@pytest.mark.parametrize("case", ["sma", pytest.param("books-latency", marks=pytest.mark.slow)])
async def test_one_process_matches_the_backtest(amqp_url: str, tmp_path: Path, case: str) -> None:
    config = CASES[case]
    result = await run_pipeline(config, url=amqp_url, out=tmp_path, progress=False)
    _check_parity(config, result)
    assert result.dead_lettered == 0 and result.latency_ms
    assert (tmp_path / "equity.png").stat().st_size > 0
    assert (tmp_path / "latency.png").stat().st_size > 0


@pytest.mark.slow
async def test_processes_match_the_backtest(amqp_url: str, tmp_path: Path) -> None:
    config = RunConfig(limit=250)
    result = await run_pipeline(config, url=amqp_url, out=tmp_path, processes=True, progress=False)
    assert result.mode == "4 processes"
    _check_parity(config, result)


@pytest.mark.slow
async def test_ctrl_c_drains_then_a_restart_resumes(amqp_url: str, tmp_path: Path) -> None:
    config = RunConfig(limit=300)
    state = tmp_path / "state"
    prefix, resuming = prepare_state(state, config)
    assert not resuming
    pipeline = Pipeline(config, amqp_url, prefix=prefix, state_dir=state, out=tmp_path)
    await pipeline.start_all()
    async with asyncio.timeout(60):
        while pipeline.step < 180:
            await asyncio.sleep(0.01)
    pipeline.request_stop()  # what Ctrl-C does
    await asyncio.wait_for(pipeline.wait(), 60)
    paused = pipeline.result("one process")
    print(
        f"paused at step {pipeline.step} of {len(config.events)}; fills so far {len(paused.fills)}"
    )
    assert not paused.complete and 180 <= pipeline.step < len(config.events)
    assert paused.fills, "pause after some fills, so the resume must carry them on"
    # Drained: every service handled everything that was published; no queue holds a message.
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for name in ("exchange.market", "exchange.orders",
                     "portfolio.execution", "strategy.sma_cross.market",
                     "strategy.sma_cross.execution"):  # fmt: skip
            queue = await channel.declare_queue(f"{prefix}.{name}", passive=True)
            assert queue.declaration_result.message_count == 0, name
    # Nothing is left on the broker that the next run needs: start it on empty queues, as
    # after restarting an in-memory broker.
    await pipeline.delete_topology()
    result = await run_pipeline(config, url=amqp_url, out=tmp_path, progress=False)
    _check_parity(config, result)


@pytest.mark.slow
def test_cli_prints_the_summary_as_json(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "mqlab", "pipeline", "--json", "--limit", "150"]
    done = subprocess.run(
        [*argv, "--out", str(tmp_path)], capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    print({k: summary[k] for k in ("events", "orders", "fills", "final_pnl", "events_per_s")})
    assert summary["events"] == 150 and summary["same_as_backtest"] is True
    for key in ("latency_ms_p50", "latency_ms_p99", "events_per_s", "final_pnl", "orders"):
        assert summary[key] is not None, key
    assert Path(summary["paths"]["equity"]).exists() and Path(summary["paths"]["latency"]).exists()


@pytest.mark.slow
def test_cli_killed_with_sigkill_resumes_on_the_next_run(tmp_path: Path) -> None:
    """``kill -9`` the whole pipeline (its embedded broker too) mid-run; run it again."""
    argv = [sys.executable, "-m", "mqlab", "pipeline", "--json", "--limit", "900"]
    argv += ["--out", str(tmp_path)]
    journal = tmp_path / "state" / "exchange.jsonl"
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not journal.exists() or journal.stat().st_size < 60_000:  # a few hundred steps
            assert first.poll() is None and time.monotonic() < deadline, "ended too early"
            time.sleep(0.05)
    finally:
        first.kill()
        first.wait()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout + done.stderr
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    print({k: summary[k] for k in ("events", "fills", "final_pnl", "duplicates_dropped")})
    assert summary["events"] == 900 and summary["same_as_backtest"] is True


def _services_of(out: Path) -> list[psutil.Process]:
    """The service processes a CLI pipeline writing to ``out`` started."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "mqlab" in cmdline and str(out) in cmdline and "pipeline" not in cmdline:
            found.append(process)
    return found


def _start_processes(tmp_path: Path, limit: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "mqlab", "pipeline", "--processes", "--limit", str(limit)]
    argv += ["--out", str(tmp_path), "--json"]
    parent = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / "state" / "exchange.jsonl"
    deadline = time.monotonic() + 120
    while not journal.exists() or journal.stat().st_size < 20_000:  # it is running
        assert parent.poll() is None and time.monotonic() < deadline, "ended too early"
        time.sleep(0.05)
    return parent


@pytest.mark.slow
def test_services_die_with_their_pipeline(tmp_path: Path) -> None:
    """``kill -9`` the pipeline's own process: its services must not live on as orphans."""
    parent = _start_processes(tmp_path, 4320)
    assert len(_services_of(tmp_path)) == 4
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 15
    while (left := _services_of(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for process in left:  # do not leave them behind even when the test fails
        process.kill()
    assert not left, f"orphans: {[p.pid for p in left]}"
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
    assert "is gone; stopping" in logs


@pytest.mark.slow
def test_a_killed_service_ends_the_run_with_one_line_saying_how_to_resume(
    tmp_path: Path,
) -> None:
    parent = _start_processes(tmp_path, 4320)
    strategy = next(p for p in _services_of(tmp_path) if "strategy" in p.info["cmdline"])
    strategy.kill()  # from outside: the pipeline did not do it
    _, stderr = parent.communicate(timeout=60)
    assert parent.returncode == 1
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "run the same command again to resume" in lines[0], stderr
    assert "strategy exited" in lines[0]


@pytest.mark.slow
def test_cli_names_a_missing_data_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mqlab", "pipeline", "--data", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "nope.csv" in done.stderr


@pytest.mark.slow
def test_a_service_alone_needs_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MQLAB_AMQP_URL", raising=False)
    done = subprocess.run(
        [sys.executable, "-m", "mqlab", "exchange"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--url" in done.stderr


def _cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mqlab", *argv], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["market", "--url", "amqp://guest:guest@127.0.0.1:1/", "--data", "nope.csv"], 2,
         "nope.csv not found"),
        (["strategy", "--url", "amqp://guest:guest@127.0.0.1:1/", "--param", "nosuch=1"], 2,
         "no parameter nosuch"),
        (["exchange", "--url", "amqp://guest:guest@127.0.0.1:1/"], 1,
         "cannot reach the AMQP broker"),
        (["pipeline", "--url", "amqp://guest:guest@127.0.0.1:1/"], 1,
         "cannot reach the AMQP broker"),
        (["pipeline", "--param", "fast=x"], 2, "parameter 'fast' expects a whole number"),
        (["strategy", "--url", "amqp://guest:guest@127.0.0.1:1/", "--param", "slow=2.5"], 2,
         "parameter 'slow' expects a whole number"),
        (["pipeline", "--batch", "20", "--window", "4"], 2, "more than --window"),
        (["risk", "--url", "amqp://guest:guest@127.0.0.1:1/", "--check", "no_such_module:f",
          "--position-limit", "0.1"], 2, "cannot import 'no_such_module'"),
        (["risk", "--check", "risk_check", "--position-limit", "0.1"], 2, "MODULE:FUNCTION"),
    ],
)  # fmt: skip
def test_cli_errors_say_what_to_do_without_a_traceback(
    argv: list[str], code: int, message: str, tmp_path: Path
) -> None:
    done = _cli(*argv, "--out", str(tmp_path))
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "state").exists(), "a failed start must leave no run to resume"


@pytest.mark.slow
async def test_a_risk_service_between_strategy_and_exchange(amqp_url: str, tmp_path: Path) -> None:
    """``--risk module:function`` adds the risk service, in one process and as processes."""
    config = RunConfig(limit=400)
    check = "mqlab.exercises.solutions.ch10:risk_check"
    # sma_cross trades 0.1 BTC: a limit of 0.1 refuses nothing, so the fills are the backtest's
    roomy = await run_pipeline(
        config, url=amqp_url, out=tmp_path / "roomy", progress=False, risk=check, limit="0.1"
    )
    assert roomy.complete and roomy.parity is None  # the backtest has no risk service
    assert roomy.fills == fill_rows(config.backtest().fills) and roomy.fills
    assert roomy.stats["risk"]["refused"] == 0
    # ... and 0.05 refuses every order, which the exchange answers with REJECTED updates
    tight = await run_pipeline(
        config, url=amqp_url, out=tmp_path / "tight", processes=True, progress=False,
        risk=check, limit="0.05",
    )  # fmt: skip
    print(f"risk: {tight.stats['risk']}; commands: {tight.commands['risk']}")
    assert tight.complete and tight.mode == "5 processes"
    assert tight.fills == [] and tight.stats["risk"]["refused"] == tight.orders > 0
    assert "--check " + check in tight.commands["risk"]
    assert "--risk" in tight.commands["exchange"] and "--risk" in tight.commands["market"]


@pytest.mark.slow
def test_delete_removes_a_hand_started_runs_topology(amqp_url: str) -> None:
    prefix = f"t-del-{uuid.uuid4().hex[:8]}"

    async def declare() -> None:
        async with Bus(amqp_url, prefix=prefix) as bus:
            await bus.declare_queue("exchange.market", [("market", "#")])

    async def exists() -> bool:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            try:
                await channel.declare_queue(f"{prefix}.exchange.market", passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return False
            return True

    asyncio.run(declare())
    assert asyncio.run(exists())
    done = _cli("pipeline", "--url", amqp_url, "--delete", prefix)
    assert done.returncode == 0, done.stderr
    assert not asyncio.run(exists())


@pytest.mark.slow
def test_a_killed_run_resumes_only_on_the_broker_that_holds_its_messages(tmp_path: Path) -> None:
    config = RunConfig(limit=100)
    prefix, resuming = prepare_state(tmp_path, config, broker="amqp://rabbit-a/")
    assert not resuming
    assert resumable(tmp_path, config, "amqp://rabbit-a/")
    assert not resumable(tmp_path, config, "amqp://rabbit-b/"), "its messages are on rabbit-a"
    assert not resumable(tmp_path, RunConfig(limit=99), "amqp://rabbit-a/")
    again, resuming = prepare_state(tmp_path, config, broker="amqp://rabbit-a/")
    assert resuming and again == prefix
    mark_state(tmp_path, paused=True)  # a Ctrl-C pause drains every queue
    assert resumable(tmp_path, config, "amqp://rabbit-b/")
    fresh, resuming = prepare_state(tmp_path, config, fresh=True, broker="amqp://rabbit-b/")
    assert not resuming and fresh != prefix


@pytest.mark.slow
async def test_replay_journal_says_what_each_record_did(amqp_url: str, tmp_path: Path) -> None:
    config = RunConfig(limit=200)
    await run_pipeline(config, url=amqp_url, out=tmp_path, progress=False, plots=False)
    records = list(Journal(tmp_path / "state" / "exchange.jsonl"))
    replayed = replay_journal(records, ServiceOptions(config))
    assert len(replayed) == len(records)
    assert [r.id for r in replayed] == [r.get("id", r.get("confirmed")) for r in records]
    first = next(i for i, r in enumerate(replayed) if r.record == "request")
    order = replayed[first].id
    done = next(r for r in replayed[first:] if r.record == "done")
    assert order in done.submitted, "the order reaches the engine with the done that lists it"
    # A bar either is matched, or first brings due answers (calls), or waits for a done.
    for r in replayed:
        if r.record == "market":
            answers = any(p.type in ("fill", "order_update") for p in r.published)
            assert r.matched or answers or not (r.submitted or r.published), r
    matched = [n for r in replayed for n in r.matched]
    assert matched == list(range(1, 201)), "once per bar, in order"
    # Most bars need no call (the strategy was quiet); the rest were calls: 200 steps in all.
    quiet = sum((r.through or 0) > 0 for r in replayed if r.record == "done")
    steps = [p for r in replayed for p in r.published if p.type == "step"]
    calls = sum(p.call is not None for p in steps)
    assert quiet and calls < 200
    markers = sum(p.call is None for p in steps)
    assert 0 < markers < 200, "progress markers come in batches"


def test_messages_are_grouped_by_what_they_carry() -> None:
    kinds = {"kline": 30, "orderbook": 3, "order": 2, "fill": 3, "order_update": 4, "done": 5,
             "step": 6, "control": 1}  # fmt: skip
    assert message_groups(kinds) == {"market": 33, "orders": 9, "sync": 12}
    assert sum_counts([{"done": 1}, {"done": 2, "fill": 1}]) == {"done": 3, "fill": 1}


def test_injected_table_lists_each_message_by_id() -> None:
    sample = next(e for e in RunConfig(limit=20).events if isinstance(e, Kline))
    garbage = malformed_messages(sample)
    ids = [f"m{i}" for i in range(len(garbage))]
    table = injected_table(ids, garbage)
    assert list(table.index) == ids
    assert list(table.columns) == ["exchange", "routing key", "what is wrong"]
    assert table.loc["m0", "what is wrong"] == garbage[0].what
    with pytest.raises(ValueError):
        injected_table(ids[:-1], garbage)
