"""``bus.subscribed(...)``: a subscription for the length of a block; and ``bus.subscriptions``."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from fastbus import Subscription


def listener(*args):
    return "listener"


def test_subscribed_for_the_block_only(bus):
    with bus.subscribed("ch", listener, 10) as entered:
        assert entered is listener
        assert bus.publish("ch") == ["listener"]
        assert bus.subscriptions("ch") == [Subscription(listener, 10, False, False)]
    assert bus.publish("ch") == []
    assert bus.subscriptions("ch") == []


def test_unsubscribed_when_the_block_raises(bus):
    with pytest.raises(ZeroDivisionError), bus.subscribed("ch", listener):
        assert bus.publish("ch") == ["listener"]
        1 / 0  # noqa: B018
    assert bus.publish("ch") == []


def test_leaving_restores_a_subscription_that_was_there_before(bus):
    bus.subscribe("ch", lambda: "before", 50)
    bus.subscribe("ch", listener, 50)
    bus.subscribe("ch", lambda: "after", 50)
    with bus.subscribed("ch", listener, 1, once=True):
        assert bus.subscriptions("ch")[0] == Subscription(listener, 1, False, True)
    # Back as it was: same priority, same place among equals, no longer one-shot.
    assert bus.publish("ch") == ["before", "listener", "after"]
    assert bus.subscriptions("ch")[1] == Subscription(listener, 50, False, False)


def test_nested_blocks_unwind_one_by_one(bus):
    other = lambda: "other"  # noqa: E731
    with bus.subscribed("ch", listener, 30):
        with bus.subscribed("ch", other, 20):
            with bus.subscribed("ch", listener, 10):
                assert bus.publish("ch") == ["listener", "other"]
            assert bus.publish("ch") == ["other", "listener"]
            assert bus.subscriptions("ch")[1].priority == 30
        assert bus.publish("ch") == ["listener"]
    assert bus.publish("ch") == []


def test_the_same_scope_object_can_be_entered_again_nested(bus):
    scope = bus.subscribed("ch", listener)
    with scope:
        with scope:
            assert bus.publish("ch") == ["listener"]
        assert bus.publish("ch") == ["listener"]
    assert bus.publish("ch") == []


def test_a_one_shot_scope_used_up_inside_the_block(bus):
    with bus.subscribed("ch", listener, once=True):
        assert bus.publish("ch") == ["listener"]
        assert bus.publish("ch") == []
    assert bus.publish("ch") == []


def test_a_weak_scope_does_not_keep_the_object_alive(bus):
    class Owner:
        def method(self):
            return "owner"

    owner = Owner()
    ref = weakref.ref(owner)
    with bus.subscribed("ch", owner.method, weak=True):
        assert bus.publish("ch") == ["owner"]
        del owner
        gc.collect()
        assert ref() is None
        assert bus.publish("ch") == []
    assert bus.subscriptions("ch") == []


def test_async_with(bus):
    async def handler():
        return "async"

    async def main():
        async with bus.subscribed("ch", handler) as entered:
            assert entered is handler
            assert await bus.apublish("ch") == ["async"]
        assert await bus.apublish("ch") == []
        with pytest.raises(KeyError):
            async with bus.subscribed("ch", handler):
                raise KeyError("inside")
        assert bus.subscriptions("ch") == []

    asyncio.run(main())


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "words"),
    [
        ((["unhashable"], listener), {}, TypeError, "channel must be hashable"),
        (("ch", 42), {}, TypeError, "callback must be callable"),
        (("ch", listener, "high"), {}, TypeError, "priority must be a real number"),
        (("ch", listener), {"weak": "yes"}, TypeError, "weak must be True or False"),
        (("ch", listener), {"once": 1}, TypeError, "once must be True or False"),
    ],
)
def test_bad_arguments_are_refused_at_the_call_not_at_the_with(bus, args, kwargs, error, words):
    with pytest.raises(error, match=words):
        bus.subscribed(*args, **kwargs)
    assert bus.subscriptions("ch") == []


def test_subscriptions_list_every_listener_in_call_order(bus):
    def a():
        pass

    def b():
        pass

    async def c():
        pass

    bus.subscribe("ch", b, 20)
    bus.subscribe("ch", a, 10)
    bus.subscribe("ch", c, 20, once=True)
    assert bus.subscriptions("ch") == [
        Subscription(a, 10, False, False),
        Subscription(b, 20, False, False),
        Subscription(c, 20, False, True),
    ]
    first = bus.subscriptions("ch")[0]
    assert (first.callback, first.priority, first.weak, first.once) == (a, 10, False, False)
    assert bus.subscriptions("unknown") == []
    assert "unknown" not in bus.listeners
    with pytest.raises(TypeError, match="channel must be hashable"):
        bus.subscriptions(["unhashable"])


def test_subscriptions_are_a_snapshot(bus):
    bus.subscribe("ch", listener)
    snapshot = bus.subscriptions("ch")
    bus.unsubscribe("ch", listener)
    assert snapshot == [Subscription(listener, 50, False, False)]
    assert bus.subscriptions("ch") == []
