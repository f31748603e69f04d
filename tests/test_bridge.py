"""fastbus.bridge between real processes, through a real redis-server, on both cores.

Each peer is a child Python with its own bus and bridges (tests/_bridge_peers.py), driven
through a pipe; the server is Debian's redis-server on a free loopback port (tests/_redis.py).
The server-killing tests are in test_bridge_faults.py; the checks that need no server in
test_bridge_wire.py.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _bridge_peers import DEADLINE, Peers
from _children import wait_until
from _redis import free_port

FAST_RETRY = {"retry_min": 0.01, "retry_max": 0.2}
MODES = [pytest.param(False, id="pubsub"), pytest.param(True, id="durable")]


@pytest.fixture
def peers(tmp_path: Path, python: str, core_name: str, core_env: dict[str, str]) -> Any:
    started = Peers(tmp_path, python, core_name, core_env)
    yield started
    started.close_all()


def bridge(url: str, channels: list[str] = ["ch"], **options: Any) -> dict[str, Any]:  # noqa: B006
    return {"url": url, "channels": channels, "options": dict(FAST_RETRY, **options)}


def records(peer: Any, channel: str = "ch") -> list[Any]:
    return peer.ask("received", channel=channel)  # type: ignore[no-any-return]


def first_args(peer: Any, channel: str = "ch") -> list[Any]:
    return [args[0] if len(args) == 1 else args for args, _, _ in records(peer, channel)]


# -- round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize("durable", MODES)
def test_positional_and_keyword_arguments_round_trip(redis_server: Any, peers: Any, durable: bool) -> None:
    sender = peers([bridge(redis_server.url, durable=durable)], record=["ch"], name="sender")
    receiver = peers([bridge(redis_server.url, durable=durable)], record=["ch"], name="receiver")
    args = [1, "two", [3, {"four": 4.5}], None, True, "é ✓ 日本"]
    kwargs = {"key": {"nested": [1, [2, 3]], "empty": {}}, "n": -7, "f": 0.1}
    assert sender.ask("publish", channel="ch", args=args, kwargs=kwargs) == {"ok": True}
    assert sender.ask("publish", channel="ch", args=[], kwargs={"only": "kwargs"}) == {"ok": True}
    assert sender.ask("publish", channel="ch") == {"ok": True}
    wait_until(lambda: receiver.ask("count", channel="ch") >= 3, what="three messages")

    origin = sender.ready["origins"][0]
    got = records(receiver)
    assert [(a, k) for a, k, _ in got] == [(args, kwargs), ([], {"only": "kwargs"}), ([], {})]
    for seq, (_, _, info) in enumerate(got, 1):
        channel, info_origin, info_seq, stream_id = info
        assert (channel, info_origin, info_seq) == ("ch", origin, seq)
        assert (stream_id is not None) is durable
    # The sender's own listener ran once per publish, from the publish itself (no echo).
    assert [(a, k, info) for a, k, info in records(sender)] == [(args, kwargs, None), ([], {"only": "kwargs"}, None),
                                                                ([], {}, None)]
    assert sender.ask("flush", timeout=DEADLINE) == [True]  # acknowledged may come after received
    assert sender.stats()["sent"] == 3 and receiver.stats()["received"] == 3


def test_channels_stay_apart(redis_server: Any, peers: Any) -> None:
    sender = peers([bridge(redis_server.url, ["a", "b"])], name="sender")
    receiver = peers([bridge(redis_server.url, ["a", "b"])], record=["a", "b"], name="receiver")
    only_a = peers([bridge(redis_server.url, ["a"])], record=["a", "b"], name="only_a")
    sender.ask("publish", channel="b", args=[[1, 2]])
    sender.ask("publish", channel="a", args=[[3, 4]])
    wait_until(lambda: receiver.ask("count", channel="a") and receiver.ask("count", channel="b"), what="a and b")
    wait_until(lambda: only_a.ask("count", channel="a"), what="a on the peer bridging a alone")
    assert first_args(receiver, "a") == [[3, 4]] and first_args(receiver, "b") == [[1, 2]]
    assert first_args(only_a, "b") == []


# -- no echo, no loops ---------------------------------------------------------------------------


def wait_for_markers(everyone: list[Any], channel: str = "ch") -> None:
    """Publish a marker from each peer and wait until every peer has every other's.

    Called once every earlier message has been delivered everywhere: anything a peer sent
    while delivering them (a relay, if the bridge looped) left before its marker, in order,
    so it has arrived too by the time its marker has.
    """
    names = {peer.name for peer in everyone}
    for peer in everyone:
        assert peer.ask("publish", channel=channel, args=["marker", peer.name]) == {"ok": True}
    for peer in everyone:
        wait_until(
            lambda peer=peer: {a[1] for a, _, _ in records(peer, channel) if a[0] == "marker"} == names,
            what=f"every marker at {peer.name}",
        )


def test_no_echo_and_no_loop_between_three_processes(redis_server: Any, peers: Any) -> None:
    one = peers([bridge(redis_server.url)], record=["ch"], name="one")
    two = peers([bridge(redis_server.url, echo=True)], record=["ch"], name="two")
    three = peers([bridge(redis_server.url)], record=["ch"], name="three")
    everyone = [one, two, three]
    for peer in everyone:
        assert peer.ask("publish", channel="ch", args=[f"from {peer.name}"]) == {"ok": True}
    for peer in everyone:
        wait_until(lambda peer=peer: len(records(peer)) >= (4 if peer is two else 3), what=f"all at {peer.name}")
    wait_for_markers(everyone)

    for peer in everyone:
        counts = Counter(a[0] if a[0] != "marker" else f"marker {a[1]}" for a, _, _ in records(peer))
        expected = Counter({f"from {p.name}": 1 for p in everyone} | {f"marker {p.name}": 1 for p in everyone})
        if peer is two:  # echo=True: its own messages come back once more
            expected.update(["from two", "marker two"])
        assert counts == expected, peer.name
    stats = {peer.name: peer.stats() for peer in everyone}
    assert stats["one"]["received"] == 4 and stats["three"]["received"] == 4 and stats["two"]["received"] == 6
    assert all(s["duplicates"] == 0 and s["missed"] == 0 for s in stats.values())


def test_no_loop_in_a_ring_of_bridges(redis_server: Any, peers: Any) -> None:
    # Three processes, three prefixes, each process on two of them: one—x—two—y—three—z—one.
    # A message received through one prefix is never sent on through the other.
    def on(*prefixes: str) -> list[dict[str, Any]]:
        return [bridge(redis_server.url, prefix=prefix) for prefix in prefixes]

    one = peers(on("x", "z"), record=["ch"], name="one")
    two = peers(on("x", "y"), record=["ch"], name="two")
    three = peers(on("y", "z"), record=["ch"], name="three")
    everyone = [one, two, three]
    assert one.ask("publish", channel="ch", args=["ring"]) == {"ok": True}
    for peer in (two, three):
        wait_until(lambda peer=peer: "ring" in first_args(peer), what=f"ring at {peer.name}")
    wait_for_markers(everyone)
    for peer in everyone:
        assert Counter(a[0] for a, _, _ in records(peer)) == Counter({"ring": 1, "marker": 3}), peer.name


# -- passwords -------------------------------------------------------------------------------------


def test_a_wrong_or_missing_password_fails_start_and_the_right_one_works(redis_servers: Any, peers: Any) -> None:
    from fastbus.bridge import BridgeError, Sender

    server = redis_servers(password="s3cret")
    for password in ("wrong", None):
        refused = peers([bridge(server.url_with(password))], name=f"password-{password}")
        assert refused.ready is None, "the bus started with a bad password"
        assert refused.wait_exit() == 70  # wspbus's exit code for a failed start
        text = "\n".join(message for _, message in refused.logs())
        assert "BridgeError" in text and "refused the credentials" in text and "s3cret" not in text
        with pytest.raises(BridgeError, match="refused the credentials"), Sender(server.url_with(password)) as sender:
            sender.send("ch", 1)

    receiver = peers([bridge(server.url)], record=["ch"], name="right")
    with Sender(server.url) as sender:
        sender.send("ch", "with the password")
    wait_until(lambda: first_args(receiver) == ["with the password"], what="the message")


# -- bad input -------------------------------------------------------------------------------------


FOREIGN = [
    b"not json",
    b"\xff\xfe\x00",
    b"[1, 2]",
    b'{"hello": 1}',
    b'{"fastbus": 2, "origin": "o", "channel": "ch", "seq": 1, "messages": [[[]]]}',
    b'{"fastbus": true, "origin": "o", "channel": "ch", "seq": 1, "messages": [[[]]]}',
    b'{"fastbus": 1, "origin": "", "channel": "ch", "seq": 1, "messages": [[[]]]}',
    b'{"fastbus": 1, "origin": "o", "channel": "other", "seq": 1, "messages": [[[]]]}',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": 0, "messages": [[[]]]}',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": "1", "messages": [[[]]]}',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": 1, "messages": []}',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": 1, "messages": [{"args": []}]}',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": 1, "messages": [[{}, {}]]}',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": 1, "messages": [[[], []]]}',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": 1, "messages": [[[NaN]]]}',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": 1, "messages": [[["x"]]]} trailing',
    b'{"fastbus": 1, "origin": "o", "channel": "ch", "seq": 1, "messages": [[["' + b"x" * 600 + b'"]]]}',
]


def envelope(seq: int, *args: Any, **kwargs: Any) -> bytes:
    """A valid envelope, written by hand as a program in another language would (docs/bridge.md)."""
    return json.dumps({"fastbus": 1, "origin": "raw-client", "channel": "ch", "seq": seq,
                       "messages": [[list(args), kwargs]]}).encode()


@pytest.mark.parametrize("durable", MODES)
def test_malformed_and_foreign_payloads_are_counted_and_skipped(redis_server: Any, peers: Any, durable: bool) -> None:
    receiver = peers([bridge(redis_server.url, durable=durable, max_message_bytes=600)], record=["ch"])
    raw = redis_server.client()

    def write(payload: bytes, field: bytes = b"data") -> None:
        if durable:
            raw.xadd("fastbus:stream:ch", {field: payload})
        else:
            assert raw.publish("fastbus:pubsub:ch", payload) == 1

    junk = list(FOREIGN)
    for payload in junk:
        write(payload)
    if durable:
        write(envelope(1, "wrong field"), field=b"payload")
        junk.append(b"")
    write(envelope(1, "hello", **{"from": "raw"}))
    wait_until(lambda: receiver.ask("count", channel="ch") >= 1, what="the valid message")
    for payload in junk:  # the receiving thread goes on after all of that
        write(payload)
    write(envelope(2, "again"))
    wait_until(lambda: receiver.ask("count", channel="ch") >= 2, what="the second valid message")

    assert [(a, k) for a, k, _ in records(receiver)] == [(["hello"], {"from": "raw"}), (["again"], {})]
    stats = receiver.stats()
    assert stats["malformed"] == 2 * len(junk) and stats["received"] == 2 and stats["missed"] == 0
    lines = [message for level, message in receiver.logs() if "malformed" in message]
    assert 1 <= len(lines) < len(junk), "each bad payload logged (not rate-limited), or none"
    assert all(level == 30 for level, message in receiver.logs() if "malformed" in message)


@pytest.mark.parametrize("durable", MODES)
def test_a_repeat_is_delivered_once_and_a_gap_is_counted(redis_server: Any, peers: Any, durable: bool) -> None:
    receiver = peers([bridge(redis_server.url, durable=durable)], record=["ch"])
    raw = redis_server.client()
    # From one origin: 1, 1 again (a resend), 2, then 5 (3 and 4 missed), 4 (below the last
    # seen: taken for a repeat too), 6.
    for seq, word in [(1, "a"), (1, "a"), (2, "b"), (5, "e"), (4, "d"), (6, "f")]:
        if durable:
            raw.xadd("fastbus:stream:ch", {"data": envelope(seq, word)})
        else:
            raw.publish("fastbus:pubsub:ch", envelope(seq, word))
    wait_until(lambda: "f" in first_args(receiver), what="the last message")
    assert first_args(receiver) == ["a", "b", "e", "f"]
    stats = receiver.stats()
    assert (stats["duplicates"], stats["missed"], stats["received"]) == (2, 2, 4)
    assert [level for level, message in receiver.logs() if "missed 2 message(s)" in message] == [30]


def test_unencodable_and_oversize_arguments_are_refused_at_the_publish(redis_server: Any, peers: Any) -> None:
    sender = peers([bridge(redis_server.url, max_message_bytes=1000)], record=["ch"], name="sender")
    receiver = peers([bridge(redis_server.url)], record=["ch"], name="receiver")

    def refusal(**message: Any) -> tuple[str, str]:
        answer = sender.ask("publish", channel="ch", **message)
        assert len(answer["errors"]) == 1, answer
        kind, text = answer["errors"][0]
        assert "'ch'" in text, text
        return kind, text

    # What JSON cannot carry (a set, NaN, an int key) is made in the child from markers.
    kind, text = refusal(args=[1, "x" * 2000])
    assert kind == "ValueError" and "max_message_bytes=1000" in text and "argument 1" in text
    kind, text = refusal(args=[], kwargs={"big": "y" * 2000})
    assert kind == "ValueError" and "keyword argument 'big'" in text
    kind, text = refusal(args=[{"1": 1}], kwargs={"x": {"nested": {"__int_key__": 1}}})
    assert kind == "TypeError" and "keyword argument 'x'" in text and "not a str" in text
    kind, text = refusal(args=["fine", {"__set__": [1, 2]}])
    assert kind == "TypeError" and "argument 1 (set)" in text and "json" in text
    kind, text = refusal(args=[{"__nan__": True}])
    assert kind == "ValueError" and "argument 0 (float)" in text

    assert len(records(sender)) == 5, "the local listeners ran for every refused publish"
    assert sender.ask("publish", channel="ch", args=["sent"]) == {"ok": True}
    wait_until(lambda: receiver.ask("count", channel="ch") >= 1, what="the message that was sent")
    assert first_args(receiver) == ["sent"]
    assert sender.ask("flush", timeout=DEADLINE) == [True]
    assert sender.stats()["sent"] == 1


# -- outbox ----------------------------------------------------------------------------------------


def stream_contents(server: Any, channel: str = "ch") -> list[tuple[int, Any]]:
    """``(seq, args)`` of each message in *channel*'s stream, in order."""
    found = []
    for _, fields in server.client().xrange(f"fastbus:stream:{channel}"):
        env = json.loads(fields[b"data"])
        found += [(env["seq"] + i, message[0]) for i, message in enumerate(env["messages"])]
    return found


