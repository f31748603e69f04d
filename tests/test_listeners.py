"""``bus.listeners`` stays truthful and usable the ways CherryPy uses it."""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSet

import pytest
from _registry import entries as registry_entries


def a():
    return "a"


def b():
    return "b"


def test_is_a_mapping_of_channels_to_live_sets(bus):
    assert isinstance(bus.listeners, MutableMapping)
    view = bus.listeners["start"]
    assert isinstance(view, MutableSet)
    assert len(view) == 0
    bus.subscribe("start", a)
    assert len(view) == 1 and a in view and list(view) == [a]
    assert view == {a}


def test_iteration_follows_call_order(bus):
    bus.subscribe("ch", b, 20)
    bus.subscribe("ch", a, 10)
    assert list(bus.listeners["ch"]) == [a, b]


def test_setdefault_declares_a_channel_and_keeps_an_existing_one(bus):
    view = bus.listeners.setdefault("acquire_thread", set())
    assert "acquire_thread" in bus.listeners and len(view) == 0
    bus.subscribe("acquire_thread", a)
    bus.listeners.setdefault("acquire_thread", set())
    assert list(bus.listeners["acquire_thread"]) == [a]
    assert bus.publish("acquire_thread") == ["a"]


def test_setdefault_with_callbacks_subscribes_them_only_when_new(bus):
    bus.listeners.setdefault("x", [a])
    bus.listeners.setdefault("x", [b])
    assert bus.publish("x") == ["a"]


def test_assigning_an_empty_set_resets_the_channel(bus):
    bus.subscribe("before_request", a)
    bus.listeners["before_request"] = set()
    assert len(bus.listeners["before_request"]) == 0
    assert bus.publish("before_request") == []
    bus.subscribe("before_request", b)
    assert bus.publish("before_request") == ["b"]


def test_assigning_callbacks_subscribes_them_at_their_priority(bus):
    a.priority = 70
    try:
        bus.listeners["ch"] = [a, b]
        assert bus.publish("ch") == ["b", "a"]
    finally:
        del a.priority


def test_add_and_discard_go_through_subscribe_and_unsubscribe(bus):
    calls = []

    class Recording(type(bus)):
        def subscribe(self, channel, callback=None, priority=None):
            calls.append(("sub", channel))
            return super().subscribe(channel, callback, priority)

        def unsubscribe(self, channel, callback):
            calls.append(("unsub", channel))
            return super().unsubscribe(channel, callback)

    rec = Recording()
    rec.listeners["main"].add(a)
    assert rec.publish("main") == ["a"]
    rec.listeners["main"].discard(a)
    assert rec.publish("main") == []
    assert calls == [("sub", "main"), ("unsub", "main")]


def test_delete_a_channel(bus):
    bus.subscribe("ch", a)
    del bus.listeners["ch"]
    assert "ch" not in bus.listeners
    assert bus.publish("ch") == []


def test_missing_channel_is_a_key_error_and_get_returns_default(bus):
    import pytest

    with pytest.raises(KeyError):
        bus.listeners["nope"]
    assert bus.listeners.get("nope") is None
    assert "nope" not in bus.listeners


def test_len_items_and_repr(bus):
    bus.subscribe("ch", a)
    assert len(bus.listeners) == 7
    assert dict(bus.listeners.items())["ch"] == {a}
    text = repr(bus.listeners)
    assert "'ch': {<function a" in text and "'start': set()" in text


def test_publish_after_resetting_or_deleting_a_channel_sees_the_change(bus):
    # The compiled core remembers the channel published last; resetting or deleting the
    # channel must make it forget.
    bus.subscribe("ch", a)
    assert bus.publish("ch") == ["a"]
    bus.listeners["ch"] = set()
    bus.subscribe("ch", b)
    assert bus.publish("ch") == ["b"]
    del bus.listeners["ch"]
    assert bus.publish("ch") == []
    bus.subscribe("ch", a)
    assert bus.publish("ch") == ["a"]


def test_assigning_checks_every_callback_before_changing_anything(bus):
    def bad():
        return "bad"

    bad.priority = "high"
    bus.subscribe("ch", a, priority=5)
    with pytest.raises(TypeError, match=r"callback\.priority must be a real number"):
        bus.listeners["ch"] = [b, bad]
    assert registry_entries(bus, "ch") == [(5, a)]
    with pytest.raises(TypeError, match="callback must be callable"):
        bus.listeners.setdefault("new", [b, "not callable"])
    assert "new" not in bus.listeners


def test_assigning_keeps_the_priority_of_callbacks_already_there(bus):
    bus.subscribe("ch", a, priority=90)
    bus.subscribe("ch", b, priority=10)
    bus.listeners["ch"] = [a, c]
    assert registry_entries(bus, "ch") == [(50, c), (90, a)]


def c():
    return "c"


def test_in_place_operators_keep_every_remaining_priority(bus):
    bus.subscribe("ch", a, priority=90)
    bus.subscribe("ch", b, priority=10)
    bus.subscribe("ch", c, priority=40)
    bus.listeners["ch"] -= {c}
    assert registry_entries(bus, "ch") == [(10, b), (90, a)]
    bus.listeners["ch"] |= {a, c}
    assert registry_entries(bus, "ch") == [(10, b), (50, c), (90, a)]
    bus.listeners["ch"] &= {a, b}
    assert registry_entries(bus, "ch") == [(10, b), (90, a)]
    bus.listeners["ch"] ^= {b, c}
    assert registry_entries(bus, "ch") == [(50, c), (90, a)]
    assert bus.publish("ch") == ["c", "a"]


def test_set_operators_return_plain_sets(bus):
    bus.subscribe("ch", a)
    bus.subscribe("ch", b)
    view = bus.listeners["ch"]
    for result, expected in [
        (view | {c}, {a, b, c}),
        (view - {a}, {b}),
        (view & {a, c}, {a}),
        (view ^ {a, c}, {b, c}),
        ({c} | view, {a, b, c}),
    ]:
        assert type(result) is set and result == expected
    assert registry_entries(bus, "ch") == [(50, a), (50, b)]


def test_copies_are_plain_snapshots(bus):
    bus.subscribe("ch", a)
    channel_copy = bus.listeners["ch"].copy()
    mapping_copy = bus.listeners.copy()
    bus.subscribe("ch", b)
    assert type(channel_copy) is set and channel_copy == {a}
    assert type(mapping_copy) is dict and mapping_copy["ch"] == {a} and mapping_copy["start"] == set()


def test_pop_returns_the_listeners_it_removed(bus):
    bus.subscribe("ch", a)
    bus.subscribe("ch", b)
    removed = bus.listeners.pop("ch")
    assert type(removed) is set and removed == {a, b}
    assert "ch" not in bus.listeners and bus.publish("ch") == []
    assert bus.listeners.pop("ch", None) is None
    with pytest.raises(KeyError):
        bus.listeners.pop("ch")
    channel, listeners = bus.listeners.popitem()
    assert channel == "start" and listeners == set()


def test_add_keeps_the_priority_of_a_callback_already_there(bus):
    bus.subscribe("ch", a, priority=90)
    bus.listeners["ch"].add(a)
    assert registry_entries(bus, "ch") == [(90, a)]
