"""Thread safety: a publish runs on the listeners as they stood when it began.

These use real threads for about a second each; they check outcomes, never timings.
"""

from __future__ import annotations

import threading
import time

from _registry import entries as registry_entries

DURATION = 0.6


def run_threads(targets, duration=DURATION):
    stop = threading.Event()
    errors = []

    def guard(target):
        try:
            while not stop.is_set():
                target()
        except BaseException as exc:  # report any failure to the main thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=guard, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    time.sleep(duration)
    stop.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert errors == []


def make_listener(name):
    def listener():
        return name

    return listener


def test_publish_never_skips_repeats_or_raises_while_others_churn(bus):
    stable = [make_listener(f"s{i}") for i in range(5)]
    for i, cb in enumerate(stable):
        bus.subscribe("ch", cb, priority=i * 10)
    churn = [make_listener(f"c{i}") for i in range(40)]
    publishes = []

    def publisher():
        result = bus.publish("ch")
        got = [r for r in result if r.startswith("s")]
        assert got == ["s0", "s1", "s2", "s3", "s4"], result
        assert len(result) == len(set(result)), result
        publishes.append(len(result))

    def churner(offset):
        def work():
            for j, cb in enumerate(churn[offset::2]):
                bus.subscribe("ch", cb, priority=(j * 7) % 45)
            for cb in churn[offset::2]:
                bus.unsubscribe("ch", cb)

        return work

    run_threads([publisher, publisher, churner(0), churner(1)])
    assert len(publishes) > 10
    assert bus.publish("ch") == ["s0", "s1", "s2", "s3", "s4"]


def test_each_publish_sees_a_consistent_snapshot(bus):
    # One thread subscribes a generation in order and then unsubscribes it in order; every
    # publish must see the registry between two of those edits: a prefix of the generation
    # while it grows, a suffix while it shrinks, in subscription order. A publish that saw
    # half an edit, or skipped or repeated a listener, sees something else.
    names = [f"g{i:02}" for i in range(20)]
    generation = [make_listener(name) for name in names]
    allowed = {tuple(names[:k]) for k in range(21)} | {tuple(names[k:]) for k in range(21)}
    snapshots = []

    def publisher():
        snapshots.append(tuple(bus.publish("ch")))

    def flipper():
        for cb in generation:
            bus.subscribe("ch", cb)
        for cb in generation:
            bus.unsubscribe("ch", cb)

    run_threads([publisher, flipper])
    assert len(snapshots) > 10
    assert [s for s in snapshots if s not in allowed] == []
    # Not only the empty and the full registry: publishes did overlap the edits.
    assert len(set(snapshots)) > 2


def test_changes_from_inside_a_listener_take_effect_next_publish(bus):
    added = make_listener("added")
    calls = []

    def adder():
        calls.append("adder")
        bus.subscribe("ch", added, priority=100)
        bus.unsubscribe("ch", remover)
        return "adder"

    def remover():
        calls.append("remover")
        return "remover"

    bus.subscribe("ch", adder, priority=1)
    bus.subscribe("ch", remover, priority=2)
    assert bus.publish("ch") == ["adder", "remover"]
    assert bus.publish("ch") == ["adder", "added"]


def test_nested_publish_of_the_same_channel(bus):
    depth = []

    def recurse():
        depth.append(1)
        if len(depth) < 3:
            bus.subscribe("ch", make_listener(f"n{len(depth)}"), priority=99)
            return bus.publish("ch")
        return "bottom"

    bus.subscribe("ch", recurse, priority=0)
    result = bus.publish("ch")
    # Each level sees the listeners as they stood when it began.
    assert result == [[["bottom", "n1", "n2"], "n1"]]
    assert bus.publish("ch")[1:] == ["n1", "n2"]


def test_iterating_listeners_while_channels_are_added(bus):
    counter = iter(range(10**9))

    def adder():
        bus.listeners.setdefault(f"ch{next(counter)}", set())

    def reader():
        names = list(bus.listeners)
        assert names[:6] == ["start", "stop", "exit", "graceful", "log", "main"]
        for name in bus.listeners:
            bus.listeners.get(name)

    run_threads([adder, reader, reader])


def test_concurrent_subscribers_lose_nothing(bus):
    per_thread = 300
    callbacks = [[make_listener(f"t{t}-{i}") for i in range(per_thread)] for t in range(4)]

    def subscribe_all(cbs):
        for cb in cbs:
            bus.subscribe("ch", cb, priority=hash(cb) % 7)

    threads = [threading.Thread(target=subscribe_all, args=(cbs,)) for cbs in callbacks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = registry_entries(bus, "ch")
    assert len(entries) == 4 * per_thread
    priorities = [p for p, _ in entries]
    assert priorities == sorted(priorities)
