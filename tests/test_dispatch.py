"""Publish and subscribe: order, results, priorities and the error rules, on both cores."""

from __future__ import annotations

import pytest
from _registry import entries as registry_entries

from fastbus import ChannelFailures


def recorder(calls, name, result=None):
    def listener(*args, **kwargs):
        calls.append((name, args, kwargs))
        return result if result is not None else name

    listener.__name__ = name
    return listener


def test_builtin_channels_exist_from_construction(bus):
    assert list(bus.listeners) == ["start", "stop", "exit", "graceful", "log", "main"]
    for channel in bus.listeners:
        assert len(bus.listeners[channel]) == 0


def test_listeners_run_in_priority_order_and_results_follow_call_order(bus):
    calls = []
    for name, priority in [("c", 100), ("a", 0), ("b", 50), ("d", 51)]:
        bus.subscribe("ch", recorder(calls, name), priority)
    assert bus.publish("ch", 1, key=2) == ["a", "b", "d", "c"]
    assert calls == [(n, (1,), {"key": 2}) for n in "abdc"]


def test_equal_priorities_run_in_subscription_order(bus):
    calls = []
    names = [f"l{i}" for i in range(50)]
    for name in names:
        bus.subscribe("ch", recorder(calls, name), 10)
    bus.subscribe("ch", recorder(calls, "first"), 9)
    bus.subscribe("ch", recorder(calls, "last"), 11)
    assert bus.publish("ch") == ["first", *names, "last"]


def test_priority_attribute_is_the_fallback_and_default_is_50(bus):
    def low():
        return "low"

    low.priority = 10

    def default():
        return "default"

    def high():
        return "high"

    high.priority = 90
    bus.subscribe("ch", high)
    bus.subscribe("ch", default)
    bus.subscribe("ch", low)
    bus.subscribe("ch", lambda: "explicit", priority=50.5)
    assert bus.publish("ch") == ["low", "default", "explicit", "high"]
    assert [p for p, _ in registry_entries(bus, "ch")] == [10, 50, 50.5, 90]


def test_explicit_priority_beats_the_attribute(bus):
    def f():
        return "f"

    f.priority = 1
    bus.subscribe("ch", lambda: "g", priority=5)
    bus.subscribe("ch", f, priority=10)
    assert bus.publish("ch") == ["g", "f"]


def test_resubscribing_keeps_one_entry_and_takes_the_new_priority(bus):
    calls = []
    a, b, c = (recorder(calls, n) for n in "abc")
    for cb in (a, b, c):
        bus.subscribe("ch", cb, 20)
    bus.subscribe("ch", a, 30)
    assert bus.publish("ch") == ["b", "c", "a"]
    bus.subscribe("ch", a, 20)  # back among its equals: at its first subscription's place
    assert bus.publish("ch") == ["a", "b", "c"]
    bus.subscribe("ch", b, 20)  # same priority again: nothing moves
    assert bus.publish("ch") == ["a", "b", "c"]
    assert len(bus.listeners["ch"]) == 3


class Named:
    """Callables equal by name: distinct objects that a set takes for one."""

    def __init__(self, name):
        self.name = name

    def __call__(self):
        return self

    def __eq__(self, other):
        return isinstance(other, Named) and other.name == self.name

    def __hash__(self):
        return hash(self.name)


def test_an_equal_callback_takes_the_place_of_none_and_keeps_the_first_object(bus):
    # As wspbus (a set's add keeps the element it has): one entry, the first object, the
    # new priority.
    first, second = Named("x"), Named("x")
    bus.subscribe("ch", first, 10)
    bus.subscribe("ch", Named("y"), 20)
    bus.subscribe("ch", second, 30)
    entries = registry_entries(bus, "ch")
    assert [p for p, _ in entries] == [20, 30] and entries[1][1] is first
    assert [r.name for r in bus.publish("ch")] == ["y", "x"]
    assert bus.publish("ch")[1] is first
    assert list(bus.listeners["ch"])[1] is first


def test_unknown_channel_publishes_nothing_and_is_not_created(bus):
    assert bus.publish("nobody") == []
    assert "nobody" not in bus.listeners


def test_declared_channel_without_listeners_returns_empty_list(bus):
    assert bus.publish("main") == []


def test_publish_passes_positional_and_keyword_arguments_unchanged(bus):
    seen = []
    bus.subscribe("ch", lambda *a, **k: seen.append((a, k)))
    bus.publish("ch")
    bus.publish("ch", 1, 2, 3)
    bus.publish("ch", x=1)
    bus.publish("ch", 1, channel="kw")  # the channel is positional-only: this is a listener kwarg
    assert seen == [((), {}), ((1, 2, 3), {}), ((), {"x": 1}), ((1,), {"channel": "kw"})]


