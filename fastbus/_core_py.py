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

import threading
from bisect import bisect_left, bisect_right
from collections import deque
from itertools import count
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator

from ._arguments import check_callback, check_channel, resolve_priority, subscriber
from ._errors import ChannelFailures

__all__ = ("CoreBus",)


class _Channel:
    """The subscribers of one channel.

    ``callbacks`` is what publish reads, replaced (never changed) on each edit; ``keys`` holds
    the parallel ``(priority, number)`` sort keys and ``index`` maps each callback to its key.
    Only ``callbacks`` is read without the lock.
    """

    __slots__ = ("callbacks", "keys", "index")

    def __init__(self) -> None:
        self.callbacks: tuple[Callable[..., Any], ...] = ()
        self.keys: list[tuple[Any, int]] = []
        self.index: dict[Callable[..., Any], tuple[Any, int]] = {}

    def insert(self, callback: Callable[..., Any], key: tuple[Any, int]) -> None:
        at = bisect_right(self.keys, key)
        self.keys.insert(at, key)
        self.callbacks = self.callbacks[:at] + (callback,) + self.callbacks[at:]
        self.index[callback] = key

    def remove(self, callback: Callable[..., Any]) -> tuple[Any, int]:
        key = self.index.pop(callback)
        at = bisect_left(self.keys, key)
        del self.keys[at]
        self.callbacks = self.callbacks[:at] + self.callbacks[at + 1 :]
        return key


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
        queued and applied right after the current one, never on its halfway state.
        """
        with self._lock:
            self._pending.append((action, args))
            if self._editing:
                return
            self._editing = True
            try:
                while self._pending:
                    action, args = self._pending.popleft()
                    action(*args)
            finally:
                self._editing = False

    def subscribe(
        self,
        channel: Hashable,
        callback: Callable[..., Any] | None = None,
        priority: float | None = None,
    ) -> Any:
        """Call *callback* on each publish to *channel*, at *priority* (lower runs first).

        Without *priority*, the callback's ``priority`` attribute is used, else 50. Subscribing
        a callback again keeps one entry and takes the new priority; it keeps its place among
        equal priorities. Without *callback*, return a decorator that subscribes the function
        it decorates and returns it unchanged.

        Raises TypeError for an unhashable *channel*, a *callback* that is not callable or not
        hashable, or a *priority* that is not a real number (ValueError for NaN); nothing is
        registered then.
        """
        if callback is None:
            return subscriber(self.subscribe, channel, priority)
        check_channel(channel)
        check_callback(callback)
        priority = resolve_priority(callback, priority)
        self._edit(self._subscribe_now, channel, callback, priority)
        return None

    def _subscribe_now(self, channel: Hashable, callback: Callable[..., Any], priority: Any) -> None:
        chan = self._channels.get(channel)
        if chan is None:
            chan = self._channels[channel] = _Channel()
        old = chan.index.get(callback)
        if old is None:
            chan.insert(callback, (priority, next(self._numbers)))
        else:
            chan.remove(callback)
            chan.insert(callback, (priority, old[1]))

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
        if chan is not None and callback in chan.index:
            chan.remove(callback)

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
        output = []
        failures = None
        for listener in chan.callbacks:
            try:
                output.append(listener(*args, **kwargs))
            except KeyboardInterrupt:
                raise
            except SystemExit as exit_:
                if failures is not None and exit_.code == 0:
                    exit_.code = 1
                raise
            except Exception:
                if failures is None:
                    failures = ChannelFailures()
                failures.handle_exception()
                if channel != "log":
                    try:
                        self.log(
                            "Error in %r listener %r" % (channel, listener),
                            level=40,
                            traceback=True,
                        )
                    except Exception:
                        # A failing log must not stop the publish; its error is kept too.
                        failures.handle_exception()
        if failures is not None:
            raise failures
        return output

    # The registry, for the ``listeners`` mapping: snapshots and whole-channel edits.

    def _channel_names(self) -> list[Hashable]:
        """Return the channels, in the order they were created."""
        with self._lock:
            return list(self._channels)

    def _has_channel(self, channel: Hashable) -> bool:
        return channel in self._channels

    def _declare(self, channel: Hashable) -> bool:
        """Create *channel* with no listeners unless it exists; return whether it was created."""
        check_channel(channel)
        with self._lock:
            if channel in self._channels:
                return False
            self._channels[channel] = _Channel()
            return True

    def _listeners_of(self, channel: Hashable) -> tuple[Callable[..., Any], ...]:
        """Return the listeners of *channel* in call order; KeyError if there is no such."""
        return self._channels[channel].callbacks

    def _entries(self, channel: Hashable) -> list[tuple[Any, Callable[..., Any]]]:
        """Return ``(priority, callback)`` for each listener of *channel*, in call order."""
        with self._lock:
            chan = self._channels[channel]
            return [(key[0], cb) for key, cb in zip(chan.keys, chan.callbacks)]

    def _clear(self, channel: Hashable) -> None:
        """Remove every listener of *channel*, creating it if needed."""
        check_channel(channel)
        self._edit(self._channels.__setitem__, channel, _Channel())

    def _remove_channel(self, channel: Hashable) -> None:
        """Forget *channel* and its listeners; KeyError if there is no such."""
        self._edit(self._channels.__delitem__, channel)
