"""The receiving thread: from Redis to ``bus.publish``, once per message, never sent back out.

Each payload is checked whole (:func:`fastbus.bridge._wire.parse`) before any of its messages
is delivered; one that is not a valid envelope is counted, logged (rate-limited) and dropped,
and the thread goes on. Messages are numbered per origin and channel, so the receiver can tell
a gap (messages it missed: counted, logged) from a repeat (a message sent again after a lost
connection: counted and not delivered a second time).

While the thread publishes a received message it marks the publish as a delivery (a
thread-local record of the bus, channel and argument objects), and every bridge's relay
listener passes over that publish: a message that came from Redis is never sent out again,
whatever the topology. The same record gives listeners :func:`current_message`.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, NamedTuple

from ._connection import describe
from ._link import Context, Link
from ._wire import DATA_FIELD, Malformed, cursor_key, parse, pubsub_channel, stream_key

__all__ = ("Inbox", "MessageInfo", "PubSubLink", "StreamLink", "current_message", "is_delivery")

POLL = 0.1
"""Seconds between two looks at the stop flag while waiting for data (data itself wakes the
thread at once)."""

MAX_ORIGINS = 10_000
"""How many (origin, channel) pairs the receiver remembers the last number of. Past that the
oldest half is forgotten: their next message starts afresh (no gap or repeat is counted for it)."""


class MessageInfo(NamedTuple):
    """Where the message being delivered comes from; see :func:`current_message`.

    ``(origin, channel, seq)`` identifies a message: a listener that must not act twice on
    one (durable mode delivers at least once) can keep the highest ``seq`` it has handled per
    origin and channel.
    """

    channel: str
    """The bus channel."""
    origin: str
    """The sending bridge or :class:`~fastbus.bridge.Sender`: unique per instance, stable for its life."""
    seq: int
    """The message's number among the messages of *channel* from *origin*: 1, 2, 3, ..."""
    stream_id: str | None
    """The id of the stream entry that carried it (durable mode), else None."""


class _Delivery:
    __slots__ = ("args", "bus", "channel", "info", "kwargs")

    def __init__(
        self, bus: Any, channel: str, args: tuple[Any, ...], kwargs: dict[str, Any], info: MessageInfo
    ) -> None:
        self.bus, self.channel, self.args, self.kwargs, self.info = bus, channel, args, kwargs, info


class _Local(threading.local):
    delivery: _Delivery | None = None


_local = _Local()


def current_message() -> MessageInfo | None:
    """The message a bridge is delivering on this thread, or None outside a delivery.

    Call it from a listener (or anything it calls) to learn the origin, sequence number and,
    in durable mode, the stream entry id of the message it was called for; it does not change
    the listener's arguments. A local publish gives None.
    """
    delivery = _local.delivery
    return None if delivery is None else delivery.info


