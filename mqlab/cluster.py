"""A 3-node RabbitMQ cluster (集群) on this one machine, from Debian's ``rabbitmq-server``.

``python -m mqlab cluster up|down|status`` (or ``make cluster-up`` / ``make cluster-down``).
Each node gets its own name (``c1@localhost`` ...), AMQP port (5701-5703), Erlang
distribution port (25701-25703), config file, data and log directories under one base
directory, all bound to 127.0.0.1. Nodes 2 and 3 join node 1 with ``rabbitmqctl
join_cluster``. A RabbitMQ already running on this machine (``rabbit@host`` on 5672) is left
alone: nothing here touches a node, port or file that is not the cluster's own.

Debian's wrapper scripts run the server as the ``rabbitmq`` user (``su rabbitmq`` when called
as root), so the directories belong to that user and only root or ``rabbitmq`` can start
the cluster. The nodes share the ``rabbitmq`` user's Erlang cookie, so they may talk to each
other and ``rabbitmqctl`` may talk to them.

The Python side (:class:`Cluster`) is what the fault test and chapter 11 use: start, stop,
``kill -9`` a node and restart it, and ask the broker which node leads each queue.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mqlab.pipeline import ProcessPipeline

__all__ = [
    "DEFAULT_BASE",
    "Cluster",
    "ClusterError",
    "Node",
    "NodeKill",
    "QueueInfo",
    "add_arguments",
    "available",
    "busiest_leader",
    "kill_node_during_run",
    "run",
    "why_not_available",
]

#: Where the nodes keep their data, logs and pid files unless told otherwise.
DEFAULT_BASE = Path(os.environ.get("MQLAB_CLUSTER_DIR", "/tmp/mqlab-cluster"))
# The environment may move the default cluster (the tests start theirs beside a learner's and
# point chapter 11, which says only ``Cluster()``, at it).
AMQP_BASE_PORT = int(os.environ.get("MQLAB_CLUSTER_PORT", "5701"))
DIST_BASE_PORT = int(os.environ.get("MQLAB_CLUSTER_DIST_PORT", "25701"))
NODE_PREFIX = os.environ.get("MQLAB_CLUSTER_PREFIX", "c")
RABBITMQ_USER = "rabbitmq"


class ClusterError(RuntimeError):
    """The cluster could not be started, stopped or asked (the message says why, in one line)."""


@dataclass(frozen=True)
class Node:
    """One RabbitMQ node of the cluster: its name, ports and directories."""

    index: int
    base: Path
    amqp_port: int
    dist_port: int
    prefix: str = "c"

    @property
    def name(self) -> str:
        return f"{self.prefix}{self.index}@localhost"

    @property
    def dir(self) -> Path:
        return self.base / f"{self.prefix}{self.index}"

    @property
    def pid_file(self) -> Path:
        return self.dir / "rabbitmq.pid"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    def env(self) -> dict[str, str]:
        """The environment ``rabbitmq-server`` and ``rabbitmqctl`` need for this node."""
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp_port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            # Our own config file: /etc/rabbitmq/rabbitmq.conf may pin the listener to 5672.
            RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq"),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_PID_FILE=str(self.pid_file),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
        )
        return env

    def config(self) -> str:
        return (
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}\n"
            "distribution.listener.interface = 127.0.0.1\n"
            f"distribution.listener.port_range.min = {self.dist_port}\n"
            f"distribution.listener.port_range.max = {self.dist_port}\n"
            "loopback_users.guest = true\n"
        )

    def pid(self) -> int | None:
        """The node's OS pid if its pid file names a live process that is this node."""
        try:
            pid = int(self.pid_file.read_text().strip())
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        # The pid file could be stale and its pid reused: check the process is this node's
        # Erlang VM (the node name is not on its command line, but in its environment).
        mine = f"RABBITMQ_PID_FILE={self.pid_file}".encode()
        return pid if mine in environ else None

    def answers(self, timeout: float = 0.5) -> bool:
        """The node's AMQP port accepts a TCP connection."""
        try:
            socket.create_connection(("127.0.0.1", self.amqp_port), timeout).close()
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class QueueInfo:
    """A queue as the broker describes it: type, leader (主节点) and members."""

    name: str
    type: str
    leader: str
    members: tuple[str, ...]
    messages: int


