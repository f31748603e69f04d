"""fastbus.bridge in one process: buses on the core under test (and a stock wspbus bus) bridged
through a real redis-server; what is easiest to watch from inside: logs, listeners, restarts.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from _children import DEADLINE, wait_until
from _redis import free_port

from fastbus import states

FAST = {"retry_min": 0.01, "retry_max": 0.2}


class Logged:
    """The log lines a bus published: ``(level, message)``."""

    def __init__(self, bus: Any) -> None:
        self.lines: list[tuple[int, str]] = []
        bus.subscribe("log", lambda msg, level=20: self.lines.append((level, msg)))

    def having(self, *words: str) -> list[tuple[int, str]]:
        return [(level, line) for level, line in self.lines if all(word in line for word in words)]


@pytest.fixture
def buses(Bus: type) -> Any:
    """Make buses on the core under test; every one still running is exited after the test."""
    made: list[Any] = []

    def make() -> Any:
        bus = Bus()
        made.append(bus)
        return bus

    yield make
    for bus in made:
        if bus.state != states.EXITING:
            bus.exit()


def test_an_unreachable_server_at_start_is_retried_in_the_background(buses: Any, redis_servers: Any) -> None:
    from fastbus.bridge import RedisBridge

    port = free_port()
    bus = buses()
    logged = Logged(bus)
    bridge = RedisBridge(bus, f"redis://127.0.0.1:{port}/0", ["ch"], durable=True, **FAST)
    bridge.subscribe()
    bus.publish("ch", "queued before the start")
    bus.start()
    assert bus.state == states.STARTED
    stats = bridge.stats()
    assert stats["connected"] is False and stats["pending"] == 1 and "unreachable" in stats["last_error"]
    assert logged.having("unreachable", "retrying in the background", "wait in the outbox")
    assert all(level == 30 for level, _ in logged.having("unreachable"))

    server = redis_servers(port=port)
    wait_until(lambda: bridge.stats()["connected"], what="connected")
    assert bridge.flush(DEADLINE)
    [(_, fields)] = server.client().xrange("fastbus:stream:ch")
    assert json.loads(fields[b"data"])["messages"] == [[["queued before the start"]]]
    assert bridge.stats()["reconnects"] >= 1
    assert logged.having("connected to", "again")


# redis-py (the releases that still support Python 3.9) leaves the socket of a refused TLS
# handshake to the garbage collector, whose ResourceWarning would otherwise fail this test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_tls_comes_through_the_url_and_a_refused_certificate_fails_start(buses: Any, redis_servers: Any) -> None:
    from fastbus.bridge import BridgeError, RedisBridge

    server = redis_servers(tls=True)
    assert server.url.startswith("rediss://")
    a, b = buses(), buses()
    got = threading.Event()
    b.subscribe("ch", lambda word: got.set() if word == "over TLS" else None)
    for bus in (a, b):
        RedisBridge(bus, server.url, ["ch"], **FAST).subscribe()
        bus.start()
    a.publish("ch", "over TLS")
    assert got.wait(DEADLINE)

    # Without the test CA the server's certificate is refused: retrying cannot help, so
    # start says so (here, called directly; under bus.start() the bus would exit).
    untrusted = RedisBridge(buses(), server.url.replace(f"ssl_ca_certs={server.tls[0]}&", ""), ["ch"], **FAST)
    with pytest.raises(BridgeError, match=r"TLS handshake failed .*certificate verify failed"):
        untrusted.start()
    assert "certificate" in untrusted.stats()["last_error"]


BRIDGE_ACL = "resetchannels &fastbus:* ~fastbus:* +ping +publish +subscribe +xadd +xread +xrevrange +xinfo +hset +hmget"
SENDER_ACL = "resetchannels &fastbus:* ~fastbus:* +ping +publish +xadd"


@pytest.mark.parametrize("durable", [False, True], ids=["pubsub", "durable"])
def test_the_acl_of_the_docs_is_enough(buses: Any, redis_server: Any, durable: bool) -> None:
    from fastbus.bridge import RedisBridge, Sender

    raw = redis_server.client()
    for user, rules in (("bridge", BRIDGE_ACL), ("sender", SENDER_ACL)):
        raw.execute_command("ACL", "SETUSER", user, "on", ">pw", *rules.split())
    url = f"redis://bridge:pw@127.0.0.1:{redis_server.port}/0"
    a, b = buses(), buses()
    got: list[Any] = []
    b.subscribe("ch", got.append)
    bridges = {}
    for bus, name in ((a, "a"), (b, "b")):
        bridges[name] = RedisBridge(bus, url, ["ch"], durable=durable, name=name, **FAST)
        bridges[name].subscribe()
        bus.start()
    a.publish("ch", "from a bridge")
    # A's sender thread sends in its own time: wait until Redis has the message, so that the
    # two arrive in this order (the order across origins is not a guarantee).
    assert bridges["a"].flush(DEADLINE)
    with Sender(f"redis://sender:pw@127.0.0.1:{redis_server.port}/0", durable=durable) as sender:
        sender.send("ch", "from a sender")
    wait_until(lambda: len(got) == 2, what="both messages")
    a.exit()
    b.exit()
    assert got == ["from a bridge", "from a sender"]
    if durable:
        assert raw.hgetall("fastbus:cursor:b") != {}


def test_stop_keeps_what_it_could_not_send_and_the_next_start_sends_it(buses: Any, redis_server: Any) -> None:
    from fastbus.bridge import RedisBridge

    bus = buses()
    logged = Logged(bus)
    bridge = RedisBridge(bus, redis_server.url, ["ch"], durable=True, stop_timeout=0.2, **FAST)
    bridge.subscribe()
    bus.start()
    redis_server.kill()
    for i in range(3):
        bus.publish("ch", i)
    bus.stop()
    assert bridge.stats()["pending"] == 3
    assert logged.having("stopped with 3 message(s) not sent", "kept")
    redis_server.restart()
    bus.start()
    assert bridge.flush(DEADLINE)
    messages = [json.loads(f[b"data"])["messages"] for _, f in redis_server.client().xrange("fastbus:stream:ch")]
    assert [m for batch in messages for m in batch] == [[[0]], [[1]], [[2]]]
    redis_server.kill()
    bus.publish("ch", "never")
    bus.exit()
    assert logged.having("exiting with 1 message(s) never sent") == [
        (40, f"{bridge._context.label}: exiting with 1 message(s) never sent")
    ]


def test_listeners_that_fail_or_publish_while_receiving(buses: Any, redis_server: Any) -> None:
    from fastbus.bridge import RedisBridge, current_message

    a, b = buses(), buses()
    logged_b = Logged(b)
    bridge_a = RedisBridge(a, redis_server.url, ["ch", "reply"], **FAST)
    bridge_b = RedisBridge(b, redis_server.url, ["ch", "reply"], **FAST)
    at_a: dict[str, list[Any]] = {"ch": [], "reply": []}
    at_b: list[Any] = []
    for channel in at_a:
        a.subscribe(channel, lambda *args, channel=channel: at_a[channel].append((args, current_message())))

    @b.subscribe("ch")
    def act(word: str) -> None:
        at_b.append((word, current_message()))
        if word == "boom":
            raise ValueError("a listener failed")
        if word == "exit":
            raise SystemExit(3)
        if word == "ask":
            # A new message (other arguments, another channel): it goes out, while the
            # message being delivered is not sent back.
            b.publish("reply", "answer")
        if word == "last":
            b.publish("reply", "marker")

    bridge_a.subscribe()
    bridge_b.subscribe()
    a.start()
    b.start()
    for word in ("boom", "exit", "ask", "last"):
        a.publish("ch", word)
    # From one origin, pub/sub keeps the order across channels: after the marker nothing of
    # B's, a resent "ch" included, is still on its way.
    wait_until(lambda: [args for args, _ in at_a["reply"]] == [("answer",), ("marker",)], what="B's replies")
    assert [word for word, _ in at_b] == ["boom", "exit", "ask", "last"]
    assert [args for args, info in at_a["ch"]] == [("boom",), ("exit",), ("ask",), ("last",)]
    assert all(info is None for _, info in at_a["ch"]), "A got one of its own messages back"
    assert [info.origin for _, info in at_b] == [bridge_a.origin] * 4
    assert [info.seq for _, info in at_b] == [1, 2, 3, 4]
    assert all(info.origin == bridge_b.origin and info.channel == "reply" for _, info in at_a["reply"])
    assert logged_b.having("Error in 'ch' listener", "a listener failed")
    assert logged_b.having("raised SystemExit on the receiving thread")
    assert bridge_b.stats()["received"] == 4 and bridge_a.stats()["received"] == 2


def test_a_message_for_a_channel_with_an_async_listener_is_refused_and_logged(buses: Any, redis_server: Any) -> None:
    # The receiving thread publishes with plain publish, which refuses async def listeners:
    # the refusal is logged, nothing runs, and later messages still arrive.
    from fastbus.bridge import RedisBridge

    a, b = buses(), buses()
    logged_b = Logged(b)
    bridge_a = RedisBridge(a, redis_server.url, ["ch", "after"], **FAST)
    bridge_b = RedisBridge(b, redis_server.url, ["ch", "after"], **FAST)
    ran: list[Any] = []

    async def handler(word: str) -> None:
        ran.append(word)

    b.subscribe("ch", handler)
    b.subscribe("ch", lambda word: ran.append(("sync", word)), 90)
    b.subscribe("after", lambda word: ran.append(("after", word)))
    bridge_a.subscribe()
    bridge_b.subscribe()
    a.start()
    b.start()
    a.publish("ch", "one")
    a.publish("after", "two")
    wait_until(lambda: ran == [("after", "two")], what="the message after the refused one")
    assert logged_b.having("a message of 'ch' was not delivered", "apublish")
    assert bridge_b.stats()["received"] == 2


def test_graceful_fans_out(buses: Any, redis_server: Any) -> None:
    from fastbus.bridge import RedisBridge

    a, b = buses(), buses()
    graceful = threading.Event()
    b.subscribe("graceful", graceful.set)
    for bus in (a, b):
        RedisBridge(bus, redis_server.url, ["graceful"], **FAST).subscribe()
        bus.start()
    a.graceful()
    assert graceful.wait(DEADLINE)


def test_a_stock_wspbus_bus_and_a_fastbus_bus_bridge_both_ways(buses: Any, redis_server: Any) -> None:
    wspbus = pytest.importorskip("cherrypy.process.wspbus")
    from fastbus.bridge import RedisBridge

    engine, bus = wspbus.Bus(), buses()
    at_engine: list[Any] = []
    at_bus: list[Any] = []
    engine.subscribe("ch", lambda *args, **kwargs: at_engine.append((args, kwargs)))
    bus.subscribe("ch", lambda *args, **kwargs: at_bus.append((args, kwargs)))
    RedisBridge(engine, redis_server.url, ["ch"], **FAST).subscribe()
    RedisBridge(bus, redis_server.url, ["ch"], **FAST).subscribe()
    engine.start()
    try:
        bus.start()
        engine.publish("ch", "from wspbus", n=1)
        bus.publish("ch", "from fastbus", n=2)
        wait_until(lambda: len(at_engine) == 2 and len(at_bus) == 2, what="both messages on both buses")
    finally:
        engine.exit()
    assert at_engine == [(("from wspbus",), {"n": 1}), (("from fastbus",), {"n": 2})]
    assert at_bus == [(("from fastbus",), {"n": 2}), (("from wspbus",), {"n": 1})]


class ReversedJSON:
    """A codec of its own, duck-typed, without join: JSON written backwards."""

    name = "reversed"

    def encode(self, value: Any) -> bytes:
        return json.dumps(value).encode()[::-1]

    def decode(self, data: bytes) -> Any:
        return json.loads(bytes(data)[::-1])


def test_a_plugged_codec_carries_the_messages(buses: Any, redis_server: Any) -> None:
    from fastbus.bridge import RedisBridge

    a, b = buses(), buses()
    got: list[Any] = []
    b.subscribe("ch", lambda *args, **kwargs: got.append((args, kwargs)))
    for bus in (a, b):
        RedisBridge(bus, redis_server.url, ["ch"], durable=True, codec=ReversedJSON(), **FAST).subscribe()
        bus.start()
    for i in range(3):
        a.publish("ch", i, kw=[i])
    wait_until(lambda: len(got) == 3, what="three messages")
    assert got == [((i,), {"kw": [i]}) for i in range(3)]
    data = [fields[b"data"] for _, fields in redis_server.client().xrange("fastbus:stream:ch")]
    assert all(json.loads(payload[::-1])["fastbus"] == 1 for payload in data)


def test_unsubscribe_detaches_the_bridge(buses: Any) -> None:
    from fastbus.bridge import RedisBridge

    bus = buses()
    bridge = RedisBridge(bus, "redis://127.0.0.1:1/0", ["ch"])
    before = {channel: list(listeners) for channel, listeners in bus.listeners.items()}
    bridge.subscribe()
    bus.publish("ch", 1)
    assert bridge.stats()["pending"] == 1
    bridge.unsubscribe()
    bus.publish("ch", 2)
    assert bridge.stats()["pending"] == 1
    assert {channel: list(listeners) for channel, listeners in bus.listeners.items() if listeners} == {
        channel: listeners for channel, listeners in before.items() if listeners
    }
