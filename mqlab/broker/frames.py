"""Wire helpers over pamqp: every byte the broker sends is built here, by pamqp.

The one shortcut: a message's content header is kept as the payload pamqp received from the
publisher and re-framed unchanged for each delivery, instead of decoding and re-encoding the
properties for every consumer (it is the same bytes either way).
"""

from __future__ import annotations

from pamqp import body as _body
from pamqp import constants
from pamqp import frame as _frame
from pamqp import header as _header
from pamqp.base import Frame

__all__ = ["PROTOCOL_HEADER", "content_frames", "header_payload", "method_frame"]

PROTOCOL_HEADER = _header.ProtocolHeader().marshal()
_marshal_raw = getattr(_frame, "_marshal", None)


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
