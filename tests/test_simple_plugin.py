"""SimplePlugin: methods named after channels subscribe themselves."""

from __future__ import annotations

import threading

from fastbus import SimplePlugin


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
    assert (10, plugin.graceful) in bus._entries("graceful")


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


def test_works_on_a_stock_wspbus():
    from cherrypy.process import wspbus

    bus = wspbus.Bus()
    plugin = Recorder(bus)
    plugin.subscribe()
    bus.graceful()
    plugin.unsubscribe()
    bus.graceful()
    assert plugin.calls == ["graceful"]
