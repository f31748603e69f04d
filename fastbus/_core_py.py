"""The reference core: the subscriber registry and the dispatch loop, in pure Python.

This module is the contract; ``_core_c.pyx`` is its compiled twin, with the same names,
signatures and behaviour, and the test suite runs every behavioural test on both.

Each channel keeps its subscribers already sorted by ``(priority, subscription number)``, so
a publish never sorts, hashes or looks anything up per listener: it takes the channel's
current tuple of callbacks and calls them in order. (Un)subscribing builds a new tuple under
the bus's lock and swaps it in, so a publish in progress, in this thread or another, keeps the
tuple it started with: it never skips or repeats a listener, and changes made meanwhile (from
inside a listener, too) take effect from the next publish.

A listener subscribed weakly, once, or as an ``async def`` is stored as an :class:`_Entry`
instead of the bare callable. A channel with none of those (``plain``) is published by the
bare loop; only a channel that has one takes the slower loop that knows about entries, so
the new kinds of listener cost the usual kind nothing.
"""

from __future__ import annotations

import numbers
import threading
import weakref
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from itertools import count
from types import CoroutineType, MethodType
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

from ._arguments import (
    awaitable,
    check_callback,
    check_channel,
    check_flag,
    check_weak,
    is_async,
    resolve_priority,
    subscriber,
)
from ._errors import listener_failed
from ._subscriptions import Subscription, needs_apublish

__all__ = ("CoreBus",)

_F = TypeVar("_F", bound=Callable[..., Any])


class _Entry:
    """A listener that publish cannot simply call: held weakly, one-shot, or ``async def``.

    A weak entry holds its function (or, for a bound method, the object and the function)
    by weak reference, and is itself the registry's key for it: it hashes like the callback
    and equals it while the referents live, so ``unsubscribe`` finds it by the callable. When
    a referent dies, *on_death* gets the entry, to remove it; until then it is skipped. A
    one-shot entry is claimed by exactly one publish (a lock taken without waiting), which
    removes it before calling it.
    """

    __slots__ = ("callback", "ref", "func_ref", "hash", "weak", "once", "coroutine", "claimed", "__weakref__")

    def __init__(self, callback: Callable[..., Any], weak: bool, once: bool, coroutine: bool,
                 on_death: Callable[[_Entry], None] | None) -> None:
        self.weak = weak
        self.once = once
        self.coroutine = coroutine
        self.claimed = threading.Lock() if once else None
        self.hash = hash(callback)
        self.ref: weakref.ref[Any] | None = None
        self.func_ref: weakref.ref[Any] | None = None
        if not weak:
            self.callback: Callable[..., Any] | None = callback
            return
        self.callback = None

        entry = weakref.ref(self)  # not self: the references must not keep their entry alive

        def died(_: object) -> None:
            alive = entry()
            if alive is not None and on_death is not None:
                on_death(alive)

        try:
            if isinstance(callback, MethodType):
                self.ref = weakref.ref(callback.__self__, died)
                self.func_ref = weakref.ref(callback.__func__, died)
            else:
                self.ref = weakref.ref(callback, died)
        except TypeError:
            raise TypeError(
                f"callback {callback!r} cannot be held weakly (its type does not support weak "
                "references): subscribe it with weak=False"
            ) from None

    def target(self) -> Callable[..., Any] | None:
        """The callable to call, or None if it died (weak) or already ran (once)."""
        if self.claimed is not None and self.claimed.locked():
            return None
        return self.resolve()

    def resolve(self) -> Callable[..., Any] | None:
        """The callable, or None if a weak referent died."""
        if self.ref is None:
            return self.callback
        referent = self.ref()
        if self.func_ref is None or referent is None:
            return referent
        function = self.func_ref()
        return None if function is None else MethodType(function, referent)

    def claim(self) -> Callable[..., Any] | None:
        """The callable, for a publish about to call it; None if it must be skipped."""
        callback = self.resolve()
        if callback is None or (self.claimed is not None and not self.claimed.acquire(False)):
            return None
        return callback

    def key(self) -> object:
        """What the registry's index holds this entry under."""
        return self if self.weak else self.callback

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        mine = self.resolve()
        if mine is None:
            return False  # a dead entry equals nothing but itself
        if type(other) is _Entry:
            other = other.resolve()
            if other is None:
                return False
        return bool(mine == other)

    def __repr__(self) -> str:
        kinds = ", ".join(k for k in ("weak", "once", "async") if getattr(self, k if k != "async" else "coroutine"))
        return f"<listener {self.resolve()!r} ({kinds})>"


