"""The reference core: the subscriber registry and the dispatch loop, in pure Python.

This module is the contract; ``_core_c.pyx`` is its compiled twin, with the same names,
signatures and behaviour, and the test suite runs every behavioural test on both.

Each channel keeps its subscribers already sorted by ``(priority, subscription number)``, so
a publish never sorts, hashes or looks anything up per listener: it takes the channel's
current tuple of callbacks and calls them in order. (Un)subscribing builds a new tuple under
the bus's lock and swaps it in, so a publish in progress, in this thread or another, keeps the
tuple it started with: it never skips or repeats a listener, and changes made meanwhile (from
inside a listener, too) take effect from the next publish.
"""

from __future__ import annotations

import numbers
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from itertools import count
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

from ._arguments import check_callback, check_channel, resolve_priority, subscriber
from ._errors import listener_failed

__all__ = ("CoreBus",)

_F = TypeVar("_F", bound=Callable[..., Any])


class _Channel:
    """The subscribers of one channel.

    ``callbacks`` is what publish reads: a tuple, replaced (never changed) on each edit, so
    a publish holds a consistent snapshot. ``keys`` holds the parallel ``(priority, number)``
    sort keys (a list, changed in place) and ``index`` maps each callback to its key.

    Every step that can fail or run Python code (hashing, comparing priorities, allocating,
    which can run a finalizer) comes before anything changes, so an edit happens whole or not
    at all; then ``keys`` and ``callbacks`` change together with nothing allocated between.
    """

    __slots__ = ("callbacks", "keys", "index")

    def __init__(self) -> None:
        self.callbacks: tuple[Callable[..., Any], ...] = ()
        self.keys: list[tuple[Any, int]] = []
        self.index: dict[Callable[..., Any], tuple[Any, int]] = {}

    def subscribe(self, callback: Callable[..., Any], priority: Any, number: int, keep: bool) -> None:
        """Add *callback*, or give the one already here *priority* (unless *keep*)."""
        keys, callbacks = self.keys, self.callbacks
        old = self.index.get(callback)
        if old is None:
            key = (priority, number)
            at = bisect_right(keys, key)
            self.index[callback] = key
            callbacks = callbacks[:at] + (callback,) + callbacks[at:]
            keys.insert(at, key)
            self.callbacks = callbacks
            return
        if keep:
            return
        # The first object subscribed stays, as in a set; only its priority changes.
        was = bisect_left(keys, old)
        key = (priority, old[1])
        at = bisect_right(keys, key)  # counting the old entry, if it sorts before
        if at > was:
            at -= 1
        self.index[callback] = key
        stored = callbacks[was]
        rest = callbacks[:was] + callbacks[was + 1 :]
        callbacks = rest[:at] + (stored,) + rest[at:]
        del keys[was]  # *old* still holds the key (and its priority): nothing is freed here
        keys.insert(at, key)
        self.callbacks = callbacks

    def unsubscribe(self, callback: Callable[..., Any]) -> None:
        keys, callbacks = self.keys, self.callbacks
        old = self.index.get(callback)
        if old is None:
            return
        at = bisect_left(keys, old)
        del self.index[callback]
        callbacks = callbacks[:at] + callbacks[at + 1 :]
        del keys[at]
        self.callbacks = callbacks


