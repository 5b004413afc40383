"""Wire helpers over pamqp: every byte the broker sends is built here, by pamqp.

The one shortcut: a message's content header is kept as the payload pamqp received from the
publisher and re-framed unchanged for each delivery, instead of decoding and re-encoding the
properties for every consumer (it is the same bytes either way).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pamqp import body as _body
from pamqp import constants
from pamqp import frame as _frame
from pamqp import header as _header
from pamqp.base import Frame

__all__ = ["PROTOCOL_HEADER", "content_frames", "header_payload", "method_frame", "unchecked"]

PROTOCOL_HEADER = _header.ProtocolHeader().marshal()
_marshal_raw = getattr(_frame, "_marshal", None)
F = TypeVar("F", bound=Frame)
_UNCHECKED: dict[type[Frame], type[Frame]] = {}


def unchecked(cls: type[F], *args: Any, **kwargs: Any) -> F:
    """``cls(*args, **kwargs)`` without pamqp's client-side name check.

    pamqp refuses, when it builds a method, queue and exchange names outside
    ``[a-zA-Z0-9-_.:@#,/+ ]`` or longer than 127 characters. That is a client library's
    caution, not the protocol: AMQP 0-9-1 names are short strings of up to 255 bytes, and
    RabbitMQ accepts any UTF-8 (``orders!``, ``订单``). A broker must echo back whatever
    name it accepted, so every reply that carries a name is built through here. The
    255-byte limit still holds: the encoder checks it.
    """
    sub = _UNCHECKED.get(cls)
    if sub is None:
        # No __slots__ here: marshal() walks the parent's, so the wire format is unchanged.
        sub = _UNCHECKED[cls] = type(cls.__name__, (cls,), {"validate": _no_check})
    return sub(*args, **kwargs)  # type: ignore[return-value]


def _no_check(self: Frame) -> None:
    return None


def method_frame(method: Frame, channel: int) -> bytes:
    """One method frame, encoded by pamqp."""
    return _frame.marshal(method, channel)


def header_payload(header: _header.ContentHeader) -> bytes:
    """The payload of a content-header frame (what follows the 7-byte frame header)."""
    return header.marshal()


def content_frames(channel: int, payload: bytes, body: bytes, frame_max: int) -> list[bytes]:
    """Header frame (from its encoded ``payload``) plus as many body frames as needed."""
    if _marshal_raw is not None:
        frames = [_marshal_raw(constants.FRAME_HEADER, channel, payload)]
    else:  # pragma: no cover - a pamqp without the private helper: decode and re-encode
        hdr = _header.ContentHeader()
        hdr.unmarshal(payload)
        frames = [_frame.marshal(hdr, channel)]
    step = frame_max - 8
    if len(body) <= step:
        if body:
            frames.append(_frame.marshal(_body.ContentBody(body), channel))
    else:
        for i in range(0, len(body), step):
            frames.append(_frame.marshal(_body.ContentBody(body[i : i + step]), channel))
    return frames
