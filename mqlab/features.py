"""What a client can see of a broker beyond routing: its capabilities, ports, and where it runs.

Chapter 08 lists RabbitMQ's features; these helpers show the parts a learner can check from
Python without the management UI:

* :func:`capabilities`: the AMQP 0-9-1 *extensions* a broker announced when the connection
  opened (``Connection.Start``'s ``capabilities`` table), each with what it is for. These are
  not other protocols: a broker speaks MQTT or STOMP on separate ports, through plugins;
* :func:`listeners`: which of RabbitMQ's standard ports (AMQP, management UI, MQTT, STOMP,
  streams) accept a TCP connection on the broker's host;
* :func:`setup_report`: which broker the chapters use (``MQLAB_AMQP_URL`` or the embedded one)
  and whether Docker is there to run RabbitMQ (see ``docs/setup.md``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mqlab.connection import ENV_URL, broker_url, mask_url

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CAPABILITIES", "PORTS", "Setup", "capabilities", "listeners", "setup_report"]

#: Capability (as announced in ``Connection.Start``) -> what it lets a client do.
CAPABILITIES: Mapping[str, str] = {
    "publisher_confirms": "Confirm.Select: the broker acks (or nacks) each published message",
    "basic.nack": "Basic.Nack: reject many deliveries at once; the broker's negative confirm",
    "consumer_cancel_notify": "the broker tells a consumer when its queue is deleted",
    "exchange_exchange_bindings": "bind an exchange to another exchange, not only to queues",
    "connection.blocked": "the broker says when it stops reading publishers (memory/disk alarm)",
    "authentication_failure_close": "a wrong password gets a clear Connection.Close, not a drop",
    "per_consumer_qos": "prefetch_count counted per consumer, not per channel",
    "consumer_priorities": "consumers with a higher x-priority get messages first",
    "direct_reply_to": "RPC replies via amq.rabbitmq.reply-to, without a reply queue",
}

#: (protocol, RabbitMQ's default port, what provides it): the listeners a RabbitMQ can open.
PORTS: tuple[tuple[str, int, str], ...] = (
    ("AMQP 0-9-1", 5672, "core (AMQP 1.0 too, same port, via rabbitmq_amqp1_0)"),
    ("AMQP over TLS", 5671, "core, when TLS is configured"),
    ("management UI and HTTP API", 15672, "rabbitmq_management"),
    ("MQTT", 1883, "rabbitmq_mqtt"),
    ("STOMP", 61613, "rabbitmq_stomp"),
    ("RabbitMQ streams", 5552, "rabbitmq_stream"),
)


def capabilities(server_properties: Mapping[str, Any]) -> pd.DataFrame:
    """The broker's announced capabilities, one row each, with what they are for."""
    import pandas as pd

    announced = dict(server_properties.get("capabilities") or {})
    names = list(CAPABILITIES) + [n for n in announced if n not in CAPABILITIES]
    rows = [
        (name, bool(announced.get(name, False)), CAPABILITIES.get(name, "(not described here)"))
        for name in names
    ]
    return pd.DataFrame(rows, columns=["capability", "announced", "what it is for"]).set_index(
        "capability"
    )


def _answers(host: str, port: int, timeout: float) -> bool:
    try:
        socket.create_connection((host, port), timeout).close()
    except OSError:
        return False
    return True


def listeners(url: str | None = None, timeout: float = 0.3) -> pd.DataFrame:
    """Which of RabbitMQ's standard ports accept a TCP connection on the broker's host.

    The AMQP row uses the port in ``url`` (default: the chapters' broker, so the embedded
    broker's random port). A port that answers is *something* listening there; only the AMQP
    one is known to be the broker.
    """
    import pandas as pd

    parts = urlsplit(broker_url(url))
    host, amqp_port = parts.hostname or "127.0.0.1", parts.port or 5672
    rows = []
    for protocol, port, provider in PORTS:
        port = amqp_port if port == 5672 else port
        rows.append((protocol, f"{host}:{port}", provider, _answers(host, port, timeout)))
    columns = ["protocol", "address", "in RabbitMQ provided by", "answers"]
    return pd.DataFrame(rows, columns=columns).set_index("protocol")


@dataclass(frozen=True)
class Setup:
    """Where the chapters' broker comes from, and whether Docker could run RabbitMQ here."""

    env_url: str | None  # MQLAB_AMQP_URL, password masked
    broker: str  # the URL the chapters use, password masked
    docker_cli: str | None  # path of the docker command
    docker_daemon: str | None  # the daemon's version, or None when it does not answer
    docker_compose: bool = False  # is the `docker compose` plugin installed?

    def __str__(self) -> str:
        if self.docker_cli is None:
            docker = "not installed (no `docker` on PATH)"
        else:
            daemon = (
                f"daemon {self.docker_daemon} answers"
                if self.docker_daemon
                else "its daemon does not answer `docker info`"
            )
            compose = (
                "`docker compose` is installed"
                if self.docker_compose
                else ("`docker compose` is not installed")
            )
            docker = f"{self.docker_cli}; {daemon}; {compose}"
        chosen = (
            f"RabbitMQ (or another broker) at {self.broker}, from {ENV_URL}"
            if self.env_url
            else f"the embedded broker at {self.broker} ({ENV_URL} is not set)"
        )
        return f"docker:            {docker}\nthis chapter uses: {chosen}"


def _run(*command: str, timeout: float) -> str | None:
    """The command's stripped output, or None if it failed or took longer than ``timeout``."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def setup_report(timeout: float = 5.0) -> Setup:
    """Look for Docker (command and daemon) and say which broker ``mqlab.connect()`` uses."""
    cli = shutil.which("docker")
    env = os.environ.get(ENV_URL)
    daemon = compose = None
    if cli:
        daemon = _run(cli, "info", "--format", "{{.ServerVersion}}", timeout=timeout)
        compose = _run(cli, "compose", "version", "--short", timeout=timeout)
    return Setup(
        env_url=mask_url(env) if env else None,
        broker=mask_url(broker_url()),
        docker_cli=cli,
        docker_daemon=daemon,
        docker_compose=compose is not None,
    )
