"""What both cores share about subscriptions: how they are described, and how they are scoped.

:class:`Subscription` is what :meth:`Bus.subscriptions` lists; :class:`Subscribed` is what
:meth:`Bus.subscribed` returns. Both are written once, on top of the core's registry.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from types import MethodType, TracebackType
from typing import Any, Callable, NamedTuple

__all__ = ("Subscribed", "Subscription", "needs_apublish")


class Subscription(NamedTuple):
    """One listener of a channel, as :meth:`Bus.subscriptions` lists it (in call order).

    *callback* is the callable the bus calls; for a weak subscription to a bound method it is
    a new bound method each time (equal to the one subscribed), since the bus keeps only weak
    references to the object and its function.
    """

    callback: Callable[..., Any]
    priority: Any
    weak: bool
    once: bool


def needs_apublish(channel: Hashable, listener: object) -> TypeError:
    """The error of a plain publish to a channel with an ``async def`` listener."""
    return TypeError(
        f"channel {channel!r} has an async listener {listener!r}, which publish() cannot "
        "await (its coroutine would never run): use 'await bus.apublish(...)' for this channel"
    )


class Subscribed:
    """A subscription for the length of a ``with`` (or ``async with``) block.

    Entering subscribes; leaving, also by an exception, puts the channel back as it was for
    this callback: unsubscribed, or, if the callback was already subscribed there when the
    block began, subscribed again as it was then (priority, weak, once), in its old place
    among equal priorities. So nested blocks for the same callback unwind one by one.
    Entering returns the callback. A weak scope holds the callback weakly too, so the block
    does not keep it alive either.
    """

    __slots__ = ("_bus", "_channel", "_callback", "_priority", "_weak", "_once", "_before")

    def __init__(self, bus: Any, channel: Hashable, callback: Callable[..., Any], priority: Any, weak: bool,
                 once: bool) -> None:
        # Checked here, so that a mistake surfaces at the call that made it, not at ``with``.
        from ._arguments import check_callback, check_channel, check_flag, resolve_priority

        check_channel(channel)
        check_callback(callback)
        resolve_priority(callback, priority)
        check_flag(weak, "weak")
        check_flag(once, "once")
        self._bus = bus
        self._channel = channel
        self._callback = _hold(callback, weak)
        self._priority = priority
        self._weak = weak
        self._once = once
        # A stack, as the same object may be entered again, nested: for each entry, how the
        # callback was subscribed before it (None: it was not).
        self._before: list[tuple[Callable[[], Any], Any, bool, bool] | None] = []

    def __enter__(self) -> Callable[..., Any]:
        bus = self._bus
        callback: Callable[..., Any] | None = self._callback()
        if callback is None:
            raise ReferenceError(f"the weakly held callback of {self!r} is gone")
        before = next((s for s in bus.subscriptions(self._channel) if s.callback == callback), None)
        bus.subscribe(self._channel, callback, self._priority, weak=self._weak, once=self._once)
        self._before.append(None if before is None else (_hold(before.callback, before.weak), *before[1:]))
        return callback

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        before = self._before.pop()
        callback = self._callback()
        if callback is None:
            return  # collected meanwhile, and so unsubscribed already
        if before is None:
            self._bus.unsubscribe(self._channel, callback)
        else:
            held, priority, weak, once = before
            if held() is not None:
                self._bus.subscribe(self._channel, callback, priority, weak=weak, once=once)

    async def __aenter__(self) -> Callable[..., Any]:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self.__exit__(kind, error, traceback)

    def __repr__(self) -> str:
        return f"<Subscribed {self._callback()!r} to {self._channel!r}>"


def _hold(callback: Callable[..., Any], weak: bool) -> Callable[[], Any]:
    """A function giving *callback* back: weakly, if *weak*, as the bus holds it then."""
    if not weak:
        return lambda: callback
    if isinstance(callback, MethodType):
        return weakref.WeakMethod(callback)
    return weakref.ref(callback)