def test_a_full_outbox_refuses_the_publish_and_the_rest_is_sent_in_order(redis_server: Any, peers: Any) -> None:
    sender = peers([bridge(redis_server.url, durable=True, max_pending=100)], name="sender")
    redis_server.kill()
    assert sender.ask("publish_range", channel="ch", start=0, stop=100) == {"published": 100}

    def refused() -> bool:
        answer = sender.ask("publish_range", channel="ch", start=100, stop=101)
        assert answer["published"] == 0
        [(kind, text)] = answer["errors"]
        assert kind == "OutboxFull" and "'ch'" in text and "max_pending=100" in text and "not sent" in text
        # The reason says why the messages wait: until the sender has tried the dead server,
        # it may still believe itself connected (which a loaded machine can make last).
        return "not connected" in text or "connected, but messages are published faster" in text

    wait_until(refused, what="the outbox full while the server is down")
    assert sender.stats()["pending"] == 100 and sender.stats()["sent"] == 0
    assert sender.ask("flush", timeout=0.05) == [False]

    redis_server.restart()
    assert sender.ask("flush", timeout=DEADLINE) == [True]
    assert stream_contents(redis_server) == [(i + 1, [i]) for i in range(100)]
    stats = sender.stats()
    assert stats["sent"] == 100 and stats["pending"] == 0 and stats["reconnects"] >= 1