def test_publish_without_channel_is_a_type_error(bus):
    with pytest.raises(TypeError, match="channel"):
        bus.publish()


def test_any_hashable_channel_works(bus):
    assert bus.publish(None) == []  # None is a channel like any other, here an unknown one
    assert bus.publish(None) == []
    key = ("tuple", 1)
    bus.subscribe(key, lambda: "t")
    bus.subscribe(None, lambda: "none")
    assert bus.publish(key) == ["t"]
    assert bus.publish(None) == ["none"]
    assert bus.publish(key) == ["t"]
    bus.listeners[None] = set()
    assert bus.publish(None) == []
    del bus.listeners[None]
    assert bus.publish(None) == []


def test_unsubscribe_removes_and_missing_is_a_no_op(bus):
    calls = []
    a, b = recorder(calls, "a"), recorder(calls, "b")
    bus.subscribe("ch", a)
    bus.subscribe("ch", b)
    bus.unsubscribe("ch", a)
    bus.unsubscribe("ch", a)  # again
    bus.unsubscribe("ch", recorder(calls, "never"))
    bus.unsubscribe("no such channel", a)
    assert bus.publish("ch") == ["b"]
    assert "no such channel" not in bus.listeners


def test_bound_methods_match_by_equality(bus):
    class Thing:
        def __init__(self):
            self.n = 0

        def hit(self):
            self.n += 1
            return self.n

    thing = Thing()
    bus.subscribe("ch", thing.hit)
    bus.subscribe("ch", thing.hit)  # a new but equal bound method: still one entry
    assert bus.publish("ch") == [1]
    bus.unsubscribe("ch", thing.hit)
    assert bus.publish("ch") == []


def test_decorator_form_subscribes_and_returns_the_function(bus):
    @bus.subscribe("ch")
    def first():
        return "first"

    @bus.subscribe("ch", priority=10)
    def early():
        return "early"

    assert first() == "first" and early() == "early"
    assert bus.publish("ch") == ["early", "first"]


def test_every_listener_runs_and_failures_are_raised_together(bus):
    logged = []
    bus.subscribe("log", lambda msg, level: logged.append((msg, level)))
    calls = []

    def bad_value():
        raise ValueError("one")

    def bad_key():
        raise KeyError("two")

    bus.subscribe("ch", recorder(calls, "a"), 1)
    bus.subscribe("ch", bad_value, 2)
    bus.subscribe("ch", recorder(calls, "b"), 3)
    bus.subscribe("ch", bad_key, 4)
    bus.subscribe("ch", recorder(calls, "c"), 5)
    with pytest.raises(ChannelFailures) as info:
        bus.publish("ch")
    assert [c[0] for c in calls] == ["a", "b", "c"]
    errors = info.value.get_instances()
    assert [type(e) for e in errors] == [ValueError, KeyError]
    assert str(info.value) == "ValueError('one')\nKeyError('two')"
    assert repr(info.value) == str(info.value)
    assert bool(info.value)
    assert len(logged) == 2
    for (msg, level), listener in zip(logged, (bad_value, bad_key)):
        assert level == 40
        assert msg.startswith("Error in 'ch' listener %r\n" % listener)
        assert "Traceback (most recent call last)" in msg
    assert "ValueError: one" in logged[0][0] and "KeyError: 'two'" in logged[1][0]


def test_failures_of_log_listeners_are_not_relogged(bus):
    calls = []
    bus.subscribe("log", lambda msg, level: 1 / 0)
    bus.subscribe("log", lambda msg, level: calls.append(msg))
    with pytest.raises(ChannelFailures) as info:
        bus.publish("log", "hello", 20)
    assert calls == ["hello"]
    assert [type(e) for e in info.value.get_instances()] == [ZeroDivisionError]


def test_a_failing_logger_does_not_stop_the_publish(bus):
    # Logging a listener's failure fails too: the publish still runs every listener, and
    # raises both errors at the end.
    bus.subscribe("log", lambda msg, level: 1 / 0)
    calls = []
    bus.subscribe("ch", lambda: [][1], 1)
    bus.subscribe("ch", recorder(calls, "after"), 2)
    with pytest.raises(ChannelFailures) as info:
        bus.publish("ch")
    assert [c[0] for c in calls] == ["after"]
    kinds = [type(e) for e in info.value.get_instances()]
    assert kinds[0] is IndexError and kinds[1] is ChannelFailures


