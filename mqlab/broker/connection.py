"""One client's connection to the broker: handshake, frames in and out, heartbeats.

A :class:`Connection` is an ``asyncio.Protocol``: bytes arrive in :meth:`data_received`, are
cut into frames and decoded by pamqp, and handled synchronously, with no task per message.
Replies are appended to an output list; the broker writes every connection's output once per
event-loop turn (after committing the store, so publisher confirms follow the fsync).

Handshake (AMQP 0-9-1, as RabbitMQ does it)::

    client                         broker
    "AMQP\\x00\\x00\\x09\\x01"  ->
                               <-  Connection.Start   (capabilities, mechanisms "PLAIN")
    Connection.StartOk         ->                      (user/password; bad -> 403 + close)
                               <-  Connection.Tune    (channel_max, frame_max, heartbeat)
    Connection.TuneOk          ->
    Connection.Open("/")       ->
                               <-  Connection.OpenOk
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, Protocol

from pamqp import commands as spec
from pamqp import exceptions as pamqp_exceptions
from pamqp import frame as pamqp_frame
from pamqp import header as pamqp_header
from pamqp import heartbeat as pamqp_heartbeat

from mqlab.broker.channel import BrokerSettings, Channel
from mqlab.broker.errors import (
    AMQPError,
    ChannelException,
    ConnectionException,
    erlang_binary,
    frame_error,
)
from mqlab.broker.frames import PROTOCOL_HEADER, content_frames, method_frame
from mqlab.broker.message import Message
from mqlab.broker.vhost import VirtualHost

__all__ = ["Connection", "ConnectionHost", "TraceHook"]

log = logging.getLogger("mqlab.broker")

#: ``trace(connection_id, direction, channel, frame)``; direction is "in" or "out".
TraceHook = Callable[[int, str, int, Any], None]

_FRAME_HEAD = struct.Struct(">BHI")
_PUBLISH = spec.Basic.Publish
_HEARTBEAT = pamqp_heartbeat.Heartbeat().marshal()
_AUTH_REFUSED = (
    "Login was refused using authentication mechanism PLAIN. For details see the broker logfile."
)
SERVER_PROPERTIES: dict[str, Any] = {
    "product": "mqlab embedded broker",
    "version": "0.1.0",
    "platform": "Python asyncio + pamqp",
    "copyright": "aioquant-lab",
    "information": "A teaching AMQP 0-9-1 broker; see mqlab/broker",
    "cluster_name": "mqlab@localhost",
    "capabilities": {
        "publisher_confirms": True,
        "exchange_exchange_bindings": True,
        "basic.nack": True,
        "consumer_cancel_notify": True,
        "connection.blocked": True,
        "consumer_priorities": False,
        "authentication_failure_close": True,
        "per_consumer_qos": True,
        "direct_reply_to": False,
    },
}


class ConnectionHost(BrokerSettings, Protocol):
    """What a connection needs from its broker (:class:`~mqlab.broker.server.Broker`): a
    Protocol, so the connection and the server do not import each other."""

    vhost: VirtualHost
    loop: asyncio.AbstractEventLoop
    connections: set[Connection]
    decoded: dict[bytes, Any]
    trace: TraceHook | None
    users: dict[str, str]
    loopback_users: frozenset[str]
    login_delay: float
    handshake_timeout: float
    heartbeat: int
    frame_max: int
    channel_max: int

    @property
    def connection_ids(self) -> Iterator[int]: ...
    def schedule_flush(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One client's TCP connection: handshake state, channels and the output buffer."""

    #: Frames queued in one loop turn before deliveries wait for the next turn, so a deep
    #: queue drained with a large prefetch cannot monopolise the event loop.
    OUT_LIMIT = 3000

    def __init__(self, broker: ConnectionHost) -> None:
        self.broker = broker
        self.vhost = broker.vhost
        self.loop = broker.loop
        self.id = next(broker.connection_ids)  # 1, 2, ... per broker: readable traces
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.state = "header"  # header, start_ok, secure_ok, tune_ok, open, opened, closing
        self.user = ""
        self.client_properties: dict[str, Any] = {}
        self.channels: dict[int, Channel] = {}
        self.channel_max = broker.channel_max
        self.frame_max = broker.frame_max
        self.heartbeat = 0
        self.paused = False
        self.throttled = False
        self.published = False  # has sent basic.publish: blocked under a memory alarm
        self.blocked = False  # reading paused by the memory alarm
        self.out: list[bytes] = []
        self.dirty = False
        self.confirming: set[Channel] = set()
        self.last_recv = self.last_send = self.loop.time()
        self._buf = b""
        self._timer: asyncio.TimerHandle | None = None
        self._mechanism = "PLAIN"

    def __repr__(self) -> str:
        return f"<Connection #{self.id} {self.peer} {self.state}>"

    # -- transport callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.broker.connections.add(self)
        self._timer = self.loop.call_later(self.broker.handshake_timeout, self._handshake_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.broker.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._teardown()
        self.transport = None
        self.state = "closed"

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._redispatch()

    def _redispatch(self) -> None:
        for ch in list(self.channels.values()):
            for c in list(ch.consumers.values()):
                c.queue.dispatch()

    def data_received(self, data: bytes) -> None:
        self.last_recv = self.loop.time()
        if self.state in ("closing", "closed", "dead", "refused"):
            return
        buf = self._buf + data if self._buf else data
        try:
            pos = self._parse(buf)
        except ConnectionException as exc:
            self.fail(exc, exc.method)
            return
        except Exception:
            log.exception("internal error on %r", self)
            self.fail(ConnectionException(541, "internal error in the embedded broker"))
            return
        self._buf = buf[pos:]

    # -- frames in -------------------------------------------------------------------------

    def _parse(self, buf: bytes) -> int:
        pos, n = 0, len(buf)
        if self.state == "header":
            if buf[: min(n, 5)] != PROTOCOL_HEADER[: min(n, 5)] or (
                n >= 8 and buf[:8] != PROTOCOL_HEADER
            ):
                self._bad_protocol_header()
                return n
            if n < 8:
                return 0
            pos = 8
            self.state = "start_ok"
            self.send(
                0,
                spec.Connection.Start(
                    server_properties=SERVER_PROPERTIES,
                    mechanisms="PLAIN AMQPLAIN",
                    locales="en_US",
                ),
            )
        frame_max = self.frame_max
        unmarshal = pamqp_frame.unmarshal
        decoded = self.broker.decoded
        while n - pos >= 8:
            kind, channel, size = _FRAME_HEAD.unpack_from(buf, pos)
            if size > frame_max:  # RabbitMQ's limit is on the payload: frame_max - 8
                raise frame_error(kind, why=f"{{frame_too_large,{size},{frame_max - 8}}}")
            end = pos + 8 + size
            if end > n:
                break
            raw = buf[pos:end]
            if raw[-1] != 0xCE:
                raise frame_error(kind, raw[7:-1], f"{{invalid_frame_end_marker,{raw[-1]}}}")
            pos = end
            # Publishers repeat the same Basic.Publish frame message after message: reuse
            # pamqp's decoding of identical bytes (the broker never mutates a decoded frame).
            # Content headers are not cached: aio-pika gives every message its own message_id.
            value: Any = decoded.get(raw) if kind == 1 and size < 512 else None
            if value is None:
                try:
                    _, _, value = unmarshal(raw)
                except pamqp_exceptions.UnmarshalingException as exc:
                    payload = bytes(raw[7:-1])
                    if kind not in (1, 2, 3, 8):
                        raise frame_error(kind, payload, "unknown_frame") from None
                    if "Unknown method index" in str(exc):
                        raise ConnectionException(540, f"unknown method: {exc}") from None
                    error = ConnectionException(501, f"cannot decode {erlang_binary(payload[4:])}")
                    if kind == 1 and len(payload) >= 4:  # named in the Close, as RabbitMQ does
                        error.method = SimpleNamespace(index=int.from_bytes(payload[:4]))
                    raise error from None
                except Exception as exc:
                    raise ConnectionException(501, f"cannot decode frame: {exc!r}") from None
                if type(value) is _PUBLISH and size < 512:
                    if len(decoded) >= 4096:
                        decoded.clear()
                    decoded[raw] = value
            trace = self.broker.trace
            if trace is not None:
                trace(self.id, "in", channel, value)
            if kind == 1:
                try:
                    if channel == 0:
                        self._on_connection_method(value)
                    else:
                        self._on_channel_method(channel, value)
                except AMQPError as exc:
                    # Connection.Close names the method that failed, as RabbitMQ's does.
                    if exc.method is None:
                        exc.method = value
                    raise
            elif kind == 3:
                self._on_content(channel, Channel.on_body, value.value)
            elif kind == 2:  # the header's payload is kept, to re-send as is
                self._on_content(channel, Channel.on_header, value, raw[7:-1])
            elif channel != 0:  # heartbeat
                raise frame_error(8, code=505)
            if self.state in ("closing", "closed", "dead"):
                return n
        return pos

    def _on_content(self, number: int, handle: Callable[..., None], *frame: Any) -> None:
        """A content header or body: part of a publish, so an error in it closes the channel."""
        ch = self.channels.get(number)
        if ch is None:
            self._no_channel(number)
        elif not ch.closed:
            try:
                handle(ch, *frame)
            except ChannelException as exc:
                self.close_channel(ch, exc, spec.Basic.Publish)

    def _no_channel(self, number: int) -> None:
        if self.state != "opened":
            raise ConnectionException(504, "frame on a channel before connection.open")
        raise ConnectionException(504, f"expected 'channel.open' on channel {number}")

    def _on_channel_method(self, number: int, method: Any) -> None:
        if method.index >> 16 == 10:  # a connection method off channel 0: RabbitMQ's words
            raise ConnectionException(503, "unimplemented method")
        ch = self.channels.get(number)
        if ch is None:
            if self.state != "opened":
                raise ConnectionException(504, "channel method before connection.open")
            if not isinstance(method, spec.Channel.Open):
                raise ConnectionException(504, "expected 'channel.open'")
            # RabbitMQ limits how many channels are open, not their numbers (any of 1..65535)
            if self.channel_max and len(self.channels) >= self.channel_max:
                raise ConnectionException(
                    530,
                    f"number of channels opened ({len(self.channels)}) has reached the "
                    f"negotiated channel_max ({self.channel_max})",
                )
            self.channels[number] = Channel(self, number)
            self.send(number, spec.Channel.OpenOk())
            return
        if ch.closed:  # after our Channel.Close, only Close/CloseOk matter
            if isinstance(method, spec.Channel.CloseOk):
                self.channels.pop(number, None)
            elif isinstance(method, spec.Channel.Close):
                self.send(number, spec.Channel.CloseOk())
            return
        if isinstance(method, spec.Channel.CloseOk):  # nothing asked for it: RabbitMQ's words
            raise ConnectionException(503, "unimplemented method")
        try:
            ch.on_method(method)
        except ChannelException as exc:
            self.close_channel(ch, exc, method)

    def close_channel(self, ch: Channel, exc: AMQPError, method: Any) -> None:
        """Channel exception: tell the client, requeue, wait for its Channel.CloseOk."""
        ch.teardown()
        index = getattr(method, "index", 0)
        self.send(ch.number, spec.Channel.Close(exc.code, exc.text, index >> 16, index & 0xFFFF))

    def forget_channel(self, number: int) -> None:
        ch = self.channels.pop(number, None)
        if ch is not None:
            self.confirming.discard(ch)

    def _on_connection_method(self, m: Any) -> None:
        state = self.state
        if state == "opened":
            if isinstance(m, spec.Connection.Close):
                self._teardown()
                self.send(0, spec.Connection.CloseOk())
                self.state = "dead"
                self._flush_and_close()
            elif isinstance(m, spec.Connection.CloseOk):
                pass
            elif isinstance(m, spec.Connection.UpdateSecret):
                self.send(0, spec.Connection.UpdateSecretOk())
            elif isinstance(m, spec.Connection.Blocked | spec.Connection.Unblocked):
                pass
            else:  # a handshake method again, or another class's method on channel 0
                raise ConnectionException(504, "unexpected method in connection state running")
        elif state == "start_ok" and isinstance(m, spec.Connection.StartOk):
            self.client_properties = dict(m.client_properties or {})
            self._mechanism = m.mechanism
            if m.mechanism not in ("PLAIN", "AMQPLAIN"):
                raise ConnectionException(
                    403, f"unsupported authentication mechanism '{m.mechanism}'"
                )
            if not m.response:
                self.state = "secure_ok"
                self.send(0, spec.Connection.Secure(""))
                return
            self._authenticate(m.response or "")
        elif state == "secure_ok" and isinstance(m, spec.Connection.SecureOk):
            self._authenticate(m.response or "")
        elif state == "tune_ok" and isinstance(m, spec.Connection.TuneOk):
            if m.channel_max:
                self.channel_max = min(self.channel_max, m.channel_max)
            if m.frame_max:
                if m.frame_max < 4096:
                    raise ConnectionException(530, f"frame_max={m.frame_max} < 4096 min size")
                self.frame_max = min(self.frame_max, m.frame_max)
            self.heartbeat = m.heartbeat
            self.state = "open"
        elif state == "open" and isinstance(m, spec.Connection.Open):
            if m.virtual_host not in ("/", ""):
                raise ConnectionException(530, f"vhost {m.virtual_host} not found")
            self.state = "opened"
            self.send(0, spec.Connection.OpenOk())
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            if self.heartbeat:
                self._timer = self.loop.call_later(self.heartbeat / 2, self._beat)
        elif isinstance(m, spec.Connection.Close):
            self.send(0, spec.Connection.CloseOk())
            self.state = "dead"
            self._flush_and_close()
        else:
            raise ConnectionException(503, f"unexpected {m.name} while in state {state!r}")

    def _authenticate(self, response: str | bytes) -> None:
        if isinstance(response, bytes):
            response = response.decode("utf-8", "replace")
        user = password = None
        if self._mechanism == "PLAIN":
            parts = response.split("\x00")
            if len(parts) == 3:
                _, user, password = parts
        else:  # AMQPLAIN: a field table without its length prefix
            from pamqp import decode, encode

            try:
                raw = response.encode("latin-1")
                table = decode.field_table(encode.long_uint(len(raw)) + raw)[1]
                user, password = str(table.get("LOGIN")), str(table.get("PASSWORD"))
            except Exception:
                user = None
        refusal = None
        if user is None or self.broker.users.get(user) != password:
            refusal = "invalid credentials"
        elif user in self.broker.loopback_users and not self._from_loopback():
            refusal = "can only connect via localhost"  # RabbitMQ's loopback_users
        if user is None or refusal is not None:
            log.info("login refused for user %r from %s: %s", user, self.peer, refusal)
            self._refuse_login()
            return
        self.user = user
        self.state = "tune_ok"
        self.send(
            0,
            spec.Connection.Tune(self.channel_max, self.frame_max, self.broker.heartbeat),
        )

    def _from_loopback(self) -> bool:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        if not peer:
            return False
        try:
            return ipaddress.ip_address(peer[0]).is_loopback
        except ValueError:  # a Unix socket or something stranger: not loopback
            return False

    def _refuse_login(self) -> None:
        """403 for a refused login, held back for ``broker.login_delay`` seconds.

        RabbitMQ keeps the socket of a refused login open 3 s; we also hold the answer, so a
        client waiting for it cannot try more than one password per delay and connection.
        Input is ignored meanwhile (state "refused").
        """
        self.state = "refused"
        if self.transport is not None:
            self.transport.pause_reading()
        if self._timer is not None:
            self._timer.cancel()
        text = _AUTH_REFUSED.replace("PLAIN", self._mechanism)
        self._timer = self.loop.call_later(self.broker.login_delay, self._send_refusal, text)

    def _send_refusal(self, text: str) -> None:
        self._timer = None
        if self.transport is None:
            return
        exc = ConnectionException(403, text)
        self.send(0, spec.Connection.Close(exc.code, exc.text, 0, 0))
        self.state = "closing"
        self._flush_and_close()

    # -- memory alarm (RabbitMQ's connection.blocked) ---------------------------------------

    def block(self) -> None:
        """Stop reading from a publisher while the broker is over its memory limit."""
        if self.blocked or not self.published or self.state != "opened":
            return
        self.blocked = True
        if self.transport is not None:
            self.transport.pause_reading()
        if self._capable("connection.blocked"):
            self.send(0, spec.Connection.Blocked("low on memory"))

    def unblock(self) -> None:
        if not self.blocked:
            return
        self.blocked = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        if self._capable("connection.blocked") and self.state == "opened":
            self.send(0, spec.Connection.Unblocked())

    def _capable(self, name: str) -> bool:
        capabilities = self.client_properties.get("capabilities")
        return isinstance(capabilities, dict) and capabilities.get(name) is True

    # -- frames out ------------------------------------------------------------------------

    def send(self, channel: int, method: Any) -> None:
        """Queue one method frame for this turn's write."""
        trace = self.broker.trace
        if trace is not None:
            trace(self.id, "out", channel, method)
        self.out.append(method_frame(method, channel))
        if not self.dirty:
            self.dirty = True
            self.broker.schedule_flush(self)

    def send_content(self, channel: int, method: Any, message: Message) -> None:
        """Queue a method with content (Deliver, GetOk, Return): method, header, body frames."""
        trace = self.broker.trace
        if trace is not None:
            trace(self.id, "out", channel, method)
            trace(
                self.id,
                "out",
                channel,
                pamqp_header.ContentHeader(0, len(message.body), message.properties),
            )
            if message.body:
                from pamqp.body import ContentBody

                trace(self.id, "out", channel, ContentBody(message.body))
        # Build every frame before queueing any: a failure leaves nothing half-sent.
        first = method_frame(method, channel)
        rest = content_frames(channel, message.header, message.body, self.frame_max)
        out = self.out
        out.append(first)
        out.extend(rest)
        if not self.dirty:
            self.dirty = True
            self.broker.schedule_flush(self)

    def confirm_pending(self, ch: Channel) -> None:
        self.confirming.add(ch)
        if not self.dirty:
            self.dirty = True
            self.broker.schedule_flush(self)

    def flush(self) -> None:
        """Write everything queued this turn in one transport.write()."""
        if self.confirming:  # still marked dirty, so these sends do not reschedule
            for ch in self.confirming:
                if not ch.closed:
                    ch.emit_confirms()
            self.confirming.clear()
        self.dirty = False
        if self.out:
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out.clear()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)
                self.last_send = self.loop.time()
        if self.throttled and not self.paused:
            self.throttled = False
            self.loop.call_soon(self._redispatch)

    # -- closing ---------------------------------------------------------------------------

    def fail(self, exc: ConnectionException, method: Any = None) -> None:
        """Connection exception: send Connection.Close with the code, then drop the socket."""
        if self.state in ("closing", "closed", "dead"):
            return
        log.info("closing %r: %s", self, exc.text)
        index = getattr(method, "index", 0)
        self._teardown()
        self.send(0, spec.Connection.Close(exc.code, exc.text, index >> 16, index & 0xFFFF))
        self.state = "closing"
        self._flush_and_close()

    def _bad_protocol_header(self) -> None:
        # The spec's answer to a wrong header: send ours, then close.
        self.state = "dead"
        if self.transport is not None:
            self.transport.write(PROTOCOL_HEADER)
            self.transport.close()

    def _flush_and_close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.close()

    def _teardown(self) -> None:
        channels = list(self.channels.values())
        self.channels.clear()
        self.confirming.clear()
        for ch in channels:
            ch.teardown()
        self.vhost.drop_owner(self)

    def _handshake_timeout(self) -> None:
        self._timer = None
        if self.state != "opened" and self.transport is not None:
            log.info("handshake timeout on %r", self)
            self.transport.abort()

    def _beat(self) -> None:
        """Heartbeats: send one when idle, drop a client silent for two intervals."""
        self._timer = None
        if self.transport is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.blocked:  # we stopped reading: its heartbeats are waiting unread
            self.last_recv = now
        if now - self.last_recv > 2 * self.heartbeat:
            log.info("missed heartbeats from %r, closing", self)
            self.transport.abort()
            return
        if now - self.last_send >= self.heartbeat / 2:
            self.out.append(_HEARTBEAT)
            if not self.dirty:
                self.dirty = True
                self.broker.schedule_flush(self)
        self._timer = self.loop.call_later(self.heartbeat / 2, self._beat)

    def close(self, code: int = 320, text: str = "broker shutdown") -> None:
        """Close from the broker side (e.g. on shutdown)."""
        if self.state == "opened":
            self.fail(ConnectionException(code, text))
        elif self.transport is not None:
            self.transport.close()
