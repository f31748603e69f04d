"""``apublish``: async listeners, awaited in priority order; and plain publish refusing them."""

from __future__ import annotations

import asyncio
import functools
import gc
import sys
import types

import pytest

from fastbus import ChannelFailures


def run(coroutine):
    return asyncio.run(coroutine)


def drive(awaitable):
    """Run *awaitable* with no event loop at all: apublish itself must need none."""
    coroutine = awaitable.__await__()
    try:
        while True:
            coroutine.send(None)
    except StopIteration as done:
        return done.value


class Yield:
    """An awaitable that suspends once, without any event loop."""

    def __init__(self, value):
        self.value = value

    def __await__(self):
        yield None
        return self.value


def test_mixed_listeners_run_in_priority_order_each_awaited_before_the_next(bus):
    log = []

    def sync(name):
        def listener(x):
            log.append(f"{name} ran")
            return f"{name}:{x}"
        return listener

    def asynchronous(name):
        async def listener(x):
            log.append(f"{name} began")
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            log.append(f"{name} ended")
            return f"{name}:{x}"
        return listener

    bus.subscribe("ch", asynchronous("a40"), 40)
    bus.subscribe("ch", sync("s10"), 10)
    bus.subscribe("ch", asynchronous("a20"), 20)
    bus.subscribe("ch", sync("s30"), 30)
    bus.subscribe("ch", sync("s50"), 50)
    assert run(bus.apublish("ch", 1)) == ["s10:1", "a20:1", "s30:1", "a40:1", "s50:1"]
    assert log == ["s10 ran", "a20 began", "a20 ended", "s30 ran", "a40 began", "a40 ended", "s50 ran"]


def test_every_kind_of_async_callable_is_awaited(bus):
    class Service:
        async def method(self, x):
            return ("method", x)

        async def __call__(self, x):
            return ("call", x)

    async def function(x, y):
        return ("partial", x, y)

    def returns_awaitable(x):
        return Yield(("awaitable", x))

    @types.coroutine
    def generator_based(x):
        yield None
        return ("generator", x)

    service = Service()
    bus.subscribe("ch", service.method, 1)
    bus.subscribe("ch", service, 2)
    bus.subscribe("ch", functools.partial(function, "p"), 3)
    bus.subscribe("ch", returns_awaitable, 4)
    bus.subscribe("ch", generator_based, 5)
    expected = [("method", 7), ("call", 7), ("partial", "p", 7), ("awaitable", 7), ("generator", 7)]
    assert run(bus.apublish("ch", 7)) == expected
    assert drive(bus.apublish("ch", 7)) == expected


def test_arguments_reach_every_listener_and_unknown_channels_give_nothing(bus):
    seen = []

    async def listener(*args, **kwargs):
        seen.append((args, kwargs))

    bus.subscribe("ch", listener)
    bus.subscribe("ch", lambda *a, **k: seen.append((a, k)))
    assert run(bus.apublish("ch", 1, 2, key="v")) == [None, None]
    assert seen == [((1, 2), {"key": "v"})] * 2
    assert run(bus.apublish("nobody")) == []
    assert "nobody" not in bus.listeners
    with pytest.raises(TypeError, match="channel must be hashable"):
        run(bus.apublish(["unhashable"]))


def test_apublish_runs_without_any_event_loop(bus):
    async def listener():
        return await Yield("no loop")

    bus.subscribe("ch", listener)
    bus.subscribe("ch", lambda: "sync")
    assert "asyncio" in sys.modules  # this module uses it; the core must not need it
    assert drive(bus.apublish("ch")) == ["no loop", "sync"]


