"""Find a broker and connect: ``MQLAB_AMQP_URL`` if set, otherwise the embedded one.

``await mqlab.connect()`` returns an aio-pika *robust* connection (it reconnects and
redeclares after a network blip). The broker is chosen in this order:

1. the ``url`` argument;
2. the ``MQLAB_AMQP_URL`` environment variable (e.g. a RabbitMQ in Docker);
3. an embedded :class:`mqlab.broker.BrokerThread` on 127.0.0.1, started once per process
   on a free port, so the chapters run with nothing installed.

:func:`resolve_url` is the one place that makes this choice (and checks the URL); every
command's ``--url`` goes through it. :func:`broker_url` is its plain-string form, for handing
a URL to a subprocess or printing it in a notebook. :func:`connect_errors` is the one place
that turns a failed first connect into an error that names the masked URL and the fix.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

    from mqlab.broker import BrokerThread

__all__ = [
    "ENV_URL",
    "BrokerURL",
    "BrokerUnavailableError",
    "InvalidURLError",
    "NoBrokerError",
    "broker_url",
    "connect",
    "connect_errors",
    "embedded_broker",
    "listening",
    "mask_url",
    "resolve_url",
    "running_embedded_broker",
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


class NoBrokerError(LookupError):
    """No URL was given and there is no embedded broker to fall back on."""


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


def listening(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts a TCP connection at ``url``'s host and port (5672 if none):
    a cheap first check, before an AMQP handshake that would take its whole timeout."""
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 5672), timeout
        ).close()
    except OSError:
        return False
    return True


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


def running_embedded_broker(url: str | None = None) -> BrokerThread | None:
    """The process-wide embedded broker if it runs (and serves ``url``, when given); never
    starts one."""
    broker = _embedded
    if broker is None or not broker.running or (url is not None and broker.url != url):
        return None
    return broker


def _embedded_url() -> str:
    return embedded_broker().url


EMBEDDED = "the embedded broker"


@dataclass(frozen=True)
class BrokerURL:
    """A broker URL and where it came from (for error messages that say what to fix)."""

    url: str
    #: ``the url argument`` (or ``--url``), ``$MQLAB_AMQP_URL``, ``the embedded broker``, or
    #: empty when the caller does not know.
    source: str

    @property
    def explicit(self) -> bool:
        """Chosen by the user (argument or environment), not the embedded fallback."""
        return self.source != EMBEDDED

    @property
    def fix(self) -> str:
        """What to do when this broker cannot be reached."""
        if self.source == f"${ENV_URL}":
            return f"or unset {ENV_URL} to use the embedded broker"
        if self.explicit:
            return f"or leave {self.source or '--url'} out to use the embedded broker"
        return "the embedded broker should always be reachable; please report this"


def resolve_url(
    url: str | None = None,
    *,
    fallback: Callable[[], str] | None = _embedded_url,
    given_as: str = "the url argument",
) -> BrokerURL:
    """Which broker to use: ``url`` (given as ``given_as``, e.g. ``--url``), else
    ``$MQLAB_AMQP_URL``, else ``fallback()`` (by default the process-wide embedded broker,
    started now). The URL is checked before anyone connects.

    Raises :class:`InvalidURLError` (one line, naming the source) for a malformed URL, and
    :class:`NoBrokerError` when nothing is given and ``fallback`` is None.
    """
    env = os.environ.get(ENV_URL)
    if url:
        choice = BrokerURL(url, given_as)
    elif env:
        choice = BrokerURL(env, f"${ENV_URL}")
    elif fallback is not None:
        choice = BrokerURL(fallback(), EMBEDDED)
    else:
        raise NoBrokerError(f"no broker given: pass --url amqp://... or set {ENV_URL}")
    # A cluster's nodes come comma-separated (mqlab.ha): each one must be a URL.
    for node in choice.url.split(","):
        if (problem := url_problem(node.strip())) is not None:
            raise InvalidURLError(f"{problem} (from {choice.source})")
    return choice


def broker_url(url: str | None = None) -> str:
    """The URL :func:`connect` would use, starting the embedded broker if it is the one."""
    return resolve_url(url).url


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def connect_errors(
    target: BrokerURL | str,
    *,
    unavailable: Callable[[str], Exception] = BrokerUnavailableError,
    invalid: Callable[[str], Exception] = InvalidURLError,
) -> Iterator[None]:
    """Around a first connect: turn its failure into ``unavailable(message)``, one line that
    names the (masked) URL, where it came from, and what to fix. A malformed URL raises
    ``invalid(message)`` before anything connects.

    aiormq's own traceback-laden log of the failed connect is muted meanwhile; later
    reconnects (a broker restart mid-run) are still logged.
    """
    from aiormq.exceptions import AMQPError, ProbableAuthenticationError, ProtocolSyntaxError

    if isinstance(target, str):
        target = BrokerURL(target, "")  # where it came from is the caller's to say
    said = f" (from {target.source})" if target.source else ""
    where = mask_url(target.url) + said
    for node in target.url.split(","):  # a cluster's nodes, comma-separated (mqlab.ha)
        if (problem := url_problem(node.strip())) is not None:
            raise invalid(problem + said)
    logger, mute = logging.getLogger("aiormq.connection"), _DropAll()
    logger.addFilter(mute)
    try:
        yield
    except ProbableAuthenticationError as exc:
        raise unavailable(
            f"the AMQP broker at {where} refused the login ({exc}); check the user and "
            "password in the URL (RabbitMQ's guest/guest works from localhost only)"
        ) from exc
    except ProtocolSyntaxError as exc:  # the broker closed it while opening
        path = urlsplit(target.url).path or "/"
        raise unavailable(
            f"the AMQP broker at {where} closed the connection while it opened ({exc}); most "
            f"often the virtual host {path[1:] or '/'!r} (the path at the end of the URL) "
            "does not exist or the user may not use it; '/' is the default"
        ) from exc
    except (TimeoutError, OSError, AMQPError) as exc:
        if urlsplit(target.url).scheme == "amqps" and "SSL" in str(exc):
            raise unavailable(
                f"the AMQP broker at {where} did not answer TLS ({exc!r}); amqps:// needs a "
                "broker with a TLS listener (RabbitMQ's is on 5671 once configured), while "
                "the embedded broker and a default RabbitMQ speak plain AMQP: use amqp://"
            ) from exc
        raise unavailable(
            f"cannot reach the AMQP broker at {where} ({exc!r}); check the host and port in "
            "the URL, start RabbitMQ (docs/setup.md) or `python -m mqlab broker`, " + target.fix
        ) from exc
    finally:
        logger.removeFilter(mute)


async def connect(url: str | None = None, **kwargs: Any) -> AbstractRobustConnection:
    """A robust aio-pika connection to ``url``, ``$MQLAB_AMQP_URL`` or the embedded broker.

    Extra keyword arguments go to :func:`aio_pika.connect_robust` (e.g. ``timeout=5``).
    Raises :class:`InvalidURLError` for a malformed URL and :class:`BrokerUnavailableError`
    with the (masked) URL and what to do when the broker cannot be reached or refuses the
    credentials.
    """
    import aio_pika

    target = resolve_url(url)
    kwargs.setdefault("timeout", 10)
    with connect_errors(target):
        return await aio_pika.connect_robust(target.url, **kwargs)