def is_delivery(bus: Any, channel: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """True if this publish is a bridge delivering a received message (so it must not go out).

    It is the publish the receiving thread made when the same argument objects reach a relay
    of the same bus and channel; a publish a listener makes meanwhile, of other arguments or
    another channel, is a new message and goes out.
    """
    delivery = _local.delivery
    if delivery is None or delivery.bus is not bus or delivery.channel != channel:
        return False
    theirs = delivery.args
    if len(args) != len(theirs) or any(a is not b for a, b in zip(args, theirs)):
        return False
    other = delivery.kwargs
    return len(kwargs) == len(other) and all(key in other and other[key] is value for key, value in kwargs.items())


class Inbox:
    """Turns payloads into deliveries: checks, numbering, ``bus.publish`` on this thread."""

    def __init__(self, context: Context, *, echo: bool, limit: int) -> None:
        self.context = context
        self.echo = echo
        self.limit = limit
        self._last: dict[tuple[str, str], int] = {}

    def payload(self, channel: str, data: bytes, stream_id: str | None) -> None:
        """Deliver the messages of one payload that arrived on *channel*'s Redis name."""
        context = self.context
        counters = context.counters
        try:
            envelope = parse(context.codec, data, channel, self.limit)
        except Malformed as exc:
            counters.malformed += 1
            where = f"stream entry {stream_id}" if stream_id else "message"
            context.throttle("malformed", f"dropped a malformed {where} on channel {channel!r}: {exc}", 30)
            return
        origin = envelope.origin
        if origin == context.origin and not self.echo:
            return
        messages = envelope.messages
        first, count = envelope.seq, len(messages)
        key = (origin, channel)
        last = self._last.get(key)
        skip = 0
        if last is not None:
            if first > last + 1:
                missed = first - last - 1
                counters.missed += missed
                context.throttle(
                    "missed",
                    f"missed {missed} message(s) of channel {channel!r} from {origin} "
                    f"(numbers {last + 1} to {first - 1})",
                    30,
                )
            elif first <= last:
                skip = min(count, last - first + 1)
                counters.duplicates += skip
        if last is None or first + count - 1 > last:
            if last is None and len(self._last) >= MAX_ORIGINS:
                for stale in list(self._last)[: MAX_ORIGINS // 2]:
                    del self._last[stale]
            self._last[key] = first + count - 1
        for index in range(skip, count):
            args, kwargs = messages[index]
            self.deliver(channel, args, kwargs, MessageInfo(channel, origin, first + index, stream_id))

    def deliver(self, channel: str, args: tuple[Any, ...], kwargs: dict[str, Any], info: MessageInfo) -> None:
        bus = self.context.bus
        outer = _local.delivery
        _local.delivery = _Delivery(bus, channel, args, kwargs, info)
        try:
            bus.publish(channel, *args, **kwargs)
        except Exception:
            pass  # the bus has logged each failed listener, as for any publish
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt from a listener: on the main thread they end the
            # process; here they would only end this thread, silently. Say so, and go on.
            self.context.log(
                f"a listener of {channel!r} raised {type(exc).__name__} on the receiving thread; "
                "ignored (call bus.exit() to stop the process)",
                40,
            )
        finally:
            _local.delivery = outer
        self.context.counters.received += 1


class PubSubLink(Link):
    """The receiving connection in pub/sub mode: SUBSCRIBE to every bridged channel."""

    role = "receiving"

    def __init__(self, context: Context, inbox: Inbox, *, health_check_interval: float, socket_timeout: float) -> None:
        super().__init__(context)
        self.inbox = inbox
        self.health_check_interval = health_check_interval
        self.socket_timeout = socket_timeout
        self._names = [pubsub_channel(context.prefix, channel) for channel in context.channels]
        self._channel_of = {name.encode("utf-8"): channel for name, channel in zip(self._names, context.channels)}

    def open(self) -> Any:
        connection = self.context.endpoint.connect()
        try:
            connection.send_command("SUBSCRIBE", *self._names)
            for _ in self._names:
                connection.read_response()
        except BaseException:
            connection.disconnect()
            raise
        return connection

    def run(self) -> None:
        """Receive until stopped; a lost connection is made again and subscribed again."""
        last_data = time.monotonic()
        pinged = False
        while not self.stop_requested:
            if self.connection is None:
                if not self.reconnect():
                    break
                last_data, pinged = time.monotonic(), False
            connection = self.connection
            try:
                if not connection.can_read(POLL):
                    # An idle subscription is normal; a dead one is not told apart from it
                    # without asking: a PING after a quiet interval, and an answer expected.
                    idle = time.monotonic() - last_data
                    if idle > self.health_check_interval and not pinged:
                        connection.send_command("PING", check_health=False)
                        pinged = True
                    elif pinged and idle > self.health_check_interval + self.socket_timeout:
                        raise TimeoutError(f"no answer to a PING in {self.socket_timeout:g} s")
                    continue
                while True:
                    self._handle(connection.read_response())
                    if self.stop_requested or not connection.can_read(0):
                        break
                last_data, pinged = time.monotonic(), False
            except Exception as exc:  # an unexpected reply too: start afresh rather than die
                self.lost(exc)
        self.close()

    def _handle(self, reply: Any) -> None:
        if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
            channel = self._channel_of.get(reply[1])
            if channel is not None:
                self.inbox.payload(channel, reply[2], None)
        # Anything else is a subscription confirmation or the answer to a PING.


class StreamLink(Link):
    """The receiving connection in durable mode: XREAD from each channel's stream.

    The cursor (the id of the last entry delivered, per channel) lives in memory, so a
    reconnect resumes exactly where delivery stopped; with a name it is also saved in Redis,
    pipelined ahead of the next XREAD, so it is at most one read behind what was delivered,
    and once more at a clean stop.
    """

    role = "receiving"

    def __init__(
        self,
        context: Context,
        inbox: Inbox,
        *,
        name: str | None,
        read_count: int,
        block: float,
        socket_timeout: float,
        cursors: dict[str, str],
    ) -> None:
        super().__init__(context)
        self.inbox = inbox
        self.name = name
        self.read_count = read_count
        self.block = block
        self.socket_timeout = socket_timeout
        self.cursors = cursors  # shared with the bridge: survives a stop and a start
        self._keys = [stream_key(context.prefix, channel) for channel in context.channels]
        self._channel_of = {key.encode("utf-8"): channel for key, channel in zip(self._keys, context.channels)}
        self._cursor_key = cursor_key(context.prefix, name) if name is not None else None
        self._unsaved: dict[str, str] = {}

    def open(self) -> Any:
        connection = self.context.endpoint.connect()
        try:
            self._resolve_cursors(connection)
        except BaseException:
            connection.disconnect()
            raise
        return connection

    def _resolve_cursors(self, connection: Any) -> None:
        """Find where to start each channel this bridge has no cursor for in memory.

        A named bridge resumes after the cursor it saved; otherwise delivery starts after the
        stream's last entry now, so everything added after ``start`` returns is delivered.
        """
        channels = self.context.channels
        missing = [channel for channel in channels if channel not in self.cursors]
        if not missing:
            connection.send_command("PING")
            connection.read_response()
            return
        saved: dict[str, str] = {}
        if self._cursor_key is not None:
            connection.send_command("HMGET", self._cursor_key, *missing)
            for channel, value in zip(missing, connection.read_response()):
                if value is None:
                    continue
                if _STREAM_ID.fullmatch(value):
                    saved[channel] = value.decode("ascii")
                else:
                    self.context.log(
                        f"channel {channel!r}: ignored the saved cursor {value[:40]!r} in {self._cursor_key} "
                        "(not a stream id); starting at the end of the stream",
                        30,
                    )
        fresh = [channel for channel in missing if channel not in saved]
        commands: list[tuple[Any, ...]] = [
            ("XREVRANGE", stream_key(self.context.prefix, channel), "+", "-", "COUNT", 1) for channel in fresh
        ]
        commands += [("XINFO", "STREAM", stream_key(self.context.prefix, channel)) for channel in saved]
        if commands:
            connection.send_packed_command(connection.pack_commands(commands))
        for channel in fresh:
            entries = connection.read_response()
            self.cursors[channel] = entries[0][0].decode("ascii") if entries else "0-0"
        for channel, cursor in saved.items():
            self.cursors[channel] = cursor
            try:
                info = connection.read_response()
            except Exception:
                continue  # no such stream yet, or a server without XINFO's trimming fields
            self._check_trimmed(channel, cursor, info)

    def _check_trimmed(self, channel: str, cursor: str, info: Any) -> None:
        """Warn if the stream was trimmed past the saved cursor: entries were lost to retention."""
        if not isinstance(info, list):
            return
        fields = dict(zip(info[::2], info[1::2]))
        deleted = fields.get(b"max-deleted-entry-id")
        if isinstance(deleted, bytes) and _id_key(deleted.decode("ascii")) > _id_key(cursor):
            self.context.log(
                f"channel {channel!r}: the stream was trimmed past this bridge's saved cursor {cursor} "
                f"(entries up to {deleted.decode('ascii')} are gone): messages were lost; raise maxlen",
                30,
            )

    def run(self) -> None:
        """Read and deliver until stopped; then save the cursor once more."""
        while not self.stop_requested:
            if self.connection is None and not self.reconnect():
                break
            try:
                self._read_once()
            except Exception as exc:  # an unexpected reply too: start afresh rather than die
                self.lost(exc)
        self.close()
        self.save_cursor()

    def _read_once(self) -> None:
        connection = self.connection
        commands: list[tuple[Any, ...]] = []
        unsaved = dict(self._unsaved)
        if unsaved and self._cursor_key is not None:
            commands.append(("HSET", self._cursor_key, *[x for pair in unsaved.items() for x in pair]))
        ids = [self.cursors[channel] for channel in self.context.channels]
        block_ms = max(1, int(self.block * 1000))
        commands.append(("XREAD", "COUNT", self.read_count, "BLOCK", block_ms, "STREAMS", *self._keys, *ids))
        connection.send_packed_command(connection.pack_commands(commands), False)
        if len(commands) == 2:
            connection.read_response()
            for saved, cursor in unsaved.items():
                if self._unsaved.get(saved) == cursor:
                    del self._unsaved[saved]
        deadline = time.monotonic() + self.block + self.socket_timeout
        while not connection.can_read(POLL):
            if self.stop_requested:
                return  # the XREAD is abandoned with the connection
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer to XREAD BLOCK in {self.block + self.socket_timeout:g} s")
        reply = connection.read_response()
        if not reply:
            return
        inbox = self.inbox
        for key, entries in reply:
            channel = self._channel_of.get(key)
            if channel is None:
                continue
            for entry_id, fields in entries:
                stream_id = entry_id.decode("ascii")
                data = _field(fields)
                if data is None:
                    self.context.counters.malformed += 1
                    self.context.throttle(
                        "malformed",
                        f"dropped stream entry {stream_id} on channel {channel!r}: no {DATA_FIELD.decode()!r} field",
                        30,
                    )
                else:
                    inbox.payload(channel, data, stream_id)
                self.cursors[channel] = stream_id
                self._unsaved[channel] = stream_id
                if self.stop_requested:
                    return

    def save_cursor(self) -> None:
        """Save the cursor in Redis now, on a connection of its own (a named bridge, at stop)."""
        if self._cursor_key is None or not self._unsaved:
            return
        unsaved = dict(self._unsaved)
        try:
            connection = self.context.endpoint.connect()
            try:
                connection.send_command("HSET", self._cursor_key, *[x for pair in unsaved.items() for x in pair])
                connection.read_response()
            finally:
                connection.disconnect()
        except Exception as exc:
            self.context.log(
                f"could not save the cursor at stop ({describe(exc)}): the messages delivered since "
                "it was last saved will be delivered again at the next start",
                30,
            )
            return
        self._unsaved.clear()


_STREAM_ID = re.compile(rb"[0-9]+-[0-9]+")


def _field(fields: Any) -> bytes | None:
    """The ``data`` field of a stream entry's flat field list, or None."""
    if isinstance(fields, list):
        for at in range(0, len(fields) - 1, 2):
            if fields[at] == DATA_FIELD:
                value = fields[at + 1]
                return value if isinstance(value, bytes) else None
    return None


def _id_key(stream_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = stream_id.partition("-")
    try:
        return int(milliseconds), int(sequence or 0)
    except ValueError:
        return (0, 0)
