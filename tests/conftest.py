"""Shared fixtures: broker URLs for the conformance-style tests, and the quick setting.

Broker tests take ``amqp_url``, parametrised over the embedded broker and a real RabbitMQ.
RabbitMQ is looked up at ``MQLAB_RABBITMQ_URL`` (default: guest on loopback). When it cannot
be reached the RabbitMQ half is skipped, unless ``MQLAB_REQUIRE_RABBITMQ=1`` (set by .ci/run),
in which case it fails: CI must never pass by skipping the real broker.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from mqlab.connection import listening

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

# nbformat imports jsonschema, which imports the optional rfc3987_syntax if it is installed
# (jupyter's dependencies install it) and compiles a grammar at import: ~1.3 s of CPU in every
# test process, for the "iri" format checks that nothing here uses (nbformat's schema has no
# such format, and nbformat passes no format checker). Marked missing, jsonschema skips them
# (it imports it under suppress(ImportError)). Kernels run in their own processes, untouched.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

os.environ.setdefault("LAB_QUICK", "1")
# Tests must never pick up a learner's broker by accident; those that want one ask for it.
os.environ.pop("MQLAB_AMQP_URL", None)

RABBITMQ_URL = os.environ.get("MQLAB_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
RABBITMQ_REQUIRED = os.environ.get("MQLAB_REQUIRE_RABBITMQ") == "1"


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Tests that draw leave no figures behind (pyplot keeps every open one alive)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """URL of a real RabbitMQ; skips (or fails in CI) when there is none."""
    if listening(RABBITMQ_URL):
        return RABBITMQ_URL
    msg = f"RabbitMQ not reachable at {RABBITMQ_URL}"
    if RABBITMQ_REQUIRED:
        pytest.fail(msg + " and MQLAB_REQUIRE_RABBITMQ=1", pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def embedded_url() -> Iterator[str]:
    """URL of one embedded broker shared by the session (tests use unique names)."""
    from mqlab.broker import BrokerThread

    # A refused login is answered after 0.5 s here, not the default 3 s: tests stay fast.
    with BrokerThread(host="127.0.0.1", port=0, login_delay=0.5) as broker:
        yield broker.url


@pytest.fixture(params=["embedded", "rabbitmq"])
def amqp_url(request: pytest.FixtureRequest) -> str:
    """Each broker test runs twice: on the embedded broker and on RabbitMQ."""
    if request.param == "rabbitmq":
        request.node.add_marker(pytest.mark.rabbitmq)
        return request.getfixturevalue("rabbitmq_url")
    return request.getfixturevalue("embedded_url")


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A robust aio-pika connection to the broker under test (both brokers, via ``amqp_url``)."""
    import aio_pika  # here, not at the top: most tests never touch a broker

    conn = await aio_pika.connect_robust(amqp_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def broker_kind(amqp_url: str, request: pytest.FixtureRequest) -> str:
    """'embedded' or 'rabbitmq', for the rare test that must say how the two differ."""
    return request.node.callspec.params["amqp_url"]
