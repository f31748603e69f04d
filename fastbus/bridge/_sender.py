"""Write-only senders, for processes without a bus: a cron job, a management command.

They write the envelopes a bridge writes, under their own origin, so bridged buses deliver
their messages like any other bridge's; they never receive anything.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from ._codec import check_codec, codec_name, encode_message, join, largest_argument
from ._connection import ERRORS, TRANSIENT, Endpoint, close, describe, is_fatal
from ._link import BridgeError
from ._options import check_count, check_name, check_timeout
from ._plugin import make_origin
from ._wire import DATA_FIELD, head, pubsub_channel, stream_key

__all__ = ("Sender", "send")


class Sender:
    """Send messages to bridged buses from a process that has no bus.

    ``Sender(url).send(channel, *args, **kwargs)`` delivers ``bus.publish(channel, *args,
    **kwargs)`` on every bus bridged to *url* under *prefix*: through pub/sub, or with
    ``durable=True`` through the channel's stream (kept to about *maxlen* entries). Each send
    is one round trip and returns once Redis has it; it raises BridgeError if Redis cannot be
    reached or refuses it (after one new connection, for a connection that had broken), and
    TypeError or ValueError for arguments the codec cannot encode or a message over
    *max_message_bytes*, as a bridge's publish does. Use the same *codec* as the bridges.

    One sender can be used from several threads; ``close()`` (or a ``with`` block) closes its
    connection, and a later send opens a new one.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "fastbus",
        durable: bool = False,
        maxlen: int | None = 100_000,
        codec: Any = None,
        max_message_bytes: int = 1 << 20,
        socket_timeout: float = 10.0,
        connect_timeout: float = 5.0,
    ) -> None:
        check_name(prefix, "prefix")
        check_count(maxlen, "maxlen", allow_none=True)
        check_count(max_message_bytes, "max_message_bytes")
        check_timeout(socket_timeout, "socket_timeout")
        check_timeout(connect_timeout, "connect_timeout")
        self.prefix = prefix
        self.durable = bool(durable)
        self.maxlen = maxlen
        self.codec = check_codec(codec)
        self.max_message_bytes = max_message_bytes
        self.origin = make_origin()
        self._endpoint = Endpoint(url, socket_timeout=socket_timeout, connect_timeout=connect_timeout)
        self.url = self._endpoint.safe_url
        self._lock = threading.Lock()
        self._connection: Any = None
        self._seqs: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"<fastbus.bridge.Sender {'durable' if self.durable else 'pub/sub'} {self.url}>"

    def __enter__(self) -> Sender:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a later send opens a new one)."""
        with self._lock:
            close(self._connection)
            self._connection = None

    def send(self, channel: str, /, *args: Any, **kwargs: Any) -> None:
        """Publish *channel* with these arguments on every bridged bus (see the class)."""
        check_name(channel, "channel")
        part = encode_message(self.codec, channel, args, kwargs)
        with self._lock:
            # Numbered before sending, and never reused: a message that fails may still have
            # reached Redis, and receivers take a number seen again for a repeat.
            seq = self._seqs[channel] = self._seqs.get(channel, 0) + 1
            payload = join(self.codec, head(self.origin, channel, seq), [part])
            if len(payload) > self.max_message_bytes:
                where, size = largest_argument(self.codec, args, kwargs)
                raise ValueError(
                    f"cannot send channel {channel!r}: the message is {len(payload)} bytes encoded "
                    f"({codec_name(self.codec)}), over max_message_bytes={self.max_message_bytes}; "
                    f"its largest part is {where} ({size} bytes)"
                )
            if self.durable:
                command: list[Any] = ["XADD", stream_key(self.prefix, channel)]
                if self.maxlen is not None:
                    command += ["MAXLEN", "~", self.maxlen]
                command += ["*", DATA_FIELD, payload]
            else:
                command = ["PUBLISH", pubsub_channel(self.prefix, channel), payload]
            self._execute(command)

    def _execute(self, command: list[Any]) -> None:
        # A connection that broke since the last send is only found out now: one new connection
        # is tried before giving up. A resent message that had arrived after all is a repeat,
        # which receivers recognise by its number and deliver once.
        for attempt in (1, 2):
            try:
                if self._connection is None:
                    self._connection = self._endpoint.connect()
                self._connection.send_command(*command)
                self._connection.read_response()
                return
            except ERRORS as exc:
                close(self._connection)
                self._connection = None
                if attempt == 1 and isinstance(exc, TRANSIENT) and not is_fatal(exc):
                    continue
                raise BridgeError(f"cannot send to {self.url}: {describe(exc)}") from exc


def send(url: str, channel: str, /, *args: Any, prefix: str = "fastbus", durable: bool = False, **kwargs: Any) -> None:
    """Publish *channel* with these arguments on every bus bridged to *url*, once, and return.

    A one-off :class:`Sender`: it connects, sends and closes. *prefix* and *durable* are
    options of the send, not arguments of the message; to send keyword arguments with those
    names, use ``Sender(url).send(channel, *args, **kwargs)``, whose keyword arguments all
    belong to the message.
    """
    with Sender(url, prefix=prefix, durable=durable) as sender:
        sender.send(channel, *args, **kwargs)
