"""The outbox and the sending thread: publishing never waits for the network.

A publish of a bridged channel only encodes the message and appends it to the outbox (a
bounded FIFO). The sending thread takes whatever has accumulated, joins consecutive messages
of a channel into one envelope, and sends all of it in one pipelined write, so the number of
Redis commands and round trips grows with the number of sends, not of messages: under load,
one PUBLISH or XADD carries many messages. A message leaves the outbox only when Redis has
acknowledged it; after a lost connection the unacknowledged ones are sent again, in order,
once the connection is back.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from redis import exceptions as redis_errors

from ._codec import join
from ._connection import TRANSIENT
from ._link import Context, Link
from ._wire import DATA_FIELD, head, pubsub_channel, stream_key

__all__ = ("Outbox", "SendLink")

Item = tuple[str, int, bytes]
"""One queued message: its channel, its sequence number in that channel, its encoded form."""

TAKE_ITEMS = 5_000
"""At most this many messages go in one pipelined write, so that one write stays a few MiB."""


class Outbox:
    """Messages waiting to be sent, in publish order, at most *max_pending* of them.

    ``queued`` and ``sent`` count every message ever put and acknowledged; ``queued - sent``
    is what is pending (queued, or taken by the sending thread and not yet acknowledged).
    """

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.queued = 0
        self.sent = 0
        self.wake = threading.Event()
        self._lock = threading.Lock()
        self._items: deque[Item] = deque()
        self._seqs: dict[str, int] = {}
        self._sent_changed = threading.Condition(threading.Lock())

    def put(self, channel: str, part: bytes) -> bool:
        """Queue one encoded message of *channel*; False if the outbox is full."""
        with self._lock:
            if self.queued - self.sent >= self.max_pending:
                return False
            # Numbered here, under the lock, so that numbers follow the order of the queue.
            seq = self._seqs.get(channel, 0) + 1
            self._seqs[channel] = seq
            self._items.append((channel, seq, part))
            self.queued += 1
        if not self.wake.is_set():
            self.wake.set()
        return True

    def take(self, limit: int) -> list[Item]:
        """Remove and return up to *limit* messages from the front."""
        with self._lock:
            items = self._items
            return [items.popleft() for _ in range(min(limit, len(items)))]

    def give_back(self, items: list[Item]) -> None:
        """Put unsent *items* back at the front, where they were taken from."""
        with self._lock:
            self._items.extendleft(reversed(items))

    def confirm(self, count: int) -> None:
        """Record that the first *count* messages taken were acknowledged by Redis."""
        with self._sent_changed:
            self.sent += count
            self._sent_changed.notify_all()

    @property
    def pending(self) -> int:
        return self.queued - self.sent

    def wait_sent(self, timeout: float | None) -> bool:
        """Wait until every message queued before the call is acknowledged; False at *timeout*."""
        target = self.queued
        end = None if timeout is None else time.monotonic() + timeout
        with self._sent_changed:
            while self.sent < target:
                if end is None:
                    self._sent_changed.wait()
                    continue
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._sent_changed.wait(remaining)
        return True


class SendLink(Link):
    """The sending thread's connection: drains the outbox into pipelined PUBLISH or XADD."""

    role = "sending"

    def __init__(self, context: Context, outbox: Outbox, *, durable: bool, maxlen: int | None, limit: int) -> None:
        super().__init__(context)
        self.outbox = outbox
        self.limit = limit
        prefix = context.prefix
        self._overheads: dict[str, int] = {}
        # The command of each channel, but for the payload, made once.
        self._commands: dict[str, list[Any]] = {}
        for channel in context.channels:
            if not durable:
                self._commands[channel] = ["PUBLISH", pubsub_channel(prefix, channel)]
            elif maxlen is None:
                self._commands[channel] = ["XADD", stream_key(prefix, channel), "*", DATA_FIELD]
            else:
                self._commands[channel] = ["XADD", stream_key(prefix, channel), "MAXLEN", "~", maxlen, "*", DATA_FIELD]

    def open(self) -> Any:
        connection = self.context.endpoint.connect()
        try:
            # A server that wants a password and got none says so only at the first command.
            connection.send_command("PING")
            connection.read_response()
        except BaseException:
            connection.disconnect()
            raise
        return connection

    def request_stop(self, deadline: float | None = None) -> None:
        super().request_stop(deadline)
        self.outbox.wake.set()

    def run(self) -> None:
        """Send until stopped; then, until the stop's deadline, send what is left."""
        batch: list[Item] = []
        try:
            while True:
                if not batch:
                    self.outbox.wake.clear()
                    batch = self.outbox.take(TAKE_ITEMS)
                    if not batch:
                        if self.stop_requested:
                            return
                        self.outbox.wake.wait()
                        continue
                if self.giving_up():
                    return
                if self.connection is None and not self.reconnect():
                    return
                try:
                    done, failure = self._transmit(batch)
                except Exception as exc:  # a bug or an unexpected reply: never kill the thread
                    done, failure = 0, exc
                if done:
                    self.outbox.confirm(done)
                    batch = batch[done:]
                if failure is None:
                    self.backoff.reset()  # a refused command's waits start short again
                    continue
                if isinstance(failure, TRANSIENT) or not isinstance(failure, redis_errors.ResponseError):
                    self.lost(failure)
                else:
                    # The server refused a command (out of memory, a key of another type...): the
                    # connection is fine, but the message stays first in line until it is taken.
                    self._record(failure)
                    self.context.throttle(
                        "sending-refused",
                        f"sending: Redis refused a command ({type(failure).__name__}: {failure}); "
                        f"{self.outbox.pending} messages wait; retrying",
                        40,
                    )
                    self.pause(self.backoff.next())
        finally:
            if batch:
                self.outbox.give_back(batch)
            self.close()

    def _transmit(self, batch: list[Item]) -> tuple[int, BaseException | None]:
        """Send *batch* in one write; return how many messages, from the front, Redis took.

        Also returns the first error: a refused command (its messages and every later one
        count as not sent, to keep the order) or a broken connection.
        """
        connection = self.connection
        commands = self._pack(batch)
        try:
            connection.send_packed_command(connection.pack_commands([command for command, _ in commands]), False)
        except TRANSIENT as exc:
            return 0, exc
        done = 0
        failure: BaseException | None = None
        for _, count in commands:
            try:
                connection.read_response()
            except redis_errors.ResponseError as exc:
                failure = failure or exc
                continue  # the other replies are read all the same, to stay in step
            except TRANSIENT as exc:
                return done, exc
            if failure is None:
                done += count
        return done, failure

    def _overhead(self, channel: str) -> int:
        """The bytes of *channel*'s envelope without its messages (with the longest seq)."""
        size = self._overheads.get(channel)
        if size is None:
            size = len(join(self.context.codec, head(self.context.origin, channel, 2**63), []))
            self._overheads[channel] = size
        return size

    def _pack(self, batch: list[Item]) -> list[tuple[list[Any], int]]:
        """The commands for *batch*: one per run of consecutive messages of a channel.

        A run becomes one envelope of at most *limit* bytes (the receivers' max_message_bytes),
        its messages numbered from the first one's ``seq``.
        """
        codec, origin, limit = self.context.codec, self.context.origin, self.limit
        commands = []
        i, end = 0, len(batch)
        while i < end:
            channel, seq, part = batch[i]
            size = self._overhead(channel) + len(part)
            j = i + 1
            while j < end:
                next_channel, next_seq, next_part = batch[j]
                if next_channel != channel or next_seq != seq + (j - i) or size + len(next_part) + 1 > limit:
                    break
                size += len(next_part) + 1
                j += 1
            while True:
                payload = join(codec, head(origin, channel, seq), [item[2] for item in batch[i:j]])
                if len(payload) <= limit or j - i == 1:
                    break
                j = i + (j - i) // 2  # a codec whose envelope grows with its messages: halve the run
            commands.append(([*self._commands[channel], payload], j - i))
            i = j
        return commands