# -- durable: a named receiver's cursor -----------------------------------------------------------


def saved_cursor(server: Any, name: str, channel: str = "ch") -> Any:
    return server.client().hget(f"fastbus:cursor:{name}", channel)


def last_entry(server: Any, channel: str = "ch") -> Any:
    """The id of the stream's last entry; None while it has none."""
    entries = server.client().xrevrange(f"fastbus:stream:{channel}", count=1)
    return entries[0][0] if entries else None


def test_a_receiver_restarted_with_its_name_gets_what_was_published_while_it_was_down(
    redis_server: Any, peers: Any
) -> None:
    url = redis_server.url
    sender = peers([bridge(url, durable=True)], name="sender")
    first = peers([bridge(url, durable=True, name="worker")], record=["ch"], name="first")
    assert sender.ask("publish_range", channel="ch", start=0, stop=50) == {"published": 50}
    wait_until(lambda: first.ask("count", channel="ch") >= 50, what="the first fifty")
    # Its cursor is saved ahead of its next read: then the crash loses nothing it delivered.
    wait_until(
        lambda: last_entry(redis_server) is not None and saved_cursor(redis_server, "worker") == last_entry(redis_server),
        what="the cursor saved",
    )
    first.kill()
    assert sender.ask("publish_range", channel="ch", start=50, stop=100) == {"published": 50}
    assert sender.ask("flush", timeout=DEADLINE) == [True]

    again = peers([bridge(url, durable=True, name="worker")], record=["ch"], name="again")
    newcomer = peers([bridge(url, durable=True, name="newcomer")], record=["ch"], name="newcomer")
    wait_until(lambda: again.ask("count", channel="ch") >= 50, what="what was published while it was down")
    assert sender.ask("publish", channel="ch", args=["after"]) == {"ok": True}
    wait_until(lambda: "after" in first_args(again) and "after" in first_args(newcomer), what="the message after")
    assert first_args(again) == [*range(50, 100), "after"]
    assert first_args(newcomer) == ["after"], "a new name starts at the end of the stream"
    assert again.stats()["duplicates"] == 0


