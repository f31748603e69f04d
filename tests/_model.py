"""A small model of the bus's registry and dispatch: what the two cores must agree with.

It is written from the contract (wspbus's behaviour and the docstrings of
``fastbus._core_py``), in the plainest way: each channel is a dict from callback to
``[priority, subscription number]``, sorted on every read. Nothing of it is fast and nothing of
it is shared with the cores, so the differential tests in ``test_fuzz.py`` compare two
implementations against an independent third.

Where the contract leaves the wording of an error to the implementation, the model gives a
:class:`Mentions` in place of the message: the word the real message must contain (the name of
the bad argument).
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable, Iterable, Iterator, MutableSet
from typing import Any, Callable

from fastbus import ChannelFailures, Subscription

DEFAULT_PRIORITY = 50


class Mentions:
    """An expected error message: any text that contains *word*."""

    def __init__(self, word: str) -> None:
        self.word = word

    def __repr__(self) -> str:
        return f"<a message mentioning {self.word!r}>"


def _check_channel(channel: object) -> None:
    try:
        hash(channel)
    except TypeError:
        raise TypeError(Mentions("channel")) from None


def _check_callback(callback: object) -> None:
    if not callable(callback):
        raise TypeError(Mentions("callback"))
    try:
        hash(callback)
    except TypeError:
        raise TypeError(Mentions("callback")) from None


def _check_priority(priority: object) -> None:
    # numbers.Real but not bool (wspbus sorts on it; True would sort as 1 by accident).
    if isinstance(priority, bool) or not isinstance(priority, numbers.Real):
        raise TypeError(Mentions("priority"))
    if priority != priority:
        raise ValueError(Mentions("priority"))


def _resolve_priority(callback: object, priority: object) -> Any:
    if priority is None:
        priority = getattr(callback, "priority", DEFAULT_PRIORITY)
        if callable(priority):
            return DEFAULT_PRIORITY
    _check_priority(priority)
    return priority


class ModelBus:
    """The registry and dispatch of the bus, as the contract states them.

    *log* receives ``(message, level)`` for each failed listener, as ``Bus.log`` would.
    *on_snapshot*, when set, runs once right after a publish has taken its snapshot (the model
    of a finalizer run by the collector while publish allocates its result list).
    """

    def __init__(self, log: Callable[[str, int], None]) -> None:
        self.channels: dict[Hashable, dict[Callable[..., Any], list[Any]]] = {}
        self.next_number = 0
        self.log = log
        self.on_snapshot: Callable[[], None] | None = None
        self.listeners = ModelListeners(self)

    def ordered(self, channel: Hashable) -> list[tuple[Any, Callable[..., Any]]]:
        """``(priority, callback)`` in call order: by priority, then by first subscription."""
        entries = self.channels[channel]
        keyed = sorted(((p, n), cb) for cb, (p, n) in _items(entries))
        return [(key[0], cb) for key, cb in keyed]

    def subscribe(self, channel: Hashable, callback: Any = None, priority: Any = None) -> Any:
        if callback is None:
            _check_channel(channel)
            if priority is not None:
                _check_priority(priority)

            def decorate(function: Any) -> Any:
                self.subscribe(channel, function, priority)
                return function

            return decorate
        _check_channel(channel)
        _check_callback(callback)
        priority = _resolve_priority(callback, priority)
        entries = self.channels.setdefault(channel, {})
        entry = entries.get(callback)
        if entry is None:
            entries[callback] = [priority, self.next_number]
            self.next_number += 1
        else:
            # One entry per equal callback: the first object stays, the priority is the new
            # one, the number (its place among equal priorities) is kept.
            entry[0] = priority
        return None

    def unsubscribe(self, channel: Hashable, callback: Any) -> None:
        _check_channel(channel)
        try:
            hash(callback)
        except TypeError:
            raise TypeError(Mentions("callback")) from None
        entries = self.channels.get(channel)
        if entries is not None:
            entries.pop(callback, None)

    def publish(self, channel: Hashable, /, *args: Any, **kwargs: Any) -> list[Any]:
        _check_channel(channel)
        snapshot = [cb for _, cb in self.ordered(channel)] if channel in self.channels else []
        if self.on_snapshot is not None:
            hook, self.on_snapshot = self.on_snapshot, None
            hook()
        output = []
        failures = None
        for listener in snapshot:
            try:
                output.append(listener(*args, **kwargs))
            except Exception:
                if failures is None:
                    failures = ChannelFailures()
                failures.handle_exception()
                if channel != "log":
                    self.log("Error in %r listener %r" % (channel, listener), 40)
        if failures is not None:
            raise failures
        return output

    def subscriptions(self, channel: Hashable) -> list[Subscription]:
        if channel not in self.channels:
            return []
        return [Subscription(cb, priority, False, False) for priority, cb in self.ordered(channel)]


def _items(entries: dict[Callable[..., Any], list[Any]]) -> Iterator[tuple[Callable[..., Any], list[Any]]]:
    return iter(list(entries.items()))


class ModelView:
    """``bus.listeners[channel]``: a live set of the channel's callbacks, in call order.

    ``add`` is a set's add: a callback already there keeps its priority. The in-place
    operators edit the channel one callback at a time (as ``MutableSet`` does), keeping the
    priorities of the callbacks that stay; the other operators return plain sets.
    """

    def __init__(self, bus: ModelBus, channel: Hashable) -> None:
        self.bus = bus
        self.channel = channel

    def _members(self) -> tuple[Callable[..., Any], ...]:
        if self.channel not in self.bus.channels:
            return ()
        return tuple(cb for _, cb in self.bus.ordered(self.channel))

    def __len__(self) -> int:
        return len(self._members())

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter(self._members())

    def __contains__(self, callback: object) -> bool:
        return callback in self._members()

    def add(self, callback: Any) -> None:
        if callback not in self:
            self.bus.subscribe(self.channel, callback)

    def discard(self, callback: Any) -> None:
        self.bus.unsubscribe(self.channel, callback)

    def clear(self) -> None:
        self.bus.channels[self.channel] = {}

    def copy(self) -> set[Any]:
        return set(self._members())

    def __isub__(self, other: Iterable[Any]) -> ModelView:
        for callback in other:
            self.discard(callback)
        return self

    def __ior__(self, other: Iterable[Any]) -> ModelView:
        for callback in other:
            self.add(callback)
        return self

    def __iand__(self, other: Iterable[Any]) -> ModelView:
        keep = list(other)
        for callback in self._members():
            if callback not in keep:
                self.discard(callback)
        return self

    def __ixor__(self, other: Iterable[Any]) -> ModelView:
        for callback in other:
            if callback in self:
                self.discard(callback)
            else:
                self.add(callback)
        return self

    def __or__(self, other: Iterable[Any]) -> set[Any]:
        return set(self._members()) | set(other)

    def __sub__(self, other: Iterable[Any]) -> set[Any]:
        return set(self._members()) - set(other)

    def __and__(self, other: Iterable[Any]) -> set[Any]:
        return set(self._members()) & set(other)

    def __xor__(self, other: Iterable[Any]) -> set[Any]:
        return set(self._members()) ^ set(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (set, frozenset, ModelView)):
            return NotImplemented
        return set(self._members()) == set(other)

    def __le__(self, other: Iterable[Any]) -> bool:
        return set(self._members()) <= set(other)

    __hash__ = None  # type: ignore[assignment]


MutableSet.register(ModelView)


class ModelListeners:
    """``bus.listeners``: channel → :class:`ModelView`, in the order channels were created.

    Assigning replaces a channel's listeners, after checking every one of them (bad input
    changes nothing): a callback already subscribed there keeps its priority and its place
    among equal priorities, as wspbus's priorities outlive its sets; the others get their
    default priority. Assigning a channel its own view (what ``listeners[ch] -= s`` does
    last) changes nothing.
    """

    def __init__(self, bus: ModelBus) -> None:
        self.bus = bus

    def __getitem__(self, channel: Hashable) -> ModelView:
        if channel not in self.bus.channels:
            raise KeyError(channel)
        return ModelView(self.bus, channel)

    def __setitem__(self, channel: Hashable, callbacks: Iterable[Any]) -> None:
        _check_channel(channel)
        if isinstance(callbacks, ModelView) and callbacks.bus is self.bus and callbacks.channel == channel:
            return
        try:
            items = list(callbacks)
        except TypeError:
            raise TypeError(Mentions("iterable")) from None
        self._replace(channel, items, self._checked(items))

    @staticmethod
    def _checked(items: list[Any]) -> list[Any]:
        """Every callback checked, with its default priority, before anything changes."""
        priorities = []
        for callback in items:
            _check_callback(callback)
            priorities.append(_resolve_priority(callback, None))
        return priorities

    def _replace(self, channel: Hashable, items: list[Any], priorities: list[Any]) -> None:
        old = self.bus.channels.get(channel, {})
        new: dict[Callable[..., Any], list[Any]] = {}
        for callback, priority in zip(items, priorities):
            if callback in new:
                continue  # the first of equal callbacks stays, as in a set
            kept = old.get(callback)
            if kept is not None:
                new[callback] = list(kept)
            else:
                new[callback] = [priority, self.bus.next_number]
                self.bus.next_number += 1
        self.bus.channels[channel] = new

    def __delitem__(self, channel: Hashable) -> None:
        if channel not in self.bus.channels:
            raise KeyError(channel)
        del self.bus.channels[channel]

    def pop(self, channel: Hashable, *default: Any) -> Any:
        """Remove *channel* and return its listeners as a plain set (or *default*)."""
        if channel not in self.bus.channels:
            if default:
                return default[0]
            raise KeyError(channel)
        listeners = set(ModelView(self.bus, channel))
        del self.bus.channels[channel]
        return listeners

    def copy(self) -> dict[Hashable, set[Any]]:
        return {channel: set(ModelView(self.bus, channel)) for channel in self.bus.channels}

    def __contains__(self, channel: object) -> bool:
        return channel in self.bus.channels

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self.bus.channels))

    def __len__(self) -> int:
        return len(self.bus.channels)

    def setdefault(self, channel: Hashable, default: Iterable[Any] | None = None) -> ModelView:
        _check_channel(channel)
        items = list(default) if default is not None else []
        priorities = self._checked(items)
        if channel not in self.bus.channels:
            self._replace(channel, items, priorities)
        return ModelView(self.bus, channel)
