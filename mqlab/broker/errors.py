"""AMQP reply codes and the two kinds of protocol error: channel and connection exceptions.

A *channel exception* (soft error, e.g. 404 for a missing queue) closes one channel; a
*connection exception* (hard error, e.g. 501 for a broken frame) closes the whole connection.
Reply texts follow RabbitMQ's shape, ``"NOT_FOUND - no queue 'q' in vhost '/'"``, so a learner
sees the same message from both brokers.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "REPLY_NAMES",
    "AMQPError",
    "ChannelException",
    "ConnectionException",
    "erlang_binary",
    "frame_error",
]

REPLY_NAMES: dict[int, str] = {
    200: "OK",
    311: "CONTENT_TOO_LARGE",
    312: "NO_ROUTE",
    313: "NO_CONSUMERS",
    320: "CONNECTION_FORCED",
    402: "INVALID_PATH",
    403: "ACCESS_REFUSED",
    404: "NOT_FOUND",
    405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED",
    501: "FRAME_ERROR",
    502: "SYNTAX_ERROR",
    503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR",
    505: "UNEXPECTED_FRAME",
    506: "RESOURCE_ERROR",
    530: "NOT_ALLOWED",
    540: "NOT_IMPLEMENTED",
    541: "INTERNAL_ERROR",
}


class AMQPError(Exception):
    """An error the broker reports to the client with a Close method."""

    def __init__(self, code: int, detail: str) -> None:
        self.code = code
        self.text = _short(f"{REPLY_NAMES.get(code, 'ERROR')} - {detail}")
        self.method: Any = None  # the method being handled, named in the Close (class/method id)
        super().__init__(self.text)


def _short(text: str) -> str:
    """At most 255 bytes of UTF-8 (a reply-text is a short string), cut on a character."""
    raw = text.encode()
    return text if len(raw) <= 255 else raw[:255].decode(errors="ignore")


class ChannelException(AMQPError):
    """Soft error: the broker sends Channel.Close; the connection stays open."""


class ConnectionException(AMQPError):
    """Hard error: the broker sends Connection.Close and drops the socket."""


def erlang_binary(data: bytes) -> str:
    """``data`` as RabbitMQ's frame errors print it (Erlang's ``~p``): ``<<"abcd">>`` when
    every byte is printable ASCII, else ``<<0,60,0,10>>``. Only the first 255 bytes count: a
    reply text is cut there anyway. (Erlang also wraps a long binary over lines.)"""
    data = bytes(data[:255])
    if data and all(32 <= b < 127 for b in data):
        text = data.decode().replace("\\", "\\\\").replace('"', '\\"')
        return f'<<"{text}">>'
    return f"<<{','.join(map(str, data))}>>"


def frame_error(
    kind: int, payload: bytes = b"", why: str = "", code: int = 501
) -> ConnectionException:
    """RabbitMQ's connection error for a frame it cannot take: ``type 1, all octets = <<...>>``
    and, after a colon, ``why`` (e.g. ``unknown_frame``)."""
    text = f"type {kind}, all octets = {erlang_binary(payload)}"
    return ConnectionException(code, f"{text}: {why}" if why else text)
