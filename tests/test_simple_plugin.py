"""SimplePlugin: methods named after channels subscribe themselves."""

from __future__ import annotations

import threading
import types

import pytest
from _children import DEADLINE, wait_until
from _registry import entries as registry_entries

from fastbus import SimplePlugin
from fastbus.plugins import _simple


class Recorder(SimplePlugin):
    def __init__(self, bus):
        super().__init__(bus)
        self.calls = []

    def start(self):
        self.calls.append("start")

    def stop(self):
        self.calls.append("stop")

    def graceful(self):
        self.calls.append("graceful")

    graceful.priority = 10

    def custom(self, value):
        self.calls.append(("custom", value))

    def not_a_channel(self):
        self.calls.append("never")


def test_subscribes_methods_named_after_channels(bus):
    plugin = Recorder(bus)
    plugin.subscribe()
    bus.start()
    bus.graceful()
    bus.stop()
    assert plugin.calls == ["start", "graceful", "stop"]
    assert plugin.bus is bus


def test_honours_method_priority(bus):
    plugin = Recorder(bus)
    bus.subscribe("graceful", lambda: plugin.calls.append("other"), priority=20)
    plugin.subscribe()
    bus.graceful()
    assert plugin.calls == ["graceful", "other"]
    assert (10, plugin.graceful) in registry_entries(bus, "graceful")


def test_declared_channels_are_picked_up_and_unsubscribe_undoes(bus):
    bus.listeners.setdefault("custom", set())
    bus.subscribe(None, lambda: None)  # a non-name channel is skipped, not an error
    plugin = Recorder(bus)
    plugin.subscribe()
    bus.publish("custom", 1)
    plugin.unsubscribe()
    bus.publish("custom", 2)
    bus.start()
    assert plugin.calls == [("custom", 1)]
    assert all(len(bus.listeners[ch]) == 0 for ch in ("start", "stop", "graceful", "custom"))


def test_subscribing_twice_keeps_one_entry(bus):
    plugin = Recorder(bus)
    plugin.subscribe()
    plugin.subscribe()
    bus.start()
    assert plugin.calls == ["start"]


def test_concurrent_subscribe_and_unsubscribe(bus):
    plugins = [Recorder(bus) for _ in range(20)]

    def toggle(plugin):
        for _ in range(50):
            plugin.subscribe()
            plugin.unsubscribe()
        plugin.subscribe()

    threads = [threading.Thread(target=toggle, args=(p,)) for p in plugins]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bus.listeners["start"]) == 20
    bus.start()
    assert all(p.calls == ["start"] for p in plugins)


class PausingBus:
    """Forwards to *bus*, but the first subscribe pauses until told to go on."""

    def __init__(self, bus):
        self.bus = bus
        self.listeners = bus.listeners
        self.unsubscribe = bus.unsubscribe
        self.paused = threading.Event()
        self.resume = threading.Event()

    def subscribe(self, channel, callback):
        self.bus.subscribe(channel, callback)
        if not self.paused.is_set():
            self.paused.set()
            assert self.resume.wait(2 * DEADLINE)  # the test fails first, at DEADLINE


class WatchedLock:
    """An RLock that notes the threads waiting to enter it."""

    def __init__(self):
        self.lock = threading.RLock()
        self.waiting = set()

    def __enter__(self):
        self.waiting.add(threading.get_ident())
        self.lock.acquire()
        self.waiting.discard(threading.get_ident())

    def __exit__(self, *exc_info):
        self.lock.release()


def subscribed(bus, plugin):
    return [getattr(plugin, ch) in bus.listeners[ch] for ch in ("start", "stop", "graceful")]


def test_an_unsubscribe_never_cuts_into_a_subscribe_of_the_same_plugin(bus, monkeypatch):
    # Without the lock, the unsubscribe runs whole while the subscribe is paused after its
    # first channel, and the subscribe then adds the rest: a half-subscribed plugin.
    monkeypatch.setattr(_simple, "threading", types.SimpleNamespace(RLock=WatchedLock))
    pausing = PausingBus(bus)
    plugin = Recorder(pausing)
    subscriber = threading.Thread(target=plugin.subscribe)
    unsubscriber = threading.Thread(target=plugin.unsubscribe)
    subscriber.start()
    try:
        assert pausing.paused.wait(DEADLINE)
        unsubscriber.start()
        waiting = plugin._subscription_lock().waiting
        wait_until(
            lambda: unsubscriber.ident in waiting or not unsubscriber.is_alive(),
            what="unsubscribe waiting for the lock, or done",
        )
    finally:
        pausing.resume.set()
        for thread in (subscriber, unsubscriber):
            if thread.ident is not None:
                thread.join(DEADLINE)
                assert not thread.is_alive()
    assert subscribed(bus, plugin) == [False, False, False]


def test_plugins_do_not_wait_for_each_other(bus):
    pausing = PausingBus(bus)
    slow, other = Recorder(pausing), Recorder(bus)
    subscriber = threading.Thread(target=slow.subscribe)
    subscriber.start()
    try:
        assert pausing.paused.wait(DEADLINE)
        # A process-wide lock made this wait for the paused subscribe of another plugin.
        done = threading.Thread(target=lambda: (other.subscribe(), other.unsubscribe()))
        done.start()
        done.join(DEADLINE)
        assert not done.is_alive()
    finally:
        pausing.resume.set()
        subscriber.join(DEADLINE)
    assert subscribed(bus, slow) == [True, True, True]
    assert subscribed(bus, other) == [False, False, False]


def test_works_on_a_stock_wspbus():
    wspbus = pytest.importorskip("cherrypy.process.wspbus")

    bus = wspbus.Bus()
    plugin = Recorder(bus)
    plugin.subscribe()
    bus.graceful()
    plugin.unsubscribe()
    bus.graceful()
    assert plugin.calls == ["graceful"]
