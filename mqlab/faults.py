"""Faults on purpose, to prove the pipeline survives them: cut connections, bad messages.

:class:`FaultProxy` is a loopback TCP proxy that breaks AMQP connections. Put it between a
client and the broker (``FaultProxy(broker_url).url`` is the URL to give the client), then
call :meth:`FaultProxy.drop` at any moment: every connection through it is cut at once, the
way a crashed broker or a pulled cable would. :meth:`FaultProxy.refuse` keeps new connections
out for a while. aio-pika's own test suite checks its robust connections the same way. The
proxy listens on 127.0.0.1 only.

:func:`malformed_messages` and :func:`inject` publish garbage into a running pipeline's
exchanges, each message with a note of what is wrong with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from mqlab.bus import Bus, Outgoing

if TYPE_CHECKING:
    from mqlab.events import MarketEvent

__all__ = ["FaultProxy", "Malformed", "inject", "malformed_messages"]


@dataclass(frozen=True)
class Malformed(Outgoing):
    """One bad message: where it goes, what it carries, and ``what`` is wrong with it."""

    what: str = field(kw_only=True)


def malformed_messages(sample: MarketEvent) -> list[Malformed]:
    """Three kinds of garbage for a pipeline whose market data looks like ``sample``."""
    from mqlab.events import encode, routing_key

    key = routing_key(sample)
    floaty = json.dumps(json.loads(encode(sample)) | {"close": 42000.5}).encode()
    return [
        Malformed("market", key, b"{not json", "bad-0", {"x-seq": 6}, what="not JSON at all"),
        Malformed(
            "market", key, floaty, "bad-1", {"x-seq": 6},
            what="a float price (money travels as text)",
        ),
        Malformed(
            "orders", "order.evil.binance.BTCUSDT", b'{"event": "order"}', "bad-2", type="order",
            what="an order with no fields, from a strategy nobody runs",
        ),
    ]  # fmt: skip


async def inject(url: str, prefix: str, messages: Sequence[Malformed]) -> list[str]:
    """Publish ``messages`` (confirmed) into the pipeline named ``prefix``; return their ids."""
    async with Bus(url, prefix=prefix) as bus:
        for message in messages:
            await message.publish(bus)
    return [m.message_id for m in messages]


class FaultProxy:
    """Forward ``127.0.0.1:<port>`` to the broker in ``target_url``; cut links on demand."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target_url = target_url
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self.drops = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._refuse_until = 0.0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the proxy is not started; use `async with FaultProxy(url)`")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``target_url`` with host and port replaced by the proxy's."""
        parts = urlsplit(self.target_url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def connections(self) -> int:
        return len(self._links)

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def drop(self) -> int:
        """Cut every connection now (no AMQP close handshake); return how many were cut."""
        cut = 0
        for client, upstream in list(self._links):
            for writer in (client, upstream):
                writer.transport.abort()
            cut += 1
        self._links.clear()
        self.drops += cut
        return cut

    def refuse(self, seconds: float) -> None:
        """Drop every connection and turn new ones away for ``seconds``."""
        self._refuse_until = asyncio.get_running_loop().time() + seconds
        self.drop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            for w in link:
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
