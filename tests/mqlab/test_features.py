"""mqlab.features: announced capabilities, protocol ports that answer, and the setup report."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import aio_pika
import pytest

from mqlab import features


async def test_capabilities_are_what_the_broker_announced(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        server = connection.transport.connection.server_properties
    table = features.capabilities(server)
    announced = server["capabilities"]
    assert dict(table["announced"]) == {
        name: bool(announced.get(name, False)) for name in table.index
    }
    assert table.loc["publisher_confirms", "announced"]  # both brokers confirm
    assert set(features.CAPABILITIES) <= set(table.index)


def test_unknown_capabilities_are_listed_not_dropped() -> None:
    table = features.capabilities({"capabilities": {"shiny_new_thing": True}})
    assert table.loc["shiny_new_thing", "announced"]
    assert not table.loc["publisher_confirms", "announced"]


def test_listeners_knock_on_the_brokers_port_and_the_standard_ones() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        table = features.listeners(f"amqp://guest:guest@127.0.0.1:{port}/", timeout=0.2)
    assert table.loc["AMQP 0-9-1", "address"] == f"127.0.0.1:{port}"
    assert table.loc["AMQP 0-9-1", "answers"]
    assert table.loc["MQTT", "address"] == "127.0.0.1:1883"
    with socket.socket() as closed:  # a port nobody listens on any more
        closed.bind(("127.0.0.1", 0))
        free = closed.getsockname()[1]
    table = features.listeners(f"amqp://127.0.0.1:{free}/", timeout=0.2)
    assert not table.loc["AMQP 0-9-1", "answers"]


def _fake_docker(tmp_path: Path, info_ok: bool, compose_ok: bool) -> None:
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = info ]; then {"echo 27.1.0" if info_ok else "exit 1"}; fi\n'
        f'if [ "$1" = compose ]; then {"echo 2.29.1" if compose_ok else "exit 1"}; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize(
    ("info_ok", "compose_ok", "says"),
    [
        (True, True, "daemon 27.1.0 answers; `docker compose` is installed"),
        (False, False, "its daemon does not answer `docker info`; `docker compose` is not"),
    ],
)
def test_setup_report_says_what_docker_can_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, info_ok: bool, compose_ok: bool, says: str
) -> None:
    _fake_docker(tmp_path, info_ok, compose_ok)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("MQLAB_AMQP_URL", "amqp://guest:secret@127.0.0.1:5672/")
    report = str(features.setup_report())
    assert says in report
    assert "from MQLAB_AMQP_URL" in report and "secret" not in report


def test_setup_report_without_docker_uses_the_embedded_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing in it
    monkeypatch.delenv("MQLAB_AMQP_URL", raising=False)
    setup = features.setup_report()
    assert setup.docker_cli is None and setup.env_url is None
    assert "not installed" in str(setup) and "the embedded broker at amqp://" in str(setup)
