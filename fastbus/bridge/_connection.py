"""The Redis side: connections made from a URL, what their errors mean, and reconnecting.

The bridge drives redis-py's ``Connection`` objects itself (one for sending, one for
receiving) rather than its client and PubSub classes: those retry and resubscribe on their
own, out of sight, while the bridge must count reconnects, back off as it chooses, resend its
batch in order and know when it is subscribed.
"""

from __future__ import annotations

import random
import re
import ssl
import threading
import time
from typing import Any, Callable

import redis
from redis import exceptions as redis_errors
from redis.connection import parse_url

__all__ = ("ERRORS", "TRANSIENT", "Backoff", "Endpoint", "Throttle", "describe", "is_fatal", "redact")

TRANSIENT = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)
"""Errors after which the same connection attempt may succeed later (the server is down or
unreachable). AuthenticationError is a ConnectionError in redis-py: :func:`is_fatal` tells it
apart."""


ERRORS = (redis_errors.RedisError, OSError)
"""Every error a connection or a command can raise: the transient ones, and the refusals."""


_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:)[^/@]*@")


def redact(url: str) -> str:
    """*url* with its password replaced by ``***``, for messages and logs (even a malformed one)."""
    return _PASSWORD.sub(r"\g<head>***@", url)


def tls_failure(error: BaseException) -> ssl.SSLError | None:
    """The TLS error behind *error* (redis-py wraps it in a ConnectionError), if it is one that
    retrying cannot mend: a certificate refused, a server that does not speak TLS."""
    seen: BaseException | None = error
    for _ in range(10):  # the chain of causes, however it loops
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError) and not isinstance(seen, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def is_fatal(error: BaseException) -> bool:
    """True if retrying cannot help: the server refused the credentials, the TLS or the set-up."""
    if isinstance(error, redis_errors.AuthenticationError) or tls_failure(error) is not None:
        return True
    return isinstance(error, redis_errors.RedisError) and not isinstance(error, TRANSIENT)


def describe(error: BaseException) -> str:
    """What went wrong, in words that say which kind of problem it is."""
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, redis_errors.AuthenticationError):
        return f"the server refused the credentials ({text}); check the user and password in the URL"
    if isinstance(error, getattr(redis_errors, "NoPermissionError", ())):
        return f"the server's ACL refused a command ({text}); the user needs the bridge's commands and keys"
    failure = tls_failure(error)
    if failure is not None:
        return (
            f"the TLS handshake failed ({type(failure).__name__}: {failure}); "
            "check the certificates and the ssl_* options in the URL"
        )
    if isinstance(error, redis_errors.InvalidResponse):
        return f"the server does not answer as Redis does ({text})"
    if is_fatal(error):
        return f"the server refused the bridge's set-up ({text})"
    return f"the server is unreachable ({text})"


class Endpoint:
    """A Redis server given by URL, parsed once: makes new connections to it.

    Raises ValueError at construction for a URL redis-py cannot parse (scheme, port, options),
    so a bad URL fails where it was given rather than at the bus's start. TLS (``rediss://``),
    Unix sockets (``unix://``), ACL users and passwords, the database number and redis-py's
    connection options come through the URL as redis-py reads them.
    """

    def __init__(self, url: str, *, socket_timeout: float, connect_timeout: float) -> None:
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__!r}")
        self.safe_url = redact(url)
        try:
            options = parse_url(url)
        except ValueError as exc:
            raise ValueError(f"url: malformed Redis URL {self.safe_url!r}: {exc}") from None
        self._class = options.pop("connection_class", redis.Connection)
        options.setdefault("socket_timeout", socket_timeout)
        options.setdefault("socket_connect_timeout", connect_timeout)
        # The bridge parses RESP2 replies as bytes, whatever the URL asks for.
        options["decode_responses"] = False
        options["protocol"] = 2
        self._options = options
        try:
            self._class(**options)
        except (TypeError, ValueError, redis_errors.RedisError) as exc:
            raise ValueError(f"url: Redis URL {self.safe_url!r} has an option redis-py does not take: {exc}") from None

    def connect(self) -> Any:
        """Return a new connection, connected and authenticated; raises as redis-py does."""
        connection = self._class(**self._options)
        try:
            connection.connect()
        except BaseException:
            connection.disconnect()
            raise
        return connection


def close(connection: Any) -> None:
    """Close *connection* (None too), ignoring whatever a dead socket says."""
    if connection is not None:
        try:
            connection.disconnect()
        except Exception:
            pass


class Backoff:
    """Capped, jittered exponential delays between reconnection attempts.

    The n-th delay is ``min(cap, first * 2**n)`` times a random factor between 0.5 and 1, so
    that processes that lost the server together do not all come back at the same instant.
    """

    def __init__(self, first: float, cap: float) -> None:
        self.first, self.cap = first, cap
        self.attempt = 0

    def next(self) -> float:
        delay: float = min(self.cap, self.first * 2.0 ** min(self.attempt, 60))
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0


class Throttle:
    """Log through *log*, at most one line per kind every *interval* seconds.

    Lines held back are counted, and the next line of that kind says how many, so a flood of
    bad payloads or failed attempts cannot flood the log, and is still visible in it.
    """

    def __init__(self, log: Callable[[str, int], None], interval: float) -> None:
        self._log = log
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def __call__(self, kind: str, message: str, level: int) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._held[kind] = self._held.get(kind, 0) + 1
                return
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        if held:
            message += f" ({held} more like this in the last {self.interval:g} s were not logged)"
        self._log(message, level)
