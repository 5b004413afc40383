"""mqlab.connect(): the embedded fallback, MQLAB_AMQP_URL, and clear errors."""

from __future__ import annotations

import socket

import aio_pika
import pytest

import mqlab
from mqlab import connection
from mqlab.broker import BrokerThread


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mask_url_hides_the_password() -> None:
    assert connection.mask_url("amqp://bob:s3cret@h:5672/") == "amqp://bob:****@h:5672/"
    assert connection.mask_url("amqp://h/") == "amqp://h/"


async def test_connect_without_url_uses_one_embedded_broker(monkeypatch) -> None:
    monkeypatch.delenv(connection.ENV_URL, raising=False)
    first = await mqlab.connect()
    second = await mqlab.connect()
    try:
        assert first.url.port == second.url.port  # started once per process
        assert connection.broker_url() == connection.embedded_broker().url
        channel = await first.channel()
        queue = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(aio_pika.Message(b"hi"), routing_key=queue.name)
        message = await queue.get(timeout=5)
        assert message.body == b"hi"
        await message.ack()
    finally:
        await first.close()
        await second.close()


async def test_env_url_is_used(monkeypatch) -> None:
    with BrokerThread(port=0) as other:
        monkeypatch.setenv(connection.ENV_URL, other.url)
        assert connection.broker_url() == other.url
        conn = await mqlab.connect()
        try:
            assert conn.url.port == int(other.url.rsplit(":", 1)[1].strip("/"))
        finally:
            await conn.close()


async def test_unreachable_url_names_the_masked_url_and_the_fix(monkeypatch) -> None:
    url = f"amqp://guest:topsecret@127.0.0.1:{_free_port()}/"
    monkeypatch.setenv(connection.ENV_URL, url)
    with pytest.raises(connection.BrokerUnavailableError) as info:
        await mqlab.connect(timeout=3)
    text = str(info.value)
    assert "topsecret" not in text
    assert "guest:****@127.0.0.1" in text
    assert "MQLAB_AMQP_URL" in text


async def test_amqps_to_a_plain_broker_says_to_use_amqp() -> None:
    with BrokerThread(port=0) as broker:
        url = broker.url.replace("amqp://", "amqps://")
        with pytest.raises(connection.BrokerUnavailableError) as info:
            await mqlab.connect(url, timeout=3)
    text = str(info.value)
    assert "did not answer TLS" in text and "use amqp://" in text
    assert "guest:****@" in text and "guest:guest" not in text


async def test_wrong_password_says_so() -> None:
    with BrokerThread(port=0, login_delay=0.2) as broker:
        bad = broker.url.replace("guest:guest", "guest:wrong")
        with pytest.raises(connection.BrokerUnavailableError, match="refused the login"):
            await mqlab.connect(bad, timeout=3)


async def test_unknown_virtual_host_says_so() -> None:
    with (
        BrokerThread(port=0) as broker,
        pytest.raises(connection.BrokerUnavailableError, match="virtual host"),
    ):
        await mqlab.connect(broker.url + "no-such-vhost", timeout=3)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "no scheme"),
        ("amqp://h:notaport/", "port 'notaport' is not a number"),
        ("amqp://127.0.0.1:99999/", "port '99999' is not a number"),
        ("http://h/", "scheme 'http'"),
        ("amqp:///", "no host"),
        ("amqp://u:topsecret@[::1/", "Invalid IPv6 URL"),
    ],
)
def test_bad_urls_get_a_one_line_message(url: str, fragment: str) -> None:
    problem = connection.url_problem(url)
    assert problem is not None and fragment in problem
    assert "\n" not in problem and "topsecret" not in problem
    with pytest.raises(connection.InvalidURLError, match="invalid AMQP URL"):
        connection.validate_url(url)


@pytest.mark.parametrize("url", ["amqp://guest:guest@127.0.0.1:5672/", "amqps://h/vhost"])
def test_good_urls_pass(url: str) -> None:
    assert connection.url_problem(url) is None
    assert connection.validate_url(url) == url


async def test_connect_refuses_a_bad_url_before_connecting() -> None:
    with pytest.raises(connection.InvalidURLError, match="from the url argument"):
        await mqlab.connect("amqp://h:notaport/", timeout=1)


@pytest.mark.slow  # the CLI in a subprocess
@pytest.mark.parametrize("url", ["not a url", "amqp://h:notaport/"])
def test_cli_bad_url_is_one_line(url: str) -> None:
    """The issue's report: a 66-line traceback for these; now one line and exit status 2."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "mqlab", "pipeline", "--url", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid AMQP URL" in lines[0], done.stderr


def test_resolve_url_order_argument_then_environment_then_fallback(monkeypatch) -> None:
    given, env, own = (
        "amqp://guest:guest@127.0.0.1:5001/",
        "amqp://guest:guest@127.0.0.1:5002/",
        "amqp://guest:guest@127.0.0.1:5003/",
    )
    monkeypatch.setenv(connection.ENV_URL, env)
    assert connection.resolve_url(given, given_as="--url") == connection.BrokerURL(given, "--url")
    assert connection.resolve_url(None, fallback=lambda: own).source == "$MQLAB_AMQP_URL"
    monkeypatch.delenv(connection.ENV_URL)
    chosen = connection.resolve_url(None, fallback=lambda: own)
    assert chosen.url == own and not chosen.explicit
    with pytest.raises(connection.NoBrokerError, match="--url"):
        connection.resolve_url(None, fallback=None)


def test_resolve_url_names_the_source_of_a_bad_url(monkeypatch) -> None:
    monkeypatch.setenv(connection.ENV_URL, "amqp://h:notaport/")
    with pytest.raises(connection.InvalidURLError, match=r"from \$MQLAB_AMQP_URL"):
        connection.resolve_url()
    with pytest.raises(connection.InvalidURLError, match="from --url"):
        connection.resolve_url("http://h/", given_as="--url")