def test_failures_of_both_kinds_are_logged_and_raised_together(bus):
    logged = []
    bus.subscribe("log", lambda msg, level: logged.append((msg, level)))

    async def async_fails():
        await asyncio.sleep(0)
        raise ValueError("async")

    def sync_fails():
        raise KeyError("sync")

    async def fine():
        return "fine"

    bus.subscribe("ch", async_fails, 1)
    bus.subscribe("ch", sync_fails, 2)
    bus.subscribe("ch", fine, 3)
    with pytest.raises(ChannelFailures) as caught:
        run(bus.apublish("ch"))
    errors = caught.value.get_instances()
    assert [type(e) for e in errors] == [ValueError, KeyError]
    assert [level for _, level in logged] == [40, 40]
    assert "async_fails" in logged[0][0] and "sync_fails" in logged[1][0]
    # Later listeners ran: the failures did not stop the publish.
    bus.unsubscribe("ch", async_fails)
    bus.unsubscribe("ch", sync_fails)
    assert run(bus.apublish("ch")) == ["fine"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_stop_at_once(bus, error):
    ran = []

    async def stops():
        raise error()

    bus.subscribe("ch", stops, 1)
    bus.subscribe("ch", lambda: ran.append("later"), 2)
    with pytest.raises(error):
        drive(bus.apublish("ch"))
    assert ran == []


def test_cancellation_mid_publish_propagates_and_leaves_the_bus_usable(bus):
    started = []
    later = []

    async def slow():
        started.append(True)
        await asyncio.sleep(3600)

    bus.subscribe("ch", slow, 1)
    bus.subscribe("ch", lambda: later.append(True), 2)

    async def main():
        task = asyncio.ensure_future(bus.apublish("ch"))
        while not started:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert later == []  # cancellation stopped the publish: the next listener never ran
        # The bus is as it was: edits and publishes work, in this thread and the loop.
        bus.unsubscribe("ch", slow)
        assert await bus.apublish("ch") == [None]
        assert bus.publish("ch") == [None]

    run(main())
    assert later == [True, True]


def test_once_and_weak_listeners_work_under_apublish(bus):
    calls = []

    class Owner:
        async def method(self):
            calls.append("weak")

    async def one_shot():
        calls.append("once")

    owner = Owner()
    bus.subscribe("ch", owner.method, weak=True)
    bus.subscribe("ch", one_shot, once=True)
    assert run(bus.apublish("ch")) == [None, None]
    assert run(bus.apublish("ch")) == [None]
    del owner
    gc.collect()
    assert run(bus.apublish("ch")) == []
    assert calls == ["weak", "once", "weak"]
    assert bus.subscriptions("ch") == []


def test_plain_publish_refuses_a_channel_with_an_async_listener(bus):
    ran = []

    async def handler(x):
        ran.append(x)

    bus.subscribe("ch", lambda x: ran.append(("sync", x)), 1)
    bus.subscribe("ch", handler, 2)
    with pytest.raises(TypeError) as caught:
        bus.publish("ch", 1)
    message = str(caught.value)
    assert "handler" in message and "apublish" in message and "'ch'" in message
    assert ran == []  # refused before anything ran: no half-done publish
    assert run(bus.apublish("ch", 2)) == [None, None] and ran == [("sync", 2), 2]
    # Once the async listener is gone, publish works again.
    bus.unsubscribe("ch", handler)
    assert bus.publish("ch", 3) == [None]


def test_async_listeners_are_recognised_in_every_form(bus):
    class Handler:
        async def __call__(self):
            pass

        async def method(self):
            pass

    async def function():
        pass

    for listener in (function, Handler().method, Handler(), functools.partial(function)):
        bus.subscribe("ch", listener)
        with pytest.raises(TypeError, match="apublish"):
            bus.publish("ch")
        bus.unsubscribe("ch", listener)
        assert bus.publish("ch") == []


@pytest.mark.skipif(sys.version_info < (3, 12), reason="inspect.markcoroutinefunction is new in 3.12")
def test_a_function_marked_as_a_coroutine_function_is_refused_too(bus):
    import inspect

    def marked():
        return Yield("marked")

    inspect.markcoroutinefunction(marked)
    bus.subscribe("ch", marked)
    with pytest.raises(TypeError, match="apublish"):
        bus.publish("ch")
    assert run(bus.apublish("ch")) == ["marked"]


def test_a_plain_function_returning_an_awaitable_is_returned_unawaited_by_publish(bus):
    # Documented: it cannot be recognised beforehand, so publish hands the awaitable back.
    awaitable = Yield("later")
    bus.subscribe("ch", lambda: awaitable)
    assert bus.publish("ch") == [awaitable]
    assert run(bus.apublish("ch")) == ["later"]


def test_an_async_listener_added_through_the_listeners_view_is_recognised(bus):
    async def handler():
        return "awaited"

    bus.listeners["ch"] = {handler}
    with pytest.raises(TypeError, match="apublish"):
        bus.publish("ch")
    bus.listeners.setdefault("other").add(handler)
    with pytest.raises(TypeError, match="apublish"):
        bus.publish("other")
    assert run(bus.apublish("ch")) == ["awaited"]


def test_a_listener_edited_during_apublish_changes_the_next_publish_only(bus):
    log = []

    async def first():
        bus.subscribe("ch", late, 3)
        bus.unsubscribe("ch", second)
        await asyncio.sleep(0)
        log.append("first")

    def second():
        log.append("second")

    def late():
        log.append("late")

    bus.subscribe("ch", first, 1)
    bus.subscribe("ch", second, 2)
    run(bus.apublish("ch"))
    assert log == ["first", "second"]
    log.clear()
    run(bus.apublish("ch"))
    assert log == ["first", "late"]
