"""Bad input fails at the call that made it, naming the argument, and registers nothing."""

from __future__ import annotations

import fractions
import math

import pytest
from _registry import entries as registry_entries


def f():
    return "f"


NOT_CALLABLE = [None, 1, "text", object()]
BAD_PRIORITIES = ["10", b"1", True, False, None.__class__, 1j, [1], object()]


@pytest.mark.parametrize("callback", NOT_CALLABLE[1:])
def test_non_callable_callback(bus, callback):
    with pytest.raises(TypeError, match=r"^callback must be callable"):
        bus.subscribe("ch", callback)
    assert "ch" not in bus.listeners


def test_unhashable_callback(bus):
    class Unhashable:
        __hash__ = None

        def __call__(self):
            return None

    with pytest.raises(TypeError, match=r"^callback must be hashable"):
        bus.subscribe("ch", Unhashable())
    with pytest.raises(TypeError, match=r"^callback must be hashable"):
        bus.unsubscribe("ch", Unhashable())
    assert "ch" not in bus.listeners


@pytest.mark.parametrize("priority", BAD_PRIORITIES)
def test_priority_that_is_not_a_real_number(bus, priority):
    with pytest.raises(TypeError, match=r"^priority must be a real number"):
        bus.subscribe("ch", f, priority)
    with pytest.raises(TypeError, match=r"^priority must be a real number"):
        bus.subscribe("ch", priority=priority)
    assert "ch" not in bus.listeners


def test_bad_priority_attribute_is_named(bus):
    def g():
        return None

    g.priority = "high"
    with pytest.raises(TypeError, match=r"^callback\.priority must be a real number, not 'str'"):
        bus.subscribe("ch", g)
    assert "ch" not in bus.listeners


def test_callable_priority_attribute_is_a_method_not_a_priority(bus):
    from unittest import mock

    class Job:
        def __call__(self):
            return "job"

        def priority(self):
            return "urgent"

    bus.subscribe("ch", Job())
    callback = mock.MagicMock(return_value="mock")
    bus.subscribe("ch", callback)
    assert [p for p, _ in registry_entries(bus, "ch")] == [50, 50]
    assert bus.publish("ch") == ["job", "mock"]


def test_nan_priority(bus):
    with pytest.raises(ValueError, match="priority must not be NaN"):
        bus.subscribe("ch", f, math.nan)
    assert "ch" not in bus.listeners


@pytest.mark.parametrize("priority", [0, -5, 2**70, 1.5, -math.inf, fractions.Fraction(1, 3)])
def test_real_priorities_are_accepted(bus, priority):
    bus.subscribe("ch", f, priority)
    assert registry_entries(bus, "ch") == [(priority, f)]


def test_mixed_real_priorities_order_exactly(bus):
    bus.subscribe("ch", lambda: "third", 2**60 + 1)
    bus.subscribe("ch", lambda: "second", fractions.Fraction(1, 3))
    bus.subscribe("ch", lambda: "first", 0.25)
    bus.subscribe("ch", lambda: "fourth", math.inf)
    assert bus.publish("ch") == ["first", "second", "third", "fourth"]


@pytest.mark.parametrize("channel", [[], {}, {1}, ["a"]])
def test_unhashable_channel(bus, channel):
    for call in (
        lambda: bus.subscribe(channel, f),
        lambda: bus.subscribe(channel),
        lambda: bus.unsubscribe(channel, f),
        lambda: bus.publish(channel),
        lambda: bus.listeners.__setitem__(channel, set()),
        lambda: bus.listeners.setdefault(channel, set()),
    ):
        with pytest.raises(TypeError, match=r"^channel must be hashable, not"):
            call()


def test_failed_resubscribe_keeps_the_old_registration(bus):
    bus.subscribe("ch", f, 10)
    with pytest.raises(TypeError):
        bus.subscribe("ch", f, "20")
    assert registry_entries(bus, "ch") == [(10, f)]


def test_listeners_assignment_checks_every_callback_first(bus):
    bus.subscribe("ch", f)
    with pytest.raises(TypeError, match="callback must be callable"):
        bus.listeners["ch"] = {lambda: None, 3}
    assert list(bus.listeners["ch"]) == [f]
    with pytest.raises(TypeError, match="iterable of callbacks"):
        bus.listeners["ch"] = 5
    assert list(bus.listeners["ch"]) == [f]


@pytest.mark.parametrize(("interval", "error"), [("1", TypeError), (True, TypeError), (-1, ValueError), (math.nan, ValueError)])
def test_wait_interval(bus, interval, error):
    with pytest.raises(error, match="interval"):
        bus.wait(bus.states.STOPPED, interval=interval)


def test_start_with_callback_needs_a_callable(bus):
    with pytest.raises(TypeError, match="func must be callable"):
        bus.start_with_callback(42)
    assert bus.state is bus.states.STOPPED


def test_every_number_argument_is_checked_alike(bus):
    """Priorities, intervals and frequencies accept the same numbers and refuse in one voice."""
    from fractions import Fraction

    from fastbus.plugins import BackgroundTask, Monitor

    checks = {
        "priority": lambda v: bus.subscribe("ch", f, priority=v),
        "interval": lambda v: bus.wait(bus.states.STOPPED, interval=v),
        "frequency": lambda v: Monitor(bus, f, frequency=v),
        "task interval": lambda v: BackgroundTask(v, f),
    }
    for name, check in checks.items():
        argument = name.split()[-1]
        check(Fraction(1, 2))  # any numbers.Real
        for bad in ("1", True, [1]):
            with pytest.raises(TypeError, match=rf"^{argument} must be a real number, not '{type(bad).__name__}'$"):
                check(bad)
        with pytest.raises(ValueError, match=rf"^{argument} must not be NaN"):
            check(math.nan)