@dataclass
class Cluster:
    """Three (or ``size``) RabbitMQ nodes on 127.0.0.1, joined into one cluster."""

    base: Path = DEFAULT_BASE
    size: int = 3
    amqp_base_port: int = AMQP_BASE_PORT
    dist_base_port: int = DIST_BASE_PORT
    #: Node names are ``{prefix}1@localhost`` ...: unique per machine, like the ports.
    prefix: str = NODE_PREFIX
    nodes: list[Node] = field(init=False)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ClusterError(f"a cluster needs at least 1 node, got {self.size}")
        self.base = Path(self.base)
        self.nodes = [
            Node(
                i, self.base, self.amqp_base_port + i - 1, self.dist_base_port + i - 1, self.prefix
            )
            for i in range(1, self.size + 1)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """All node URLs, comma-separated: what ``--url`` takes for failover."""
        return ",".join(self.urls)

    def node(self, name: str) -> Node:
        """The node called ``name`` (``c2@localhost`` or ``c2``)."""
        for node in self.nodes:
            if name in (node.name, node.name.split("@")[0]):
                return node
        raise ClusterError(f"no node {name!r} in this cluster ({', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.nodes]

    def running(self) -> list[Node]:
        """The nodes whose Erlang VM is alive (by pid file)."""
        return [node for node in self.nodes if node.pid() is not None]

    # -- starting -------------------------------------------------------------------------

    def up(self, timeout: float = 120.0) -> None:
        """Start every node that is not running and join them into one cluster."""
        check_can_run()
        self._prepare()
        if not _epmd_answers():
            # The first node will start epmd (Erlang's port mapper); it outlives the nodes, so
            # remember that it is ours and end it in down() if no other node still uses it.
            (self.base / "epmd.ours").touch()
        for node in self.nodes:
            if node.pid() is None:
                self._start(node)
        for node in self.nodes:
            self.await_node(node, timeout)
        first = self.nodes[0]
        joined = set(self.members(first))
        for node in self.nodes[1:]:
            if node.name in joined:
                continue
            self._ctl(node, "stop_app")
            self._ctl(node, "join_cluster", first.name)
            self._ctl(node, "start_app")
            self.await_node(node, timeout)

    def _prepare(self) -> None:
        user = pwd.getpwnam(RABBITMQ_USER)
        for path in [self.base, *(n.dir for n in self.nodes)]:
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, user.pw_uid, user.pw_gid)
        for node in self.nodes:
            for sub in ("mnesia", "log"):
                (node.dir / sub).mkdir(exist_ok=True)
                os.chown(node.dir / sub, user.pw_uid, user.pw_gid)
            (node.dir / "rabbitmq.conf").write_text(node.config())
            (node.dir / "enabled_plugins").write_text("[].\n")
            for name in ("rabbitmq.conf", "enabled_plugins"):
                os.chown(node.dir / name, user.pw_uid, user.pw_gid)

    def _start(self, node: Node) -> None:
        result = subprocess.run(
            ["rabbitmq-server", "-detached"],
            env=node.env(),
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise ClusterError(
                f"rabbitmq-server -detached for {node.name} failed: "
                f"{_last_line(result.stderr or result.stdout)} (logs in {node.dir / 'log'})"
            )

    def restart(self, name: str, timeout: float = 120.0) -> None:
        """Start a stopped (or killed) node again; it rejoins the cluster from its data."""
        node = self.node(name)
        if node.pid() is None:
            self._start(node)
        self.await_node(node, timeout)

    def await_node(self, node: Node, timeout: float = 120.0) -> None:
        """Wait until ``node``'s RabbitMQ application runs and its AMQP port answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.answers():
                with contextlib.suppress(ClusterError):
                    self._ctl(node, "await_startup", "--timeout", "30")
                    return
            if node.pid() is None and not node.pid_file.exists() and _log_says_failed(node):
                raise ClusterError(f"{node.name} did not start; see {node.dir / 'log'}")
            time.sleep(0.5)
        raise ClusterError(
            f"{node.name} did not answer on 127.0.0.1:{node.amqp_port} within {timeout:.0f} s; "
            f"see {node.dir / 'log'}"
        )

    # -- stopping -------------------------------------------------------------------------

    def kill(self, name: str) -> int:
        """``kill -9`` one node's Erlang VM (a crash, not a shutdown); returns its pid."""
        node = self.node(name)
        pid = node.pid()
        if pid is None:
            raise ClusterError(f"{node.name} is not running")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, 10.0)
        return pid

    def down(self, remove: bool = True, timeout: float = 60.0) -> list[str]:
        """Stop every node (kill what does not stop), remove the base dir; returns what stopped.

        Only processes named by this cluster's pid files, and verified to be its nodes, are
        signalled: any other RabbitMQ on the machine is left alone.
        """
        stopped: list[str] = []
        for node in reversed(self.nodes):  # the joined nodes first, the seed node last
            pid = node.pid()
            if pid is None:
                continue
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self._ctl(node, "stop", timeout=timeout)
            if not _wait_gone(pid, 10.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 10.0)
            stopped.append(node.name)
        if (self.base / "epmd.ours").exists() and (epmd := shutil.which("epmd")):
            # epmd -kill refuses while any node (e.g. the machine's own RabbitMQ) is registered.
            subprocess.run([epmd, "-kill"], capture_output=True, env=self.nodes[0].env())
        if remove and self.base.exists():
            shutil.rmtree(self.base, ignore_errors=True)
        return stopped

    # -- asking the broker -----------------------------------------------------------------

    def _ctl(self, node: Node, *args: str, via: Node | None = None, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl -n node args`` (from ``via``'s environment); its stdout."""
        result = subprocess.run(
            ["rabbitmqctl", "-q", "-n", node.name, *args],
            env=(via or node).env(),
            cwd="/",
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise ClusterError(
                f"rabbitmqctl -n {node.name} {' '.join(args)} failed: "
                f"{_last_line(result.stderr or result.stdout)}"
            )
        return result.stdout

    def _any_running(self) -> Node:
        for node in self.nodes:
            if node.pid() is not None and node.answers():
                return node
        raise ClusterError("no node of the cluster is running; start it: make cluster-up")

    def members(self, node: Node | None = None) -> list[str]:
        """The cluster's disc nodes as ``node`` (or any running node) sees them."""
        status = self.cluster_status(node)
        return [str(n) for n in status.get("disk_nodes", [])]

    def cluster_status(self, node: Node | None = None) -> dict[str, Any]:
        """``rabbitmqctl cluster_status`` as a dict (``running_nodes``, ``disk_nodes``, ...)."""
        target = node or self._any_running()
        out = self._ctl(target, "cluster_status", "--formatter", "json")
        status: dict[str, Any] = json.loads(out)
        return status

    def queues(self, prefix: str = "") -> list[QueueInfo]:
        """Every queue whose name starts with ``prefix``: type, leader, members, depth."""
        target = self._any_running()
        out = self._ctl(
            target,
            "list_queues",
            "name",
            "type",
            "leader",
            "members",
            "messages",
            "--formatter",
            "json",
        )
        found = []
        for row in json.loads(out or "[]"):
            if not str(row["name"]).startswith(prefix):
                continue
            members = row.get("members") or []
            found.append(
                QueueInfo(
                    name=str(row["name"]),
                    type=str(row.get("type", "classic")),
                    leader=str(row.get("leader") or row.get("node") or ""),
                    members=tuple(str(m) for m in members) if isinstance(members, list) else (),
                    messages=int(row.get("messages") or 0),
                )
            )
        return found


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our child
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


def _epmd_answers() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4369), 0.5).close()
    except OSError:
        return False
    return True


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _log_says_failed(node: Node) -> bool:
    return any("BOOT FAILED" in p.read_text(errors="replace") for p in node.dir.glob("log/*.log"))


def why_not_available() -> str | None:
    """Why this machine cannot start the cluster (one line), or None when it can."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        return (
            "rabbitmq-server is not installed; on Debian/Ubuntu: "
            "sudo apt-get install rabbitmq-server (or see docs/setup.md for Docker)"
        )
    try:
        user = pwd.getpwnam(RABBITMQ_USER)
    except KeyError:
        return f"there is no {RABBITMQ_USER!r} user; install Debian's rabbitmq-server package"
    if os.geteuid() not in (0, user.pw_uid):
        return (
            "the cluster runs its nodes as the rabbitmq user, which needs root: "
            "run it with sudo (sudo make cluster-up) or as the rabbitmq user"
        )
    return None


def available() -> bool:
    """This machine can start the cluster (rabbitmq-server installed, root or rabbitmq)."""
    return why_not_available() is None


def check_can_run() -> None:
    if (why := why_not_available()) is not None:
        raise ClusterError(why)


# -- command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status"], help="start, stop or show")
    parser.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_BASE,
        help=f"base directory for the nodes' data and logs (default {DEFAULT_BASE}, "
        "or $MQLAB_CLUSTER_DIR)",
    )
    parser.add_argument("--port", type=int, default=AMQP_BASE_PORT, help="first AMQP port")
    parser.add_argument(
        "--dist-port", type=int, default=DIST_BASE_PORT, help="first Erlang distribution port"
    )
    parser.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")


def run(args: argparse.Namespace) -> int:
    try:
        cluster = Cluster(args.dir, args.nodes, args.port, args.dist_port)
        if args.action == "up":
            started = time.monotonic()
            cluster.up()
            print(f"cluster up in {time.monotonic() - started:.1f} s: {', '.join(cluster.names)}")
            _print_urls(cluster)
        elif args.action == "down":
            stopped = cluster.down()
            left = [node.name for node in cluster.nodes if node.pid() is not None]
            if left:
                raise ClusterError(f"still running after down: {', '.join(left)}")
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}; removed {cluster.base}")
        else:
            _print_status(cluster)
    except (ClusterError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_urls(cluster: Cluster) -> None:
    for url in cluster.urls:
        print(url)
    print(f"all nodes, for --url: {cluster.url}")


def _print_status(cluster: Cluster) -> None:
    running = cluster.running()
    if not running:
        print(f"cluster down (no node running under {cluster.base}); start it: make cluster-up")
        return
    status = cluster.cluster_status()
    alive = set(status.get("running_nodes", []))
    for node in cluster.nodes:
        state = "running" if node.name in alive else "down"
        print(f"{node.name:14} {state:8} {node.url}")
    queues = cluster.queues()
    if queues:
        print(f"{'queue':32} {'type':8} {'leader':14} members")
        for q in queues:
            print(f"{q.name:32} {q.type:8} {q.leader:14} {', '.join(q.members)}")
    _print_urls(cluster)


# -- a node killed under a running pipeline ----------------------------------------------------


@dataclass(frozen=True)
class NodeKill:
    """What happened when one node was killed under a running pipeline."""

    node: str
    why: str  # e.g. "leader of mqlab.x.strategy (12 messages)" or "chosen at random"
    at_step: int  # the pipeline's step (events the exchange matched) at the kill
    stall_s: float  # longest pause in the pipeline's progress while the node was down
    restart_s: float  # from the kill to the node running again


def busiest_leader(cluster: Cluster, prefix: str) -> tuple[str, str]:
    """The leader (主节点) of the queue under ``prefix`` holding the most messages, and why.

    On a tie (say, every queue is drained as fast as it fills) the market events' queue (the
    one every market event passes through) wins, and the dead-letter queue comes last.
    """
    queues = [q for q in cluster.queues(prefix) if q.leader]
    if not queues:
        raise ClusterError(f"no queue named {prefix}* has a leader on the cluster")
    busiest = max(
        sorted(queues, key=lambda q: q.name),
        key=lambda q: (q.messages, q.name.endswith(".market"), not q.name.endswith(".dlq")),
    )
    return busiest.leader, f"leader of {busiest.name} ({busiest.messages} messages)"


async def kill_node_during_run(
    cluster: Cluster,
    pipeline: ProcessPipeline,
    at_step: int,
    node: str | None = None,
    stall_timeout: float = 120.0,
) -> NodeKill:
    """When ``pipeline`` reaches ``at_step``, ``kill -9`` a node and restart it; time the stall.

    ``node=None`` kills the leader of the pipeline's busiest queue. The restart runs while
    the pipeline goes on; this returns once the node is back (the pipeline may still run).
    """
    import asyncio

    while pipeline.step < at_step:
        await asyncio.sleep(0.005)
    if node is None:
        victim, why = await asyncio.to_thread(busiest_leader, cluster, pipeline.prefix)
    else:
        victim, why = node, "chosen by the caller"
    step = pipeline.step
    total = len(pipeline.config.events)
    await asyncio.to_thread(cluster.kill, victim)
    killed = last_change = time.monotonic()

    async def back_after() -> float:
        await asyncio.to_thread(cluster.restart, victim)
        return time.monotonic() - killed

    restart = asyncio.create_task(back_after())
    # The stall is the longest pause in the pipeline's progress from the kill until the node
    # is back and the pipeline moved once more (or finished): the messages already in flight
    # on the surviving nodes can hide the failover from the first step after the kill.
    stall, seen = 0.0, step
    async with asyncio.timeout(stall_timeout + 120):
        while pipeline.step < total:
            now = time.monotonic()
            if pipeline.step != seen:
                stall, seen, last_change = max(stall, now - last_change), pipeline.step, now
                if restart.done():
                    break
            elif now - last_change > stall_timeout:
                raise ClusterError(f"the pipeline made no progress for {stall_timeout:.0f} s")
            await asyncio.sleep(0.005)
    back = await restart
    return NodeKill(cluster.node(victim).name, why, step, stall, back)
