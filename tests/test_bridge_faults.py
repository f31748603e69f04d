"""The bridge against real faults: redis-server killed with SIGKILL in the middle of a stream.

Two real processes on the core under test, a stream of 10,000 messages, and the server killed
partway and started again on the same port. Pub/sub mode must reconnect, deliver what is
published after it did, and count exactly the messages it missed; durable mode (the server
keeping an append-only file) must deliver every message once, counting the repeats that the
sender's resends put in the stream. The heaviest bridge tests, kept in this one file.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from _bridge_peers import DEADLINE, Peers
from _children import wait_until

TOTAL = 10_000
FAST_RETRY = {"retry_min": 0.01, "retry_max": 0.2}


@pytest.fixture
def peers(tmp_path: Path, python: str, core_name: str, core_env: dict[str, str]) -> Any:
    started = Peers(tmp_path, python, core_name, core_env)
    yield started
    started.close_all()


def received_numbers(peer: Any, channel: str = "n") -> list[int]:
    return [args[0] for args, _, _ in peer.ask("received", channel=channel)]


def test_pubsub_reconnects_after_the_server_is_killed_and_counts_what_it_missed(redis_servers: Any, peers: Any) -> None:
    server = redis_servers()
    bridge = {"url": server.url, "channels": ["n"], "options": FAST_RETRY}
    receiver = peers([bridge], record=["n"], name="receiver")
    sender = peers([bridge], name="sender")

    # The first half flows; the server dies under it, with the receiver stalled (SIGSTOP) so
    # that it cannot subscribe again before the sender has sent what it held meanwhile.
    assert sender.ask("publish_range", channel="n", start=0, stop=5000, background=True) == {"started": True}
    wait_until(lambda: receiver.ask("count", channel="n") >= 500, what="the stream flowing")
    receiver.pause()
    server.kill()
    assert sender.ask("join") == {"published": 5000}
    # Published while the server is down: kept in the outbox, sent after the restart, to
    # nobody (the receiver is still stalled): pub/sub delivers at most once.
    assert sender.ask("publish_range", channel="n", start=5000, stop=7500) == {"published": 2500}
    server.restart()
    assert sender.ask("flush", timeout=DEADLINE) == [True]
    receiver.resume()
    wait_until(lambda: (lambda s: s["connected"] and s["reconnects"] >= 1)(receiver.stats()), what="receiver back")
    assert sender.ask("publish_range", channel="n", start=7500, stop=TOTAL) == {"published": 2500}
    wait_until(lambda: receiver.ask("last", channel="n")[0] == [TOTAL - 1], what="the last message")

    got = received_numbers(receiver)
    assert got == sorted(set(got)), "delivered out of order or twice"
    assert set(range(7500, TOTAL)) <= set(got), "a message published after the reconnect was lost"
    assert not set(range(5000, 7500)) & set(got)
    stats = receiver.stats()
    assert stats["missed"] == TOTAL - len(got) >= 2500
    assert stats["duplicates"] == 0 and stats["malformed"] == 0
    assert stats["reconnects"] >= 1 and stats["received"] == len(got)
    assert any(level == 30 and "missed" in message for level, message in receiver.logs())
    sent = sender.stats()
    assert sent["sent"] == TOTAL and sent["pending"] == 0 and sent["reconnects"] >= 1
    assert "unreachable" in sent["last_error"]


def stream_messages(server: Any, channel: str) -> list[tuple[str, int]]:
    """``(origin, seq)`` of every message in *channel*'s stream, repeats included, in order."""
    found = []
    for _, fields in server.client().xrange(f"fastbus:stream:{channel}"):
        envelope = json.loads(fields[b"data"])
        found += [(envelope["origin"], envelope["seq"] + i) for i in range(len(envelope["messages"]))]
    return found


def test_durable_delivers_every_message_once_across_a_server_kill(redis_servers: Any, peers: Any) -> None:
    server = redis_servers(appendonly=True)
    options = dict(FAST_RETRY, durable=True)
    receiver = peers([{"url": server.url, "channels": ["n"], "options": dict(options, name="reader")}],
                     record=["n"], name="receiver")
    sender = peers([{"url": server.url, "channels": ["n"], "options": options}], name="sender")

    # Paced, so that the kill finds the sender waiting for Redis to answer a batch: what Redis
    # wrote to its file but could not answer is sent again.
    assert sender.ask("publish_range", channel="n", start=0, stop=5000, pace=20, background=True) == {"started": True}
    wait_until(lambda: receiver.ask("count", channel="n") >= 1000, what="the stream flowing")
    server.kill()
    assert sender.ask("join") == {"published": 5000}
    assert sender.ask("publish_range", channel="n", start=5000, stop=TOTAL) == {"published": 5000}
    server.restart()
    assert sender.ask("flush", timeout=DEADLINE) == [True]
    wait_until(lambda: receiver.ask("count", channel="n") >= TOTAL, what="every message delivered")

    records = receiver.ask("received", channel="n")
    assert [args[0] for args, _, _ in records] == list(range(TOTAL))  # each once, in order
    # What the stream holds twice (a batch the sender sent again, not knowing it had arrived
    # before the kill) is what the receiver counted as duplicates and did not deliver again.
    in_stream = stream_messages(server, "n")
    assert {origin for origin, _ in in_stream} == {sender.ready["origins"][0]}
    repeats = sum(count - 1 for count in Counter(in_stream).values())
    assert len(set(in_stream)) == TOTAL
    stats = receiver.stats()
    assert stats["duplicates"] == repeats
    assert stats["missed"] == 0 and stats["malformed"] == 0 and stats["received"] == TOTAL
    assert stats["reconnects"] >= 1
    assert [info[2] for _, _, info in records] == list(range(1, TOTAL + 1))  # current_message().seq
    assert sender.stats()["sent"] == TOTAL