_Item = Any  # a bare callable or an _Entry


def _key_of(item: _Item) -> object:
    return item.key() if type(item) is _Entry else item


def _visible(item: _Item) -> Callable[..., Any] | None:
    """The callable a reader of the registry sees for *item*; None if it is gone already."""
    return item.target() if type(item) is _Entry else item


class _Channel:
    """The subscribers of one channel.

    ``callbacks`` is what publish reads: a tuple of bare callables and :class:`_Entry`
    objects, replaced (never changed) on each edit, so a publish holds a consistent snapshot.
    ``plain`` is the same tuple when it holds no entry, else None: publish takes the bare loop
    only when the two agree (an edit sets ``plain`` before ``callbacks``, and publish reads
    them the other way round, so a publish racing an edit can only end up on the slower loop,
    which handles any tuple). ``keys`` holds the parallel ``(priority, number)`` sort keys (a
    list, changed in place) and ``index`` maps each listener's key to its sort key and item.

    Every step that can fail or run Python code (hashing, comparing priorities, allocating,
    which can run a finalizer) comes before anything changes, so an edit happens whole or not
    at all; then ``keys`` and ``callbacks`` change together with nothing allocated between.
    """

    __slots__ = ("callbacks", "plain", "keys", "index", "entries")

    def __init__(self) -> None:
        self.callbacks: tuple[_Item, ...] = ()
        self.plain: tuple[_Item, ...] | None = self.callbacks
        self.keys: list[tuple[Any, int]] = []
        self.index: dict[object, tuple[tuple[Any, int], _Item]] = {}
        self.entries = 0  # how many items are _Entry objects

    def _install(self, callbacks: tuple[_Item, ...], entries: int) -> None:
        self.entries = entries
        self.plain = None if entries else callbacks
        self.callbacks = callbacks

    def subscribe(self, item: _Item, priority: Any, number: int, keep: bool) -> None:
        """Add *item*, or make it the one already here at *priority* (unless *keep*).

        A bare callable already here as a bare callable stays the object first subscribed,
        as in a set; any other change of kind replaces the item.
        """
        keys, callbacks = self.keys, self.callbacks
        key = _key_of(item)
        old = self.index.get(key)
        added = type(item) is _Entry
        if old is None:
            sort_key = (priority, number)
            at = bisect_right(keys, sort_key)
            self.index[key] = (sort_key, item)
            callbacks = callbacks[:at] + (item,) + callbacks[at:]
            keys.insert(at, sort_key)
            self._install(callbacks, self.entries + added)
            return
        if keep:
            return
        was_key, stored = old
        was = bisect_left(keys, was_key)
        sort_key = (priority, was_key[1])
        at = bisect_right(keys, sort_key)  # counting the old entry, if it sorts before
        if at > was:
            at -= 1
        if type(stored) is not _Entry and type(item) is not _Entry:
            item = stored
            self.index[key] = (sort_key, item)  # an existing key: the stored one stays
        else:
            del self.index[key]
            try:
                self.index[key] = (sort_key, item)
            except BaseException:
                self.index[_key_of(stored)] = old
                raise
        rest = callbacks[:was] + callbacks[was + 1 :]
        callbacks = rest[:at] + (item,) + rest[at:]
        del keys[was]  # *old* still holds the key (and its priority): nothing is freed here
        keys.insert(at, sort_key)
        self._install(callbacks, self.entries - (type(stored) is _Entry) + (type(item) is _Entry))

    def unsubscribe(self, key: object, only: _Item | None = None) -> None:
        """Remove the listener held under *key*; with *only*, only if it is that item."""
        keys, callbacks = self.keys, self.callbacks
        old = self.index.get(key)
        if old is None or (only is not None and old[1] is not only):
            return
        at = bisect_left(keys, old[0])
        del self.index[key]
        callbacks = callbacks[:at] + callbacks[at + 1 :]
        del keys[at]
        self._install(callbacks, self.entries - (type(old[1]) is _Entry))


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
        self, channel: Hashable, callback: None = None, priority: float | numbers.Real | None = None, *,
        weak: bool = False, once: bool = False,
    ) -> Callable[[_F], _F]: ...

    @overload
    def subscribe(
        self, channel: Hashable, callback: Callable[..., Any], priority: float | numbers.Real | None = None, *,
        weak: bool = False, once: bool = False,
    ) -> None: ...

    def subscribe(
        self,
        channel: Hashable,
        callback: Callable[..., Any] | None = None,
        priority: float | numbers.Real | None = None,
        *,
        weak: bool = False,
        once: bool = False,
    ) -> Callable[[_F], _F] | None:
        """Call *callback* on each publish to *channel*, at *priority* (lower runs first).

        Without *priority*, the callback's ``priority`` attribute is used, else 50. Subscribing
        a callback again (or one equal to it) keeps the first one's single entry and its place
        among equal priorities, and takes the new priority (and the new *weak* and *once*).
        Without *callback*, return a decorator that subscribes the function it decorates and
        returns it unchanged.

        With *weak*, the bus holds the callback by weak reference (a bound method by weak
        references to its object and its function, not to the short-lived method object):
        once the referent is collected the subscription disappears by itself. With *once*,
        the callback runs on one publish only, even if several threads publish at once, and
        is unsubscribed before it is called. An ``async def`` callback can only be published
        to with :meth:`apublish`.

        Raises TypeError for an unhashable *channel*, a *callback* that is not callable or not
        hashable (or, with *weak*, cannot be weakly referenced), a *priority* that is not a
        real number (ValueError for NaN), or a *weak* or *once* that is not a bool; nothing is
        registered then.
        """
        if callback is None:
            return subscriber(self.subscribe, channel, priority, weak, once)
        check_channel(channel)
        check_callback(callback)
        priority = resolve_priority(callback, priority)
        check_flag(weak, "weak")
        check_flag(once, "once")
        item = self._item(channel, callback, weak, once)
        self._edit(self._subscribe_now, channel, item, priority, False)
        return None

    def _item(self, channel: Hashable, callback: Callable[..., Any], weak: bool, once: bool) -> _Item:
        """What the registry stores for *callback*: itself, or an :class:`_Entry`."""
        coroutine = is_async(callback)
        if not (weak or once or coroutine):
            return callback
        on_death = None
        if weak:
            check_weak(callback)
            bus = weakref.ref(self)

            def on_death(entry: _Entry) -> None:
                alive = bus()
                if alive is not None:
                    alive._drop(channel, entry)

        return _Entry(callback, weak, once, coroutine, on_death)

    def _drop(self, channel: Hashable, entry: _Entry) -> None:
        """Remove *entry* (a weak one whose referent died, or a claimed one-shot), if it is still there."""
        self._edit(self._drop_now, channel, entry)

    def _drop_now(self, channel: Hashable, entry: _Entry) -> None:
        chan = self._channels.get(channel)
        if chan is not None:
            chan.unsubscribe(entry.key(), entry)

    def _subscribe_now(self, channel: Hashable, item: _Item, priority: Any, keep: bool) -> None:
        chan = self._channels.get(channel)
        if chan is None:
            chan = _Channel()
            chan.subscribe(item, priority, next(self._numbers), keep)
            self._channels[channel] = chan
        else:
            chan.subscribe(item, priority, next(self._numbers), keep)

    def unsubscribe(self, channel: Hashable, callback: Callable[..., Any]) -> None:
        """Stop calling *callback* on *channel*; a no-op if it is not subscribed there.

        Callbacks match by equality, as in a set, so ``bus.unsubscribe('x', obj.method)``
        removes a bound method subscribed earlier through another ``obj.method`` (weakly or
        not).
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

        A weak listener whose referent died, or a one-shot listener that another publish
        claimed, is skipped and gives no result. A channel with an ``async def`` listener
        raises TypeError before calling anything: use :meth:`apublish`. (A plain function that
        returns an awaitable cannot be recognised beforehand; publish returns its awaitable
        among the results, not awaited.)
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
        listeners: Iterable[Callable[..., Any]] = callbacks
        if chan.plain is not callbacks:  # weak, one-shot or async listeners among them
            self._refuse_coroutines(channel, callbacks)
            listeners = self._claimed(channel, callbacks)
        output = []
        failures = None
        for listener in listeners:
            try:
                output.append(listener(*args, **kwargs))
            except BaseException:
                failures = listener_failed(self, channel, listener, failures)
                output.append(None)
        if failures is not None:
            raise failures
        return output

    @staticmethod
    def _refuse_coroutines(channel: Hashable, callbacks: tuple[_Item, ...]) -> None:
        """Raise TypeError if a live ``async def`` listener is among *callbacks*."""
        for item in callbacks:
            if type(item) is _Entry and item.coroutine:
                listener = item.target()
                if listener is not None:
                    raise needs_apublish(channel, listener)

    def _claimed(self, channel: Hashable, callbacks: tuple[_Item, ...]) -> Iterator[Callable[..., Any]]:
        """The listeners of a publish of *callbacks*, each claimed just before it is called.

        A dead weak entry, or a one-shot entry another publish claimed, is skipped; a one-shot
        entry is removed from the registry before it is handed out.
        """
        for item in callbacks:
            if type(item) is _Entry:
                listener = item.claim()
                if listener is None:
                    continue
                if item.once:
                    self._drop(channel, item)
                yield listener
            else:
                yield item

    async def apublish(self, channel: Hashable, /, *args: Any, **kwargs: Any) -> list[Any]:
        """Call every listener of *channel* as :meth:`publish` does, awaiting what they return.

        A listener whose result is awaitable (an ``async def`` listener's coroutine, or any
        awaitable a plain one returns) is awaited before the next listener runs, so priority
        order holds across sync and async listeners alike; the results are the awaited values.
        Failures are handled as by :meth:`publish`: every listener runs, each failure is logged
        and all are raised together as :class:`ChannelFailures`. KeyboardInterrupt, SystemExit
        and cancellation (``asyncio.CancelledError``, or any BaseException that is not an
        Exception) propagate at once, leaving the bus as it was.

        Only ``await`` is used, no event loop API: any loop that runs coroutines can run this.
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
        for listener in self._claimed(channel, chan.callbacks):
            try:
                result = listener(*args, **kwargs)
                if type(result) is CoroutineType or (result is not None and awaitable(result)):
                    result = await result
                output.append(result)
            except BaseException:
                failures = listener_failed(self, channel, listener, failures)
                output.append(None)
        if failures is not None:
            raise failures
        return output

    def subscriptions(self, channel: Hashable) -> list[Subscription]:
        """Return the listeners of *channel* in call order, as :class:`Subscription` tuples.

        Each says the callback, its priority and whether it is weak or one-shot: what
        ``subscribe`` was last told for it. An unknown channel gives ``[]``. A snapshot: later
        edits do not change it.
        """
        check_channel(channel)
        try:
            entries = self._entries(channel)
        except KeyError:
            return []
        return [Subscription(*entry) for entry in entries]

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
        chan = self._channels[channel]
        callbacks = chan.callbacks
        if chan.plain is callbacks:
            return callbacks
        return tuple(cb for cb in map(_visible, callbacks) if cb is not None)

    def _entries(self, channel: Hashable) -> list[tuple[Callable[..., Any], Any, bool, bool]]:
        """Return ``(callback, priority, weak, once)`` per listener of *channel*, in call order."""
        with self._lock:  # another thread's edit changes keys and callbacks one after the other
            chan = self._channels[channel]
            while True:
                callbacks = chan.callbacks
                keys = list(chan.keys)
                # Every edit replaces the callbacks tuple: if it is the same one, no edit (from a
                # finalizer the copy let the collector run) came between the two reads.
                if chan.callbacks is callbacks:
                    break
        entries = []
        for key, item in zip(keys, callbacks):
            if type(item) is _Entry:
                callback = item.target()
                if callback is not None:
                    entries.append((callback, key[0], item.weak, item.once))
            else:
                entries.append((item, key[0], False, False))
        return entries

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
                chan.subscribe(self._item(channel, callback, False, False), priority, next(self._numbers), True)
            else:
                (priority, number), item = kept
                chan.subscribe(item, priority, number, True)
        self._channels[channel] = chan

    def _remove_channel(self, channel: Hashable) -> tuple[Callable[..., Any], ...]:
        """Forget *channel*; return the listeners it had. KeyError if there is no such."""
        with self._lock:
            callbacks = self._listeners_of(channel)
            self._edit(self._channels.__delitem__, channel)
            return callbacks
