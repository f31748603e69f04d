"""What the bridge's two threads share: its settings and counters, and the reconnect loop.

Each thread (sending, receiving) owns one connection and a :class:`Link` around it. A link
connects, and after losing its connection reconnects with capped, jittered exponential
backoff until it succeeds or the bridge stops; every attempt's failure is recorded, and
logged at most once per interval.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ._connection import ERRORS, Backoff, Endpoint, Throttle, close, describe, is_fatal

__all__ = ("BridgeError", "Context", "Counters", "Link")


class BridgeError(Exception):
    """The Redis server refused the bridge (credentials, ACL, set-up) or cannot be reached.

    Raised by a bridge's ``start`` (and so by ``bus.start()``) when the server refuses it, and
    by a :class:`~fastbus.bridge.Sender` for any failure to send; the message says which.
    """


class Counters:
    """The numbers ``stats()`` reports; each is written by one thread, read by any."""

    def __init__(self) -> None:
        self.received = 0
        self.missed = 0
        self.duplicates = 0
        self.malformed = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.connected = {"sending": False, "receiving": False}
        self.errors: dict[str, str | None] = {"sending": None, "receiving": None}  # the last of each


class Context:
    """One bridge's settings and state, as its threads see them."""

    def __init__(
        self,
        *,
        bus: Any,
        endpoint: Endpoint,
        codec: Any,
        prefix: str,
        channels: tuple[str, ...],
        origin: str,
        label: str,
        retry_min: float,
        retry_max: float,
        log_interval: float,
    ) -> None:
        self.bus = bus
        self.endpoint = endpoint
        self.codec = codec
        self.prefix = prefix
        self.channels = channels
        self.origin = origin
        self.label = label
        self.retry_min, self.retry_max = retry_min, retry_max
        self.counters = Counters()
        self.throttle = Throttle(self.log, log_interval)

    def log(self, message: str, level: int = 20) -> None:
        """Log through the bus, naming the bridge; never raises (a broken log must not kill a thread)."""
        try:
            self.bus.log(f"{self.label}: {message}", level)
        except Exception:
            pass


class Link:
    """One connection of the bridge and its reconnect loop; subclasses say how to open it."""

    role = "link"

    def __init__(self, context: Context) -> None:
        self.context = context
        self.connection: Any = None
        self.backoff = Backoff(context.retry_min, context.retry_max)
        self.stop_requested = False
        self.deadline: float | None = None
        self._wake = threading.Event()
        self._had_failure = False

    def open(self) -> Any:
        """Return a new connection, ready for this link's work (subscribed, say)."""
        raise NotImplementedError

    def _set_connected(self, connected: bool) -> None:
        self.context.counters.connected[self.role] = connected

    def connect_first(self) -> None:
        """The first attempt, made by ``start`` in the caller's thread.

        Raises BridgeError if the server refuses the bridge (retrying cannot help, and start
        must say so); an unreachable server is only logged, and the thread retries.
        """
        try:
            self.connection = self.open()
        except ERRORS as exc:
            if is_fatal(exc):
                self._record(exc)
                raise BridgeError(f"{self.context.label}: {self.context.endpoint.safe_url}: {describe(exc)}") from exc
            self._failed(exc, first=True)
        else:
            self._set_connected(True)

    def lost(self, error: BaseException) -> None:
        """Drop the connection after *error*; the next :meth:`reconnect` makes a new one."""
        close(self.connection)
        self.connection = None
        self._set_connected(False)
        self._failed(error)

    def _record(self, error: BaseException) -> None:
        counters = self.context.counters
        counters.last_error = f"{self.role}: {describe(error)}"
        counters.errors[self.role] = describe(error)

    def _failed(self, error: BaseException, first: bool = False) -> None:
        context = self.context
        self._record(error)
        if is_fatal(error):
            level, tail = 40, "; retrying, but only a change on the server's side can help"
        else:
            level, tail = 30, "; retrying in the background"
        if first:
            tail += " (messages published meanwhile wait in the outbox)"
        message = f"{self.role}: {context.endpoint.safe_url}: {describe(error)}{tail}"
        context.throttle(f"{self.role}-error", message, level)
        self._had_failure = True

    def request_stop(self, deadline: float | None = None) -> None:
        """Ask the thread to end: at once, or after trying until *deadline* (``time.monotonic()``)."""
        self.deadline = deadline
        self.stop_requested = True
        self._wake.set()

    def giving_up(self) -> bool:
        """True once a stop was requested and its deadline, if any, has passed."""
        return self.stop_requested and (self.deadline is None or time.monotonic() >= self.deadline)

    def pause(self, seconds: float) -> None:
        """Wait *seconds*, or less: a stop request cuts the wait to what its deadline leaves."""
        if self.stop_requested:
            self._wake.clear()  # the request is seen: from now on only the deadline bounds waits
            if self.deadline is None:
                return
            seconds = min(seconds, self.deadline - time.monotonic())
        if seconds > 0:
            self._wake.wait(seconds)

    def reconnect(self) -> bool:
        """Connect again, waiting between attempts; False if the thread is to give up first."""
        while self.connection is None:
            if self.giving_up():
                return False
            try:
                connection = self.open()
            except Exception as exc:  # unexpected ones too: the thread must never die
                self._failed(exc)
                self.pause(self.backoff.next())
                continue
            self.connection = connection
            self.backoff.reset()
            self._set_connected(True)
            if self._had_failure:
                self._had_failure = False
                self.context.counters.reconnects += 1
                self.context.log(f"{self.role}: connected to {self.context.endpoint.safe_url} again", 20)
        return True

    def close(self) -> None:
        close(self.connection)
        self.connection = None
        self._set_connected(False)