def test_a_crash_before_the_cursor_is_saved_delivers_that_message_again(redis_server: Any, peers: Any) -> None:
    # The documented duplicate: the process dies inside the listener, before the next read
    # saves the cursor. The message comes again, with the same (origin, seq) to dedupe by.
    url = redis_server.url
    sender = peers([bridge(url, durable=True)], name="sender")
    first = peers([bridge(url, durable=True, name="worker")], record=["ch"], name="first", hang_on=["stuck"])
    sender.ask("publish", channel="ch", args=["before"])
    wait_until(
        lambda: last_entry(redis_server) is not None and saved_cursor(redis_server, "worker") == last_entry(redis_server),
        what="the cursor saved",
    )
    sender.ask("publish", channel="ch", args=["stuck"])
    wait_until(lambda: first.ask("count", channel="ch") >= 2, what="the listener entered")
    first.kill()
    again = peers([bridge(url, durable=True, name="worker")], record=["ch"], name="again")
    wait_until(lambda: again.ask("count", channel="ch") >= 1, what="the redelivery")
    assert first_args(again) == ["stuck"]
    [(_, _, info)] = records(again)
    assert info[1] == sender.ready["origins"][0] and info[2] == 2 and info[3] == last_entry(redis_server).decode()


# -- write-only senders -----------------------------------------------------------------------------


