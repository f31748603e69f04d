"""Buses as objects: subclass overrides, weak references, garbage collection, no leaks."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest

from fastbus import ChannelFailures, SimplePlugin, states


def test_subclass_overrides_are_used_by_the_lifecycle_and_the_decorator(Bus):
    calls = []

    class Tracing(Bus):
        def publish(self, channel, *args, **kwargs):
            calls.append(("publish", channel))
            return super().publish(channel, *args, **kwargs)

        def subscribe(self, channel, callback=None, priority=None):
            calls.append(("subscribe", channel))
            return super().subscribe(channel, callback, priority)

        def log(self, msg="", level=20, traceback=False):
            calls.append(("log", msg))
            super().log(msg, level, traceback)

    bus = Tracing()

    @bus.subscribe("start", priority=5)
    def on_start():
        return None

    bus.start()
    bus.exit()
    assert ("subscribe", "start") in calls
    assert calls.count(("subscribe", "start")) == 2  # the decorator's call goes through it too
    assert [c for c in calls if c[0] == "publish"][:2] == [("publish", "log"), ("publish", "start")]
    assert ("log", "Bus EXITED") in calls


def test_overridden_stop_and_wait_are_used(Bus):
    calls = []

    class Custom(Bus):
        def stop(self):
            calls.append("stop")
            super().stop()

        def wait(self, state, interval=0.1, channel=None):
            calls.append(("wait", state, channel))
            super().wait(state, interval, channel)

    bus = Custom()
    bus.subscribe("main", bus.exit)
    bus.block(interval=0.01)
    assert calls[0] == ("wait", states.EXITING, "main")
    assert "stop" in calls


def test_listener_failure_is_logged_through_an_overridden_log(Bus):
    logged = []

    class Logging(Bus):
        def log(self, msg="", level=20, traceback=False):
            logged.append((msg.splitlines()[0], level, traceback))

    bus = Logging()
    bus.subscribe("ch", lambda: 1 / 0)
    with pytest.raises(ChannelFailures):
        bus.publish("ch")
    assert logged[0][1:] == (40, True) and logged[0][0].startswith("Error in 'ch' listener")


def test_state_may_be_a_property_set_in_init(Bus):
    # As CherryPy's Win32Bus does: __init__ goes through the property.
    class PropertyBus(Bus):
        def __init__(self):
            self.seen = []
            super().__init__()

        @property
        def state(self):
            return self._state

        @state.setter
        def state(self, value):
            self.seen.append(value)
            self._state = value

    bus = PropertyBus()
    assert bus.seen == [states.STOPPED]
    bus.start()
    bus.exit()
    assert bus.seen == [states.STOPPED, states.STARTING, states.STARTED,
                        states.STOPPING, states.STOPPED, states.EXITING]
    # wait still works, by polling at its interval
    bus.wait(states.EXITING, interval=0.01)


def test_buses_are_weakly_referenceable_and_collected_in_cycles(Bus):
    bus = Bus()

    class Plugin(SimplePlugin):
        def start(self):
            return None

        def stop(self):
            return None

    plugin = Plugin(bus)
    plugin.subscribe()
    bus.subscribe("ch", lambda: bus)  # noqa: F821  # a closure that refers back to the bus (deleted below)
    bus.start()
    bus.exit()
    ref = weakref.ref(bus)
    del bus, plugin
    gc.collect()
    assert ref() is None


def test_publish_leaks_no_references(bus):
    def ok(arg, key=None):
        return arg

    def bad(arg, key=None):
        raise ValueError(arg)

    class Holder:
        def method(self, arg, key=None):
            return key

    holder = Holder()
    bus.subscribe("ok", ok)
    bus.subscribe("ok", holder.method)
    bus.subscribe("bad", bad)
    bus.subscribe("bad", ok)
    payload = object()
    channel = "ok"

    def exercise():
        for _ in range(200):
            bus.publish(channel, payload)
            bus.publish(channel, payload, key=payload)
            try:
                bus.publish("bad", payload)
            except ChannelFailures:
                pass
            bus.publish("missing", payload)

    exercise()
    gc.collect()
    before = (sys.getrefcount(payload), sys.getrefcount(ok), sys.getrefcount(holder), sys.getrefcount(channel))
    exercise()
    gc.collect()
    after = (sys.getrefcount(payload), sys.getrefcount(ok), sys.getrefcount(holder), sys.getrefcount(channel))
    assert after == before


def test_subscribe_unsubscribe_leak_no_references(bus):
    def cb():
        return None

    for _ in range(10):
        bus.subscribe("ch", cb)
        bus.unsubscribe("ch", cb)
    gc.collect()
    before = sys.getrefcount(cb)
    for _ in range(100):
        bus.subscribe("ch", cb, 10)
        bus.subscribe("ch", cb, 20)
        bus.unsubscribe("ch", cb)
    gc.collect()
    assert sys.getrefcount(cb) == before
