"""RedisBridge: the plugin that carries bus channels across processes through Redis."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any, Callable

from .._arguments import check_real, check_seconds
from ._codec import check_codec, codec_name, encode_message, join, largest_argument
from ._connection import Endpoint
from ._link import Context
from ._options import check_channels, check_count, check_name, check_timeout
from ._outbox import Outbox, SendLink
from ._receiving import Inbox, PubSubLink, StreamLink, is_delivery
from ._wire import head

__all__ = ("OutboxFull", "RedisBridge", "make_origin")


class OutboxFull(Exception):
    """A publish found the bridge's outbox full (``max_pending`` messages not yet sent).

    Raised by the bridge's listener, so the publish raises it inside ChannelFailures after
    every other listener ran. The message is not sent; nothing already queued is dropped.
    """


def make_origin() -> str:
    """A new origin id: host and process, for people reading logs, and random bits, for uniqueness."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"


class RedisBridge:
    """Carry *channels* of *bus* to every other bus bridged through the same Redis server.

    A plugin in the SimplePlugin style: :meth:`subscribe` attaches it to the bus, the bus's
    ``start`` connects it and its ``stop`` disconnects it. It works on a :class:`fastbus.Bus`
    and on ``cherrypy.engine``.

    Publishing a bridged channel runs the bus's own listeners as usual and sends the same
    positional and keyword arguments to every other bridged bus (*prefix* and Redis server
    alike), whose listeners receive them through ``bus.publish`` on the bridge's receiving
    thread. A bus never gets its own messages back unless *echo* is true, and a received
    message is never sent out again, by any bridge.

    With ``durable=False`` (the default) messages go through Redis pub/sub: lowest latency,
    at most once; what is published while a bridge is disconnected is missed by it, and
    counted (``stats()["missed"]``). With ``durable=True`` they go through Redis streams
    (kept up to about *maxlen* entries per channel), each bridge reading with its own cursor:
    after a reconnect, or a restart with the same *name*, delivery resumes after the last
    message this bridge delivered. See docs/bridge.md for exactly what can be lost or
    repeated, and when.

    Arguments must suit *codec* (JSON by default); an argument it cannot encode, or a message
    over *max_message_bytes*, is refused at the publish (TypeError or ValueError naming the
    channel and the argument, inside ChannelFailures). Sending never waits for the network:
    messages wait in an outbox of at most *max_pending* (a publish that finds it full raises
    :class:`OutboxFull`) for a thread that sends them in pipelined batches.

    Other options: *priority* of the listener that sends (10: before the default 50, so the
    other buses get the arguments as they were published, before a local listener could change
    a mutable one); *stop_timeout*, how long ``stop`` keeps sending what is queued;
    *retry_min*/*retry_max*, the first and the longest wait between reconnection attempts;
    *socket_timeout* and *connect_timeout* (seconds; the URL's own ``socket_timeout`` and
    ``socket_connect_timeout`` win); *health_check_interval*, after how many quiet seconds a
    pub/sub connection is checked with a PING; *log_interval*, the least time between two log
    lines of one kind (bad payloads, failed attempts).

    Raises TypeError or ValueError for a bad argument, a malformed URL among them.
    """

    start_priority = 70
    """After Daemonizer's fork (65), so the bridge's threads run in the daemon; before the HTTP
    server (75), so the bridge is subscribed before requests come in."""

    stop_priority = 90
    """After the other stop listeners, so that what they publish is still sent."""

    def __init__(
        self,
        bus: Any,
        url: str = "redis://127.0.0.1:6379/0",
        channels: Iterable[str] = (),
        *,
        durable: bool = False,
        name: str | None = None,
        prefix: str = "fastbus",
        echo: bool = False,
        codec: Any = None,
        max_message_bytes: int = 1 << 20,
        max_pending: int = 10_000,
        maxlen: int | None = 100_000,
        priority: float = 10,
        stop_timeout: float = 5.0,
        retry_min: float = 0.05,
        retry_max: float = 5.0,
        socket_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        health_check_interval: float = 30.0,
        log_interval: float = 10.0,
    ) -> None:
        self.channels = check_channels(channels)
        check_name(prefix, "prefix")
        check_name(name, "name", allow_none=True)
        check_count(max_message_bytes, "max_message_bytes")
        check_count(max_pending, "max_pending")
        check_count(maxlen, "maxlen", allow_none=True)
        check_real(priority, "priority")
        for value, argument in ((stop_timeout, "stop_timeout"), (log_interval, "log_interval")):
            check_seconds(value, argument)
        for value, argument in (
            (retry_min, "retry_min"),
            (retry_max, "retry_max"),
            (socket_timeout, "socket_timeout"),
            (connect_timeout, "connect_timeout"),
            (health_check_interval, "health_check_interval"),
        ):
            check_timeout(value, argument)
        if retry_max < retry_min:
            raise ValueError(f"retry_max ({retry_max!r}) must not be less than retry_min ({retry_min!r})")
        self.bus = bus
        self.durable = bool(durable)
        self.name = name
        self.prefix = prefix
        self.echo = bool(echo)
        self.codec = check_codec(codec)
        self.max_message_bytes = max_message_bytes
        self.max_pending = max_pending
        self.maxlen = maxlen
        self.priority = priority
        self.stop_timeout = stop_timeout
        self.socket_timeout = socket_timeout
        self.health_check_interval = health_check_interval
        self.origin = make_origin()
        """This bridge's id in the envelopes it sends (see :class:`MessageInfo`)."""
        endpoint = Endpoint(url, socket_timeout=socket_timeout, connect_timeout=connect_timeout)
        self.url = endpoint.safe_url
        """The server's URL, with any password replaced by ``***``."""
        label = f"RedisBridge({name or self.origin})"
        self._context = Context(
            bus=bus,
            endpoint=endpoint,
            codec=self.codec,
            prefix=prefix,
            channels=self.channels,
            origin=self.origin,
            label=label,
            retry_min=retry_min,
            retry_max=retry_max,
            log_interval=log_interval,
        )
        self._outbox = Outbox(max_pending)
        self._inbox = Inbox(self._context, echo=self.echo, limit=max_message_bytes)
        self._cursors: dict[str, str] = {}
        self._overheads = {
            channel: len(join(self.codec, head(self.origin, channel, 2**63), [])) for channel in self.channels
        }
        self._relays = {channel: self._relay_for(channel) for channel in self.channels}
        self._lock = threading.RLock()
        self._running: tuple[Any, Any, threading.Thread, threading.Thread] | None = None
        self._stragglers: list[threading.Thread] = []

    def __repr__(self) -> str:
        mode = "durable" if self.durable else "pub/sub"
        return f"<RedisBridge {self.name or self.origin} {mode} {self.url} {list(self.channels)}>"

    # -- the plugin ----------------------------------------------------------------------------

    def subscribe(self) -> None:
        """Attach to the bus: its start and stop, and a sending listener on each bridged channel."""
        with self._lock:
            bus = self.bus
            bus.subscribe("start", self.start, priority=self.start_priority)
            bus.subscribe("stop", self.stop, priority=self.stop_priority)
            bus.subscribe("exit", self.exit)
            for channel, relay in self._relays.items():
                bus.subscribe(channel, relay, priority=self.priority)

    def unsubscribe(self) -> None:
        """Detach from the bus (a running bridge keeps running: stop it first)."""
        with self._lock:
            bus = self.bus
            bus.unsubscribe("start", self.start)
            bus.unsubscribe("stop", self.stop)
            bus.unsubscribe("exit", self.exit)
            for channel, relay in self._relays.items():
                bus.unsubscribe(channel, relay)

    def start(self) -> None:
        """Connect, subscribe and start the sending and receiving threads.

        When this returns with the server reachable, the bridge is subscribed (pub/sub) or has
        its cursors (durable): every message that reaches Redis from then on is delivered. An
        unreachable server is logged and retried in the background; a server that refuses the
        credentials or the set-up raises BridgeError, which fails ``bus.start()``.
        """
        with self._lock:
            if self._running is not None:
                return
            for thread in self._stragglers:  # two threads sending from one outbox would mix its order
                thread.join()
            self._stragglers.clear()
            context = self._context
            sender = SendLink(
                context, self._outbox, durable=self.durable, maxlen=self.maxlen, limit=self.max_message_bytes
            )
            receiver: PubSubLink | StreamLink
            if self.durable:
                receiver = StreamLink(
                    context,
                    self._inbox,
                    name=self.name,
                    read_count=100,
                    block=1.0,
                    socket_timeout=self.socket_timeout,
                    cursors=self._cursors,
                )
            else:
                receiver = PubSubLink(
                    context,
                    self._inbox,
                    health_check_interval=self.health_check_interval,
                    socket_timeout=self.socket_timeout,
                )
            try:
                receiver.connect_first()
                sender.connect_first()
            except BaseException:
                receiver.close()
                sender.close()
                raise
            where = self.url
            if receiver.connection is not None and sender.connection is not None:
                mode = "durable (streams)" if self.durable else "pub/sub"
                context.log(f"connected to {where}, {mode}, channels {list(self.channels)}", 20)
            tag = self.name or self.origin
            threads = (
                threading.Thread(target=receiver.run, name=f"fastbus bridge {tag} receiving", daemon=True),
                threading.Thread(target=sender.run, name=f"fastbus bridge {tag} sending", daemon=True),
            )
            self._running = (receiver, sender, *threads)
            for thread in threads:
                thread.start()

    def stop(self) -> None:
        """Stop receiving, send what is queued (for up to *stop_timeout* seconds), disconnect.

        Messages still queued after that stay in the outbox, logged: they are sent if the
        bridge starts again, and lost (logged again) if the process exits.
        """
        with self._lock:
            running, self._running = self._running, None
        if running is None:
            return
        receiver, sender, receiving, sending = running
        receiver.request_stop()
        if receiving is not threading.current_thread():  # a listener of a delivery may stop the bus
            self._join(receiving, self.stop_timeout + self.socket_timeout)
        sender.request_stop(time.monotonic() + self.stop_timeout)
        self._join(sending, self.stop_timeout + self.socket_timeout)
        pending = self._outbox.pending
        if pending:
            self._context.log(
                f"stopped with {pending} message(s) not sent ({self._context.counters.last_error}); "
                "they are kept, and sent if the bridge starts again",
                30,
            )
        else:
            self._context.log("stopped", 20)

    def _join(self, thread: threading.Thread, timeout: float) -> None:
        # The threads end within POLL of a stop request, or once the deadline of the sending
        # one has passed, unless a listener or a dead server holds them: then do not hang.
        thread.join(timeout)
        if thread.is_alive():
            self._context.log(f"the thread {thread.name!r} did not end within {timeout:g} s; not waiting", 30)
            self._stragglers.append(thread)

    def exit(self) -> None:
        """Stop (if not stopped), and log the messages that will never be sent."""
        self.stop()
        pending = self._outbox.pending
        if pending:
            self._context.log(f"exiting with {pending} message(s) never sent", 40)

    # -- sending -------------------------------------------------------------------------------

    def _relay_for(self, channel: str) -> Callable[..., None]:
        bus, outbox, codec = self.bus, self._outbox, self.codec
        room = self.max_message_bytes - self._overheads[channel]  # for the message itself

        def relay(*args: Any, **kwargs: Any) -> None:
            if is_delivery(bus, channel, args, kwargs):
                return
            part = encode_message(codec, channel, args, kwargs)
            if len(part) > room:
                self._refuse_size(channel, args, kwargs, len(part) + self._overheads[channel])
            if not outbox.put(channel, part):
                raise OutboxFull(
                    f"cannot send channel {channel!r} through the bridge: its outbox holds max_pending="
                    f"{self.max_pending} messages not yet sent to {self.url} ({self._why_pending()}); "
                    "the message is not sent"
                )

        relay.__qualname__ = f"RedisBridge.relay[{channel!r}]"
        return relay

    def _why_pending(self) -> str:
        counters = self._context.counters
        if self._running is None:
            return "the bridge is not started"
        if not counters.connected["sending"]:
            return f"not connected: {counters.errors['sending'] or 'connecting'}"
        return "connected, but messages are published faster than Redis takes them"

    def _refuse_size(self, channel: str, args: tuple[Any, ...], kwargs: dict[str, Any], size: int) -> None:
        where, part = largest_argument(self.codec, args, kwargs)
        raise ValueError(
            f"cannot send channel {channel!r} through the bridge: the message is {size} bytes "
            f"encoded ({codec_name(self.codec)}), over max_message_bytes={self.max_message_bytes}; "
            f"its largest part is {where} ({part} bytes)"
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every message queued before the call is sent; False if *timeout* ran out.

        Sent means acknowledged by Redis (PUBLISH or XADD answered), not received by the other
        buses. Without *timeout* it waits as long as it takes, which, with the server down or
        the bridge stopped, is until that changes.
        """
        if timeout is not None:
            check_seconds(timeout, "timeout")
        return self._outbox.wait_sent(timeout)

    # -- watching ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts since the bridge was made, and its state.

        ``sent``: messages Redis acknowledged; ``received``: messages delivered to the bus;
        ``pending``: queued or in flight, not yet acknowledged; ``missed``: messages other
        bridges sent that this one never got (gaps in their numbering: pub/sub while
        disconnected, or a stream trimmed past its cursor); ``duplicates``: messages received
        again and not delivered twice; ``malformed``: payloads dropped as not valid envelopes;
        ``reconnects``: connections made again after a failure; ``last_error``: the last
        connection or server error, or None; ``connected``: both connections are up.
        """
        counters = self._context.counters
        return {
            "sent": self._outbox.sent,
            "received": counters.received,
            "pending": self._outbox.pending,
            "missed": counters.missed,
            "duplicates": counters.duplicates,
            "malformed": counters.malformed,
            "reconnects": counters.reconnects,
            "last_error": counters.last_error,
            "connected": all(counters.connected.values()),
        }

