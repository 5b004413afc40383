"""A queue's ``x-`` arguments (参数): which ones the broker takes, checked as RabbitMQ checks
them, and the 406 error, worded as RabbitMQ words it, when a redeclare does not match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mqlab.broker.errors import ChannelException

__all__ = ["QUEUE_ARGUMENTS", "QUEUE_TYPES", "inequivalent", "parse_arguments"]


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
    """Validate queue arguments like RabbitMQ (406 on a bad value); return the known ones."""

    def bad(key: str, why: str) -> ChannelException:
        return ChannelException(406, f"invalid arg '{key}' for queue '{name}' in vhost '/': {why}")

    out: dict[str, Any] = {}
    for key in ("x-message-ttl", "x-max-length", "x-max-length-bytes", "x-expires"):
        if key in args:
            value = args[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(key, f"{{unacceptable_type,{value!r}}}")
            if value < (1 if key == "x-expires" else 0):
                raise bad(key, f"{{value_negative,{value}}}")
            out[key] = value
    for key in ("x-dead-letter-exchange", "x-dead-letter-routing-key"):
        if key in args:
            value = args[key]
            if isinstance(value, bytes):
                value = value.decode()
            if not isinstance(value, str):
                raise bad(key, f"{{unacceptable_type,{value!r}}}")
            out[key] = value
    if "x-dead-letter-routing-key" in out and "x-dead-letter-exchange" not in out:
        raise bad("x-dead-letter-routing-key", "x-dead-letter-exchange is required")
    overflow = args.get("x-overflow", "drop-head")
    if overflow not in _OVERFLOW:
        raise bad("x-overflow", f"{{unacceptable_value,{overflow!r}}}")
    out["x-overflow"] = overflow
    kind = args.get("x-queue-type", "classic")
    if isinstance(kind, bytes):
        kind = kind.decode(errors="replace")
    if kind == "stream":  # RabbitMQ has them; their offset-based consuming is another protocol
        raise bad("x-queue-type", '"stream queues are not supported by the embedded broker"')
    if kind not in QUEUE_TYPES:
        raise bad("x-queue-type", f"\"unsupported queue type '{kind}'\"")
    out["x-queue-type"] = kind
    if "x-max-priority" in args:
        value = args["x-max-priority"]
        if kind == "quorum":
            raise ChannelException(
                406,
                f"invalid arg 'x-max-priority' for queue '{name}' in vhost '/' of queue type "
                "rabbit_quorum_queue",
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("x-max-priority", f'"expected integer, got {_amqp_type(value)}"')
        if value < 0:
            raise bad("x-max-priority", f"{{value_negative,{value}}}")
        if value > 255:
            raise bad("x-max-priority", f"{{max_value_exceeded,{value}}}")
        out["x-max-priority"] = value
    if "x-single-active-consumer" in args:
        value = args["x-single-active-consumer"]
        if not isinstance(value, bool):
            raise bad("x-single-active-consumer", f"{{unacceptable_type,{_amqp_type(value)}}}")
        out["x-single-active-consumer"] = value
    return out


def _amqp_type(value: Any) -> str:
    """RabbitMQ's name for the field-table type pamqp encodes ``value`` as."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        for bits, name in ((8, "byte"), (16, "short"), (32, "signedint")):
            if -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
                return name
        return "long"
    names = {str: "longstr", bytes: "longstr", float: "float", dict: "table", list: "array"}
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
            "none" if v is None else f"the value '{show(v)}' of type '{_amqp_type(v)}'"
            for v in (new, old)
        )
    return ChannelException(
        406,
        f"inequivalent arg '{arg}' for {kind} '{name}' in vhost '/': "
        f"received {sides[0]} but current is {sides[1]}",
    )
