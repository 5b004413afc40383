"""A queue's ``x-`` arguments (参数): which ones the broker takes, checked as RabbitMQ checks
them, and the 406 error, worded as RabbitMQ words it, when a redeclare does not match.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from mqlab.broker.errors import ChannelException
from mqlab.broker.message import MAX_EXPIRY_MS

__all__ = ["QUEUE_ARGUMENTS", "QUEUE_TYPES", "amqp_type", "inequivalent", "parse_arguments"]


# Arguments RabbitMQ compares when a queue is declared again (with their default).
QUEUE_ARGUMENTS: dict[str, Any] = {
    "x-message-ttl": None,
    "x-expires": None,
    "x-dead-letter-exchange": None,
    "x-dead-letter-routing-key": None,
    "x-max-length": None,
    "x-max-length-bytes": None,
    "x-overflow": None,
    "x-queue-type": "classic",
    "x-max-priority": None,
    "x-single-active-consumer": None,
}
QUEUE_TYPES = ("classic", "quorum")
_OVERFLOW = ("drop-head", "reject-publish", "reject-publish-dlx")


def parse_arguments(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Validate queue arguments like RabbitMQ 3.10 (406 on a bad value); return the known ones.

    The checks run in RabbitMQ's order (``rabbit_amqqueue:declare_args/0``), so a declare
    with two bad arguments is refused for the same one, in the same words.
    """

    def bad(key: str, why: str) -> ChannelException:
        return ChannelException(406, f"invalid arg '{key}' for queue '{name}' in vhost '/': {why}")

    def integer(key: str, least: int = 0, most: int | None = None) -> None:
        if key not in args:
            return
        value = args[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(key, f'"expected integer, got {amqp_type(value)}"')
        if value < least:
            raise bad(key, f"{{{'value_zero' if value == 0 else 'value_negative'},{value}}}")
        if most is not None and value > most:
            raise bad(key, f"{{value_too_large,{value}}}")
        out[key] = value

    def string(key: str) -> str | None:
        value = args.get(key)
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if key in args and not isinstance(value, str):
            raise bad(key, f"{{unacceptable_type,{amqp_type(value)}}}")
        return value

    out: dict[str, Any] = {}
    dlx = args.get("x-dead-letter-exchange")
    if dlx is not None and not isinstance(dlx, str | bytes):
        # rabbit_channel checks the dead-letter exchange's name before the queue's arguments
        raise ChannelException(
            406,
            f"invalid type '{amqp_type(dlx)}' for arg 'x-dead-letter-exchange' in queue "
            f"'{name}' in vhost '/'",
        )
    integer("x-expires", least=1, most=MAX_EXPIRY_MS)
    integer("x-message-ttl", most=MAX_EXPIRY_MS)
    for key in ("x-dead-letter-exchange", "x-dead-letter-routing-key"):
        if (value := string(key)) is not None:
            out[key] = value
    if "x-dead-letter-routing-key" in out and "x-dead-letter-exchange" not in out:
        raise bad("x-dead-letter-routing-key", "routing_key_but_no_dlx_defined")
    integer("x-max-length")
    integer("x-max-length-bytes")
    if "x-max-priority" in args:
        integer("x-max-priority")
        if out["x-max-priority"] > 255:
            raise bad("x-max-priority", f"{{max_value_exceeded,{out['x-max-priority']}}}")
    overflow = string("x-overflow") or "drop-head"
    if overflow not in _OVERFLOW:
        raise bad("x-overflow", "invalid_overflow")
    out["x-overflow"] = overflow
    if "x-single-active-consumer" in args:
        value = args["x-single-active-consumer"]
        if not isinstance(value, bool):
            raise bad("x-single-active-consumer", f"{{unacceptable_type,{amqp_type(value)}}}")
        out["x-single-active-consumer"] = value
    kind = string("x-queue-type") or "classic"
    if kind == "stream":  # RabbitMQ has them; their offset-based consuming is another protocol
        raise bad("x-queue-type", '"stream queues are not supported by the embedded broker"')
    if kind not in QUEUE_TYPES:
        raise bad("x-queue-type", f"\"unsupported queue type '{kind}'\"")
    out["x-queue-type"] = kind
    if kind == "quorum" and "x-max-priority" in out:  # the queue type's own check comes last
        raise ChannelException(
            406,
            f"invalid arg 'x-max-priority' for queue '{name}' in vhost '/' of queue type "
            "rabbit_quorum_queue",
        )
    return out


def amqp_type(value: Any) -> str:
    """RabbitMQ's name for the field-table type pamqp encodes ``value`` as."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        for bits, name in ((8, "byte"), (16, "short"), (32, "signedint")):
            if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                return name
        return "long"
    names = {
        str: "longstr",
        bytes: "longstr",
        float: "float",
        Decimal: "decimal",
        dict: "table",
        list: "array",
        type(None): "void",
    }
    return names.get(type(value), type(value).__name__)


def inequivalent(kind: str, name: str, arg: str, new: Any, old: Any) -> ChannelException:
    """406 for a redeclare whose ``arg`` differs, worded as RabbitMQ words it.

    ``new``/``old`` are None when the argument is absent; RabbitMQ then shows the other side
    with its type: "received none but current is the value 'quorum' of type 'longstr'".
    """

    def show(value: Any) -> str:
        return "true" if value is True else "false" if value is False else str(value)

    sides: tuple[str, ...]
    if new is not None and old is not None:
        sides = f"'{show(new)}'", f"'{show(old)}'"
    else:
        sides = tuple(
            "none" if v is None else f"the value '{show(v)}' of type '{amqp_type(v)}'"
            for v in (new, old)
        )
    return ChannelException(
        406,
        f"inequivalent arg '{arg}' for {kind} '{name}' in vhost '/': "
        f"received {sides[0]} but current is {sides[1]}",
    )