@pytest.mark.parametrize("durable", MODES)
def test_senders_without_a_bus_reach_bridged_buses(redis_server: Any, peers: Any, durable: bool) -> None:
    from fastbus.bridge import Sender, send

    receiver = peers([bridge(redis_server.url, durable=durable)], record=["ch"])
    send(redis_server.url, "ch", 1, durable=durable, key="value")
    with Sender(redis_server.url, durable=durable) as sender:
        # Keyword arguments named like send()'s options belong to the message here.
        sender.send("ch", 2, prefix="message", durable="message", url="message", channel="message")
        sender.send("ch", 3)
    wait_until(lambda: receiver.ask("count", channel="ch") >= 3, what="three messages")
    got = records(receiver)
    assert [(a, k) for a, k, _ in got] == [
        ([1], {"key": "value"}),
        ([2], {"prefix": "message", "durable": "message", "url": "message", "channel": "message"}),
        ([3], {}),
    ]
    assert [info[2] for _, _, info in got] == [1, 1, 2]  # numbered per sender
    assert got[1][2][1] == got[2][2][1] != got[0][2][1]


def test_a_sender_raises_when_redis_is_unreachable(redis_server: Any) -> None:
    from fastbus.bridge import BridgeError, Sender

    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(BridgeError, match="unreachable"), Sender(url, connect_timeout=2) as sender:
        sender.send("ch", 1)
    with pytest.raises(TypeError, match=r"channel 'ch'.*argument 0 \(bytes\)"), Sender(redis_server.url) as sender:
        sender.send("ch", b"bytes")
