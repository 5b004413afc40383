"""Find a broker and connect: ``MQLAB_AMQP_URL`` if set, otherwise the embedded one.

``await mqlab.connect()`` returns an aio-pika *robust* connection (it reconnects and
redeclares after a network blip). The broker is chosen in this order:

1. the ``url`` argument;
2. the ``MQLAB_AMQP_URL`` environment variable (e.g. a RabbitMQ in Docker);
3. an embedded :class:`mqlab.broker.BrokerThread` on 127.0.0.1, started once per process
   on a free port, so the chapters run with nothing installed.

:func:`broker_url` answers the same question synchronously, for handing a URL to a
subprocess (the pipeline's services) or printing it in a notebook.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

    from mqlab.broker import BrokerThread

__all__ = [
    "ENV_URL",
    "BrokerUnavailableError",
    "InvalidURLError",
    "broker_url",
    "connect",
    "embedded_broker",
    "mask_url",
    "url_problem",
    "validate_url",
]

ENV_URL = "MQLAB_AMQP_URL"

_lock = threading.Lock()
_embedded: BrokerThread | None = None


class BrokerUnavailableError(ConnectionError):
    """The configured broker could not be reached, or refused the login."""


class InvalidURLError(ValueError):
    """The AMQP URL is malformed (the message says how, in one line)."""


_URL_SHAPE = "amqp://user:password@host:port/vhost"


def url_problem(url: object) -> str | None:
    """What is wrong with an AMQP URL, as one line naming the (masked) URL; None if fine.

    Checked before connecting, because aio-pika's own errors for a bad URL ("host and port
    was not specified and no sock specified") do not say which setting to fix.
    """
    if not isinstance(url, str) or not url.strip():
        return f"the AMQP URL is empty; expected {_URL_SHAPE}"
    shown = _mask_loosely(url)
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError as exc:
        why = str(exc)
        if "port" in why.lower():
            raw = parts.netloc.rpartition("@")[2].rpartition(":")[2]
            why = f"port {raw!r} is not a number from 1 to 65535"
        return f"invalid AMQP URL {shown!r}: {why}; expected {_URL_SHAPE}"
    if parts.scheme not in ("amqp", "amqps"):
        why = "no scheme" if not parts.scheme else f"scheme {parts.scheme!r}"
        return f"invalid AMQP URL {shown!r}: {why}, not amqp:// or amqps://; expected {_URL_SHAPE}"
    if not parts.hostname:
        return f"invalid AMQP URL {shown!r}: no host; expected {_URL_SHAPE}"
    if port == 0:
        return f"invalid AMQP URL {shown!r}: port 0 is not a port to connect to"
    return None


def validate_url(url: str) -> str:
    """``url`` unchanged if it is a well-formed AMQP URL, else :class:`InvalidURLError`."""
    problem = url_problem(url)
    if problem is not None:
        raise InvalidURLError(problem)
    return url


def _mask_loosely(url: str) -> str:
    # mask_url needs a URL urlsplit can parse; a malformed one still must not show a password.
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1****@", url)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``****`` (safe to print or log).

    A comma-separated list of node URLs (a cluster, see :mod:`mqlab.ha`) is masked URL by URL.
    """
    if "," in url:
        return ",".join(mask_url(one) for one in url.split(","))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:****@{netloc[-1]}"))


def embedded_broker() -> BrokerThread:
    """The process-wide embedded broker, started on first use (stopped at exit)."""
    global _embedded
    with _lock:
        if _embedded is None or not _embedded.running:
            from mqlab.broker import BrokerThread

            _embedded = BrokerThread(host="127.0.0.1", port=0).start()
            atexit.register(_embedded.stop)
        return _embedded


def broker_url(url: str | None = None) -> str:
    """The URL :func:`connect` would use, starting the embedded broker if it is the one."""
    return url or os.environ.get(ENV_URL) or embedded_broker().url


async def connect(url: str | None = None, **kwargs: Any) -> AbstractRobustConnection:
    """A robust aio-pika connection to ``url``, ``$MQLAB_AMQP_URL`` or the embedded broker.

    Extra keyword arguments go to :func:`aio_pika.connect_robust` (e.g. ``timeout=5``).
    Raises :class:`BrokerUnavailableError` with the (masked) URL and what to do when the
    broker cannot be reached or refuses the credentials.
    """
    import aio_pika
    from aiormq.exceptions import AMQPConnectionError, AMQPError, ProbableAuthenticationError

    explicit = url or os.environ.get(ENV_URL)
    target = broker_url(explicit)
    source = "the url argument" if url else f"${ENV_URL}" if explicit else "the embedded broker"
    if (problem := url_problem(target)) is not None:
        raise InvalidURLError(f"{problem} (from {source})")
    kwargs.setdefault("timeout", 10)
    try:
        return await aio_pika.connect_robust(target, **kwargs)
    except ProbableAuthenticationError as exc:
        raise BrokerUnavailableError(
            f"the broker at {mask_url(target)} (from {source}) refused the login: {exc}. "
            "Check the user and password in the URL (RabbitMQ's default guest/guest only "
            "works from localhost)."
        ) from exc
    except (AMQPConnectionError, OSError, TimeoutError) as exc:
        hint = (
            f"Start RabbitMQ (see docs/setup.md), fix the URL, or unset {ENV_URL} to use "
            "the embedded broker."
            if explicit
            else "The embedded broker should always be reachable; please report this."
        )
        raise BrokerUnavailableError(
            f"cannot reach the AMQP broker at {mask_url(target)} (from {source}): {exc!r}. " + hint
        ) from exc
    except AMQPError as exc:  # e.g. a virtual host that does not exist
        raise BrokerUnavailableError(
            f"the broker at {mask_url(target)} (from {source}) refused the connection: "
            f"{exc!r}. Check the virtual host at the end of the URL ('/' is the default)."
        ) from exc