def test_keyboard_interrupt_propagates_at_once(bus):
    calls = []

    def interrupt():
        raise KeyboardInterrupt

    bus.subscribe("ch", interrupt, 1)
    bus.subscribe("ch", recorder(calls, "later"), 2)
    with pytest.raises(KeyboardInterrupt):
        bus.publish("ch")
    assert calls == []


@pytest.mark.parametrize(("earlier_failure", "code", "expected"), [
    (False, 0, 0), (True, 0, 1), (True, 3, 3), (True, None, None), (True, "bye", "bye"),
])
def test_system_exit_propagates_and_code_0_becomes_1_after_failures(bus, earlier_failure, code, expected):
    calls = []
    if earlier_failure:
        bus.subscribe("ch", lambda: 1 / 0, 1)

    def leave():
        raise SystemExit(code)

    bus.subscribe("ch", leave, 2)
    bus.subscribe("ch", recorder(calls, "later"), 3)
    with pytest.raises(SystemExit) as info:
        bus.publish("ch")
    assert info.value.code == expected
    assert calls == []


def test_other_base_exceptions_propagate(bus):
    class Stop(BaseException):
        pass

    def stop():
        raise Stop

    bus.subscribe("ch", stop)
    with pytest.raises(Stop):
        bus.publish("ch")


def test_channel_failures_api_matches_wspbus():
    failures = ChannelFailures()
    assert not failures and failures.get_instances() == [] and str(failures) == ""
    try:
        raise ValueError("x")
    except ValueError:
        failures.handle_exception()
    copy = failures.get_instances()
    copy.clear()
    assert len(failures.get_instances()) == 1
    assert failures.delimiter == "\n"
    from cherrypy.process import wspbus
    public = {n for n in dir(wspbus.ChannelFailures) if not n.startswith("__")} | {"__nonzero__"}
    assert public <= set(dir(ChannelFailures))
    assert failures.__nonzero__() is True


def test_order_matches_a_reference_model_under_random_edits(bus):
    """Random subscribes, re-subscribes and unsubscribes, with ints, floats, huge ints and
    Fractions mixed, always leave the listeners sorted by (priority, first subscription)."""
    import random
    from fractions import Fraction

    rng = random.Random(1803)
    pool = [0, 1, 50, 50.0, -3, 2.5, 2**53, 2**53 + 1, float(2**53), 10**30, -(10**30),
            Fraction(1, 3), Fraction(5, 2), float("inf"), float("-inf")]
    callbacks = [recorder([], f"l{i}") for i in range(40)]
    model = {}  # callback -> (priority, first subscription number)
    counter = 0
    for _ in range(3000):
        callback = rng.choice(callbacks)
        if rng.random() < 0.35:
            bus.unsubscribe("ch", callback)
            model.pop(callback, None)
        else:
            priority = rng.choice(pool)
            bus.subscribe("ch", callback, priority)
            number = model[callback][1] if callback in model else counter
            counter += 1
            model[callback] = (priority, number)
    expected = sorted(model.items(), key=lambda item: item[1])
    assert registry_entries(bus, "ch") == [(key[0], cb) for cb, key in expected]
    assert bus.publish("ch") == [cb.__name__ for cb, _ in expected]


@pytest.mark.c_extension
def test_compiled_publish_allocates_no_more_than_the_floor():
    """The compiled core's promise: a publish allocates its result list and nothing else,
    which is exactly what the floor (a bare loop collecting results) allocates."""
    import tracemalloc

    from fastbus import _core_c
    from fastbus._bus import bus_class_on
    from fastbus._floor import Floor

    class Holder:
        def method(self, arg, key=None):
            return None

    def peak(call):
        # The least of a few tries: the first calls of a site may allocate for its own sake.
        least = None
        for _ in range(5):
            call()
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            call()
            grew = tracemalloc.get_traced_memory()[1] - before
            least = grew if least is None else min(least, grew)
        return least

    for size in (0, 1, 11, 100):
        callbacks = [Holder().method if i % 2 else (lambda arg, key=None: None) for i in range(size)]
        bus = bus_class_on(_core_c.CoreBus)()
        bus.listeners.setdefault("ch", set())
        for i, callback in enumerate(callbacks):
            bus.subscribe("ch", callback, priority=i)
        floor = Floor(callbacks)
        tracemalloc.start()
        try:
            # Literal calls, so that the call sites themselves allocate nothing.
            assert peak(lambda: bus.publish("ch", 1)) <= peak(lambda: floor.call(1)), size  # noqa: B023
            assert peak(lambda: bus.publish("ch", 1, key=2)) <= peak(lambda: floor.call(1, key=2)), size  # noqa: B023
        finally:
            tracemalloc.stop()
