"""``subscribe(..., once=True)``: exactly one call, gone before it runs."""

from __future__ import annotations

import threading

import pytest

from fastbus import ChannelFailures, Subscription


def test_a_one_shot_listener_runs_on_one_publish_only(bus):
    calls = []
    bus.subscribe("ch", lambda x: calls.append(x) or "once", 10, once=True)
    bus.subscribe("ch", lambda x: "always", 20)
    assert bus.publish("ch", 1) == ["once", "always"]
    assert bus.publish("ch", 2) == ["always"]
    assert calls == [1]
    assert [s.priority for s in bus.subscriptions("ch")] == [20]


def test_it_is_gone_before_it_runs(bus):
    seen = []

    def listener():
        seen.append(listener in bus.listeners["ch"])
        seen.append(bus.subscriptions("ch"))
        seen.append(bus.publish("ch"))  # re-entrant: must not call it again
        return "ran"

    bus.subscribe("ch", listener, once=True)
    assert bus.publish("ch") == ["ran"]
    assert seen == [False, [], []]


def test_a_failing_one_shot_listener_is_still_used_up(bus):
    def fails():
        raise ValueError("boom")

    bus.subscribe("ch", fails, once=True)
    with pytest.raises(ChannelFailures):
        bus.publish("ch")
    assert bus.publish("ch") == []


def one_round(bus):
    """Four threads publish at once to a fresh one-shot listener; return calls and results."""
    calls = []
    results = []
    barrier = threading.Barrier(4)
    bus.subscribe("ch", lambda: calls.append(threading.get_ident()) or "won", once=True)

    def publisher():
        barrier.wait()
        results.append(bus.publish("ch"))

    threads = [threading.Thread(target=publisher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return calls, results


def test_exactly_one_call_with_four_threads_publishing_at_once(bus):
    # Slow listeners beside it widen the window in which the threads overlap.
    for i in range(5):
        bus.subscribe("ch", lambda: sum(range(200)), 100 + i)
    for round_ in range(200):
        calls, results = one_round(bus)
        assert len(calls) == 1, f"round {round_}: {len(calls)} calls"
        assert sorted(len(r) for r in results) == [5, 5, 5, 6]
        assert sum(r.count("won") for r in results) == 1
        assert [s.priority for s in bus.subscriptions("ch")] == [100, 101, 102, 103, 104]


def test_subscriptions_show_the_once_flag(bus):
    def listener():
        pass

    bus.subscribe("ch", listener, 5, once=True)
    assert bus.subscriptions("ch") == [Subscription(listener, 5, False, True)]
    bus.subscribe("ch", listener, 7)  # re-subscribing takes the new settings, in place
    assert bus.subscriptions("ch") == [Subscription(listener, 7, False, False)]
    bus.publish("ch")
    bus.publish("ch")
    assert bus.subscriptions("ch") == [Subscription(listener, 7, False, False)]


def test_resubscribing_a_spent_one_shot_listener_arms_it_again(bus):
    calls = []

    def listener():
        calls.append(1)

    bus.subscribe("ch", listener, once=True)
    bus.publish("ch")
    bus.subscribe("ch", listener, once=True)
    bus.publish("ch")
    bus.publish("ch")
    assert calls == [1, 1]


def test_unsubscribing_a_one_shot_listener_before_it_ran(bus):
    def listener():
        return "never"

    bus.subscribe("ch", listener, once=True)
    bus.unsubscribe("ch", listener)
    assert bus.publish("ch") == []


def test_weak_and_once_together(bus):
    import gc
    import weakref

    class Owner:
        def method(self):
            return "called"

    owner = Owner()
    bus.subscribe("ch", owner.method, weak=True, once=True)
    assert bus.subscriptions("ch") == [Subscription(owner.method, 50, True, True)]
    ref = weakref.ref(owner)
    assert bus.publish("ch") == ["called"]
    assert bus.publish("ch") == []
    del owner
    gc.collect()
    assert ref() is None

    second = Owner()
    bus.subscribe("ch", second.method, weak=True, once=True)
    del second
    gc.collect()
    assert bus.publish("ch") == [] and bus.subscriptions("ch") == []


def test_a_channel_without_special_listeners_is_plain_again_after_they_go(bus):
    # After the last one-shot listener is used up, the channel behaves as before.
    log = []
    bus.subscribe("ch", lambda: log.append("plain") or "plain", 1)
    bus.subscribe("ch", lambda: "once", 2, once=True)
    assert bus.publish("ch") == ["plain", "once"]
    assert bus.publish("ch") == ["plain"]
    bus.subscribe("ch", lambda: "new", 3)
    assert bus.publish("ch") == ["plain", "new"]
