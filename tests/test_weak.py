"""``subscribe(..., weak=True)``: the bus does not keep the listener alive."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest

from fastbus import Subscription


class Owner:
    def __init__(self, name, log=None):
        self.name = name
        self.log = log if log is not None else []

    def method(self, x=None):
        self.log.append((self.name, x))
        return self.name


def collected(ref):
    gc.collect()
    return ref() is None


def test_a_weak_bound_method_does_not_keep_its_object_alive(bus):
    owner = Owner("o")
    ref = weakref.ref(owner)
    bus.subscribe("ch", owner.method, weak=True)
    assert bus.publish("ch", 1) == ["o"]
    assert owner.log == [("o", 1)]
    del owner
    assert collected(ref)
    assert bus.publish("ch", 2) == []
    assert list(bus.listeners["ch"]) == []
    assert bus.subscriptions("ch") == []


def test_a_strong_bound_method_keeps_its_object_alive_as_in_wspbus(bus):
    owner = Owner("o")
    ref = weakref.ref(owner)
    bus.subscribe("ch", owner.method)
    del owner
    assert not collected(ref)
    assert bus.publish("ch") == ["o"]


def test_a_weak_function_goes_away_with_the_function(bus):
    def make():
        def listener():
            return "alive"
        return listener

    listener = make()
    ref = weakref.ref(listener)
    bus.subscribe("ch", listener, weak=True)
    bus.subscribe("ch", len, 90)  # strong, unaffected
    assert [s.callback for s in bus.subscriptions("ch")] == [listener, len]
    del listener
    assert collected(ref)
    assert [s.callback for s in bus.subscriptions("ch")] == [len]


def test_no_dead_entry_is_left_in_the_registry(bus):
    owners = [Owner(str(i)) for i in range(50)]
    for i, owner in enumerate(owners):
        bus.subscribe("ch", owner.method, priority=i, weak=True)
    bus.subscribe("ch", print, 100)
    del owner
    del owners[::2]
    gc.collect()
    names = [s.callback.__self__.name for s in bus.subscriptions("ch")[:-1]]
    assert names == [str(i) for i in range(1, 50, 2)]
    assert len(bus.listeners["ch"]) == 26
    del owners[:]
    gc.collect()
    assert bus.subscriptions("ch") == [Subscription(print, 100, False, False)]
    assert bus.listeners["ch"] == {print}


def test_unsubscribe_finds_a_weak_method_through_a_new_bound_method(bus):
    owner = Owner("o")
    bus.subscribe("ch", owner.method, weak=True)
    assert owner.method in bus.listeners["ch"]
    bus.unsubscribe("ch", owner.method)
    assert bus.publish("ch") == []
    assert bus.subscriptions("ch") == []


def test_subscriptions_show_the_weak_flag_and_a_live_callable(bus):
    owner = Owner("o")
    bus.subscribe("ch", owner.method, 5, weak=True)
    [subscription] = bus.subscriptions("ch")
    assert subscription == Subscription(owner.method, 5, True, False)
    assert subscription.callback.__self__ is owner


def test_resubscribing_switches_between_weak_and_strong_in_place(bus):
    owner = Owner("o")
    ref = weakref.ref(owner)
    bus.subscribe("ch", Owner("first").method, 50)
    bus.subscribe("ch", owner.method, 50, weak=True)
    bus.subscribe("ch", Owner("last").method, 50)
    # Strong now: the object stays alive, in the same place among equal priorities.
    bus.subscribe("ch", owner.method, 50)
    assert [(s.callback.__self__.name, s.weak) for s in bus.subscriptions("ch")] == [
        ("first", False), ("o", False), ("last", False)]
    del owner
    assert not collected(ref)
    # Weak again: now it can go.
    owner = ref()
    bus.subscribe("ch", owner.method, 50, weak=True)
    assert [s.weak for s in bus.subscriptions("ch")] == [False, True, False]
    del owner
    assert collected(ref)
    assert bus.publish("ch") == ["first", "last"]


class NoWeakReferences:
    __slots__ = ()

    def __call__(self):
        return "called"


def test_a_callable_that_cannot_be_weakly_referenced_is_refused_at_subscribe(bus):
    with pytest.raises(TypeError, match="cannot be held weakly"):
        bus.subscribe("ch", NoWeakReferences(), weak=True)
    # A built-in method of an object is made anew on each attribute access: a weak reference
    # to it would die at once, so it is refused rather than silently dropped.
    with pytest.raises(TypeError, match="cannot be held weakly"):
        bus.subscribe("ch", [].append, weak=True)
    assert bus.subscriptions("ch") == []
    # A built-in function of a module lives as long as its module: that is fine.
    bus.subscribe("ch", len, weak=True)
    assert bus.subscriptions("ch") == [Subscription(len, 50, True, False)]


@pytest.mark.parametrize("flag", ["weak", "once"])
@pytest.mark.parametrize("value", [1, "yes", None])
def test_flags_must_be_bools(bus, flag, value):
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        bus.subscribe("ch", print, **{flag: value})
    with pytest.raises(TypeError, match=f"{flag} must be True or False"):
        bus.subscribe("ch", **{flag: value})
    assert bus.subscriptions("ch") == []


def test_the_decorator_form_takes_weak_and_once(bus):
    @bus.subscribe("ch", once=True)
    def one_shot():
        return "once"

    assert bus.publish("ch") == ["once"] and bus.publish("ch") == []
    assert one_shot() == "once"  # the decorator returns the function itself

    def make():
        @bus.subscribe("weak", weak=True)
        def inner():
            return "inner"
        return weakref.ref(inner)

    ref = make()
    assert collected(ref)
    assert bus.publish("weak") == []


def test_a_referent_collected_during_the_publish_is_not_called_afterwards(bus):
    # The first listener drops the last reference to the second's object, mid-publish.
    log = []
    holder = [Owner("doomed", log)]
    ref = weakref.ref(holder[0])

    def killer():
        holder.clear()
        gc.collect()
        return "killer"

    bus.subscribe("ch", killer, 1)
    bus.subscribe("ch", holder[0].method, 2, weak=True)
    bus.subscribe("ch", lambda: "after", 3)
    assert bus.publish("ch") == ["killer", "after"]
    assert ref() is None and log == []
    assert bus.publish("ch") == ["killer", "after"]
    assert [s.priority for s in bus.subscriptions("ch")] == [1, 3]


def test_a_referent_collected_by_the_collector_inside_publish_is_safe(bus):
    # Objects in reference cycles die when the collector runs, which can be on any
    # allocation, here inside the publish itself.
    log = []
    for round_ in range(40):
        owners = []
        for i in range(5):
            owner = Owner(f"{round_}.{i}", log)
            owner.cycle = owner
            owners.append(owner)
            bus.subscribe("ch", owner.method, i, weak=True)
        del owners, owner
        gc.set_threshold(1 + round_ % 7)
        try:
            results = bus.publish("ch", round_)
        finally:
            gc.set_threshold(700, 10, 10)
        assert all(name.startswith(f"{round_}.") for name in results)
        gc.collect()
        assert bus.subscriptions("ch") == []
    assert all(name.split(".")[0] == str(x) for name, x in log)


def test_referents_collected_in_another_thread_while_publishing(bus):
    stop = threading.Event()
    errors = []
    counts = []

    def publisher():
        try:
            while not stop.is_set():
                for result in bus.publish("ch"):
                    if not isinstance(result, str):
                        errors.append(result)
                counts.append(len(bus.subscriptions("ch")))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=publisher) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for round_ in range(200):
            owners = [Owner(f"{round_}.{i}") for i in range(10)]
            for i, owner in enumerate(owners):
                bus.subscribe("ch", owner.method, i, weak=True)
            del owner
            del owners  # refcount drops to zero here, in this thread, while others publish
    finally:
        stop.set()
        for t in threads:
            t.join()
    gc.collect()
    assert errors == []
    assert bus.subscriptions("ch") == []
    assert bus.publish("ch") == []
    assert counts  # the publishers did run


def test_a_bus_that_is_gone_is_not_kept_alive_by_weak_listeners(Bus):
    bus = Bus()
    owner = Owner("o")
    bus.subscribe("ch", owner.method, weak=True)
    bus_ref = weakref.ref(bus)
    del bus
    assert collected(bus_ref)
    del owner  # its death finds no bus: nothing to do, and nothing raised
    gc.collect()
