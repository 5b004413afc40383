"""The pipeline on a 3-node RabbitMQ cluster with quorum queues survives ``kill -9`` of a node.

Runs where the cluster can be started (Debian's rabbitmq-server, as root or the rabbitmq user:
CI); skipped with the reason otherwise (failed instead when ``MQLAB_REQUIRE_RABBITMQ=1``).
The test cluster has its own ports (AMQP 5711-5713, distribution 25711-25713), node names
(mqlabt1@localhost ...) and a temporary directory, so a ``make cluster-up`` cluster (5701-5703)
and the machine's RabbitMQ are left alone.

Time budget: starting the cluster ~20-35 s, each round ~15-30 s (a run of
:data:`EVENTS` events with every service its own process, a node killed and restarted), the
stop ~10 s: about 2 minutes for :data:`ROUNDS` = 3, well under the 5 minutes allowed.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from books_check import check_books

from mqlab.cluster import Cluster, ClusterError, kill_node_during_run, why_not_available
from mqlab.config import RunConfig
from mqlab.ha import ENV_QUEUE_TYPE
from mqlab.pipeline import ProcessPipeline

#: Pipeline runs, one node killed in each: the first the leader of the busiest queue, then a
#: node at random. ``MQLAB_CLUSTER_ROUNDS`` overrides it.
ROUNDS = int(os.environ.get("MQLAB_CLUSTER_ROUNDS", "3"))
EVENTS = 2500
SEED = int(os.environ.get("MQLAB_FAULT_SEED", "20240607"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    why = why_not_available()
    if why is not None:
        message = f"cannot start a RabbitMQ cluster here: {why}"
        if os.environ.get("MQLAB_REQUIRE_RABBITMQ") == "1":
            pytest.fail(message + " (and MQLAB_REQUIRE_RABBITMQ=1)", pytrace=False)
        pytest.skip(message)
    # Not pytest's tmp_path: its parents are root-only, and the nodes run as rabbitmq.
    base = Path(tempfile.mkdtemp(prefix="mqlab-test-cluster-"))
    # Its own node names too: Erlang allows one c1@localhost per machine.
    test_cluster = Cluster(base, 3, amqp_base_port=5711, dist_base_port=25711, prefix="mqlabt")
    try:
        test_cluster.up()
        yield test_cluster
    finally:
        test_cluster.down()
        shutil.rmtree(base, ignore_errors=True)
        assert test_cluster.running() == [], "a node of the test cluster outlived down()"


@pytest.mark.slow  # starts a 3-node cluster: tens of seconds; make test runs it
def test_cluster_is_three_joined_nodes(cluster: Cluster) -> None:
    status = cluster.cluster_status()
    assert sorted(status["running_nodes"]) == sorted(cluster.names)
    assert sorted(cluster.members()) == sorted(cluster.names)


def test_errors_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "apt-get install rabbitmq-server" in (why_not_available() or "")
    with pytest.raises(ClusterError, match="no node 'c9'"):
        Cluster(Path("/nonexistent")).node("c9")


@pytest.mark.slow  # starts a 3-node cluster: tens of seconds; make test runs it
async def test_kill_a_node_under_the_pipeline(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 a node mid-run (the busiest queue's leader first), restart it: exact books."""
    monkeypatch.setenv(ENV_QUEUE_TYPE, "quorum")  # the services inherit it
    rng = random.Random(SEED + 18)
    config = RunConfig(limit=EVENTS)
    reference = config.backtest()
    stalls = []
    for round_ in range(ROUNDS):
        prefix = f"t-cluster-{uuid.uuid4().hex[:8]}"
        out = tmp_path / f"round{round_}"
        pipeline = ProcessPipeline(
            config, cluster.url, prefix=prefix, state_dir=out / "state", out=out
        )
        await pipeline.start_all()
        try:
            queues = await asyncio.to_thread(cluster.queues, prefix)
            assert queues and {q.type for q in queues} == {"quorum"}, queues
            assert all(len(q.members) == 3 for q in queues), "a queue is not on every node"
            total = len(config.events)
            victim = None if round_ == 0 else rng.choice(cluster.names)
            kill = await kill_node_during_run(
                cluster, pipeline, rng.randrange(total // 5, total // 2), victim
            )
            await asyncio.wait_for(pipeline.wait(), 240)
        finally:
            await pipeline.close()
            await pipeline.delete_topology()
        stalls.append(kill.stall_s)
        label = (
            f"round {round_ + 1}/{ROUNDS}: killed {kill.node} ({kill.why}) at step "
            f"{kill.at_step}/{total}, stall {kill.stall_s:.2f} s, back after "
            f"{kill.restart_s:.1f} s"
        )
        check_books(pipeline.result(), reference, label)
        assert len(cluster.running()) == 3
    print(f"failover stalls over {ROUNDS} kills: " + ", ".join(f"{s:.2f} s" for s in stalls))


@pytest.mark.slow  # runs chapter 11 on a 3-node cluster: ~60 s; make test runs it
def test_chapter_11_on_the_cluster(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chapter 11 with a cluster up: its cluster cells run (tests/test_notebooks.py runs it
    without one, where they must only say how to start it)."""
    import nbformat
    from nbclient import NotebookClient

    # The chapter's Cluster() finds the test cluster through these (mqlab.cluster's defaults).
    for name, value in {
        "MQLAB_CLUSTER_DIR": str(cluster.base),
        "MQLAB_CLUSTER_PORT": str(cluster.amqp_base_port),
        "MQLAB_CLUSTER_DIST_PORT": str(cluster.dist_base_port),
        "MQLAB_CLUSTER_PREFIX": cluster.prefix,
        "LAB_QUICK": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MQLAB_AMQP_URL", raising=False)
    path = Path(__file__).resolve().parents[2] / "notebooks" / "11_going_past_one_machine.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    text = "".join(
        out.get("text", "") + "".join(out.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )
    assert "cluster up:" in text and "start the cluster first" not in text
    assert "same fills and PnL as the backtest: True" in text
    assert "the cluster ran at" in text  # the side-by-side ran on both setups
