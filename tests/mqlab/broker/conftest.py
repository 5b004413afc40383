"""The broker suite's fixture: ``scratch``, one test's ``Scratch``.

Most conformance tests need the same start: a connection and a channel to the broker under
test (both brokers, via ``amqp_url``), and everything they declare deleted afterwards. The
fixture gives them that; a test that must act after the clean-up, or talk to another broker,
opens its own ``async with Scratch(url) as s:`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .helpers import Scratch


@pytest.fixture
async def scratch(amqp_url: str) -> AsyncIterator[Scratch]:
    async with Scratch(amqp_url) as s:
        yield s