class CoreBus:
    """Topic publish/subscribe: the registry and dispatch that :class:`fastbus.Bus` builds on.

    Listeners of a channel run in priority order (lower first); equal priorities run in the
    order they were first subscribed.
    """

    _channels: dict[Hashable, _Channel]
    _lock: threading.RLock
    _numbers: Iterator[int]
    _editing: bool
    _pending: deque[tuple[Callable[..., None], tuple[Any, ...]]]

    if TYPE_CHECKING:
        # Provided by the lifecycle Bus; a failing listener is logged through it.
        def log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None: ...

    def __new__(cls, *args: Any, **kwargs: Any) -> CoreBus:
        # In __new__, as the compiled core does in __cinit__: a subclass that forgets to call
        # __init__ still gets a working registry.
        self = super().__new__(cls)
        self._channels = {}
        self._lock = threading.RLock()
        self._numbers = count()
        self._editing = False
        self._pending = deque()
        return self

    def _edit(self, action: Callable[..., None], *args: Any) -> None:
        """Apply a registry edit under the lock, one edit at a time.

        An edit may run Python code midway (a callback's ``__hash__`` or ``__eq__``, a
        priority's comparison, a finalizer run by the garbage collector), and that code may
        edit the registry again, in this thread since the lock is held. Such a nested edit is
        queued and applied right after the current one, never on its halfway state; it is
        applied even if the current one fails, whose error is then raised (the first error,
        if several failed).
        """
        with self._lock:
            self._pending.append((action, args))
            if self._editing:
                return
            self._editing = True
            error = None
            try:
                while self._pending:
                    action, args = self._pending.popleft()
                    try:
                        action(*args)
                    except BaseException as exc:
                        if error is None:
                            error = exc
            finally:
                self._editing = False
            if error is not None:
                try:
                    raise error
                finally:
                    del error

    @overload
    def subscribe(
        self, channel: Hashable, callback: None = None, priority: float | numbers.Real | None = None
    ) -> Callable[[_F], _F]: ...

    @overload
    def subscribe(
        self, channel: Hashable, callback: Callable[..., Any], priority: float | numbers.Real | None = None
    ) -> None: ...

    def subscribe(
        self,
        channel: Hashable,
        callback: Callable[..., Any] | None = None,
        priority: float | numbers.Real | None = None,
    ) -> Callable[[_F], _F] | None:
        """Call *callback* on each publish to *channel*, at *priority* (lower runs first).

        Without *priority*, the callback's ``priority`` attribute is used, else 50. Subscribing
        a callback again (or one equal to it) keeps the first one's single entry and its place
        among equal priorities, and takes the new priority. Without *callback*, return a
        decorator that subscribes the function it decorates and returns it unchanged.

        Raises TypeError for an unhashable *channel*, a *callback* that is not callable or not
        hashable, or a *priority* that is not a real number (ValueError for NaN); nothing is
        registered then.
        """
        if callback is None:
            return subscriber(self.subscribe, channel, priority)
        check_channel(channel)
        check_callback(callback)
        priority = resolve_priority(callback, priority)
        self._edit(self._subscribe_now, channel, callback, priority, False)
        return None

    def _subscribe_now(self, channel: Hashable, callback: Callable[..., Any], priority: Any, keep: bool) -> None:
        chan = self._channels.get(channel)
        if chan is None:
            chan = _Channel()
            chan.subscribe(callback, priority, next(self._numbers), keep)
            self._channels[channel] = chan
        else:
            chan.subscribe(callback, priority, next(self._numbers), keep)

    def unsubscribe(self, channel: Hashable, callback: Callable[..., Any]) -> None:
        """Stop calling *callback* on *channel*; a no-op if it is not subscribed there.

        Callbacks match by equality, as in a set, so ``bus.unsubscribe('x', obj.method)``
        removes a bound method subscribed earlier through another ``obj.method``.
        """
        check_channel(channel)
        try:
            hash(callback)
        except TypeError:
            check_callback(callback)
        self._edit(self._unsubscribe_now, channel, callback)

    def _unsubscribe_now(self, channel: Hashable, callback: Callable[..., Any]) -> None:
        chan = self._channels.get(channel)
        if chan is not None:
            chan.unsubscribe(callback)

    def publish(self, channel: Hashable, /, *args: Any, **kwargs: Any) -> list[Any]:
        """Call every listener of *channel* with the given arguments; return their results.

        The results come in call order; an unknown channel gives ``[]`` (and is not created).
        Every listener runs even if others fail: each failure is logged to ``log`` at level 40
        with its traceback (except failures of ``log`` listeners themselves), and all of them
        are raised together afterwards as :class:`ChannelFailures`. KeyboardInterrupt stops the
        publish at once; so does SystemExit, whose code 0 becomes 1 if a listener already
        failed in this publish.
        """
        try:
            chan = self._channels.get(channel)
        except TypeError:
            check_channel(channel)
            raise
        if chan is None:
            return []
        # Taken before anything allocates (and so before the garbage collector can run a
        # finalizer that edits the channel): the listeners as they stood when publish began.
        callbacks = chan.callbacks
        output = []
        failures = None
        for listener in callbacks:
            try:
                output.append(listener(*args, **kwargs))
            except BaseException:
                failures = listener_failed(self, channel, listener, failures)
                output.append(None)
        if failures is not None:
            raise failures
        return output

    # The registry, for the ``listeners`` mapping and the lifecycle: snapshots and edits of
    # whole channels. Callbacks and priorities given to these are checked by the caller.

    def _channel_names(self) -> list[Hashable]:
        """Return the channels, in the order they were created."""
        with self._lock:
            return list(self._channels)

    def _has_channel(self, channel: Hashable) -> bool:
        return channel in self._channels

    def _listeners_of(self, channel: Hashable) -> tuple[Callable[..., Any], ...]:
        """Return the listeners of *channel* in call order; KeyError if there is no such."""
        return self._channels[channel].callbacks

    def _entries(self, channel: Hashable) -> list[tuple[Any, Callable[..., Any]]]:
        """Return ``(priority, callback)`` for each listener of *channel*, in call order."""
        with self._lock:  # another thread's edit changes keys and callbacks one after the other
            chan = self._channels[channel]
            while True:
                callbacks = chan.callbacks
                keys = list(chan.keys)
                # Every edit replaces the callbacks tuple: if it is the same one, no edit (from a
                # finalizer the copy let the collector run) came between the two reads.
                if chan.callbacks is callbacks:
                    return [(key[0], cb) for key, cb in zip(keys, callbacks)]

    def _set_listeners(
        self, channel: Hashable, entries: Iterable[tuple[Callable[..., Any], Any]], only_if_new: bool = False
    ) -> None:
        """Make *entries* ``(callback, priority)`` the listeners of *channel*, all at once.

        A callback already subscribed there keeps its priority and place. With *only_if_new*,
        an existing channel is left as it is. Nothing changes if building the new list fails.
        """
        check_channel(channel)
        self._edit(self._set_now, channel, tuple(entries), only_if_new)

    def _set_now(
        self, channel: Hashable, entries: tuple[tuple[Callable[..., Any], Any], ...], only_if_new: bool
    ) -> None:
        old = self._channels.get(channel)
        if old is not None and only_if_new:
            return
        chan = _Channel()
        for callback, priority in entries:
            kept = old.index.get(callback) if old is not None else None
            if kept is None:
                chan.subscribe(callback, priority, next(self._numbers), True)
            else:
                chan.subscribe(callback, kept[0], kept[1], True)
        self._channels[channel] = chan

    def _remove_channel(self, channel: Hashable) -> tuple[Callable[..., Any], ...]:
        """Forget *channel*; return the listeners it had. KeyError if there is no such."""
        with self._lock:
            callbacks = self._channels[channel].callbacks
            self._edit(self._channels.__delitem__, channel)
            return callbacks
