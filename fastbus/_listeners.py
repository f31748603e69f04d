"""``bus.listeners``: a live, thread-safe view of the registry, shaped like wspbus's dict.

wspbus exposes its registry as ``{channel: set_of_callbacks}`` and CherryPy relies on that
shape: it iterates the channels, declares channels with ``setdefault(name, set())`` and
resets them with ``listeners[name] = set()``. Here the registry lives in the core, sorted for
dispatch, and this view translates each of those uses into a registry operation, so the two
never disagree.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, MutableMapping, MutableSet
from typing import Any, Callable

from ._arguments import check_callback, check_channel, resolve_priority

__all__ = ("ChannelListeners", "Listeners")


class ChannelListeners(MutableSet[Callable[..., Any]]):
    """The listeners of one channel, as a live set; iteration follows call order.

    ``add`` subscribes (priority from the callback's ``priority`` attribute, else 50) and
    ``discard`` unsubscribes, through the bus's own methods.
    """

    __slots__ = ("_bus", "_channel")

    def __init__(self, bus: Any, channel: Hashable) -> None:
        self._bus = bus
        self._channel = channel

    def _callbacks(self) -> tuple[Callable[..., Any], ...]:
        try:
            callbacks: tuple[Callable[..., Any], ...] = self._bus._listeners_of(self._channel)
            return callbacks
        except KeyError:
            return ()

    def __contains__(self, callback: object) -> bool:
        return callback in self._callbacks()

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter(self._callbacks())

    def __len__(self) -> int:
        return len(self._callbacks())

    @classmethod
    def _from_iterable(cls, iterable: Iterable[Any]) -> set[Any]:
        # What ``view | other``, ``-``, ``&`` and ``^`` return: a plain set, as wspbus's do.
        return set(iterable)

    def add(self, callback: Callable[..., Any]) -> None:
        """Subscribe *callback* unless it is subscribed here already (then nothing changes).

        Its priority is its ``priority`` attribute, else 50.
        """
        if callback not in self:
            self._bus.subscribe(self._channel, callback)

    def discard(self, callback: Callable[..., Any]) -> None:
        self._bus.unsubscribe(self._channel, callback)

    def clear(self) -> None:
        """Unsubscribe every listener of the channel at once."""
        self._bus._set_listeners(self._channel, ())

    def copy(self) -> set[Callable[..., Any]]:
        """Return the listeners as a plain set (a snapshot)."""
        return set(self._callbacks())

    def __repr__(self) -> str:
        return "{%s}" % ", ".join(map(repr, self._callbacks())) if len(self) else "set()"


class Listeners(MutableMapping[Hashable, ChannelListeners]):
    """``bus.listeners``: channel name → :class:`ChannelListeners`, in channel creation order.

    Iterating it takes a snapshot, so it never raises while other threads add channels.
    Assigning an iterable of callbacks to a channel replaces its listeners with those, at once:
    a callback already subscribed there keeps its priority, the others get their default one;
    ``listeners['x'] = set()`` empties (or creates) a channel. Assigning a channel's own view
    back to it (what ``listeners['x'] -= {f}`` ends with) changes nothing.
    """

    __slots__ = ("_bus",)

    def __init__(self, bus: Any) -> None:
        self._bus = bus

    def __getitem__(self, channel: Hashable) -> ChannelListeners:
        if not self._bus._has_channel(channel):
            raise KeyError(channel)
        return ChannelListeners(self._bus, channel)

    def __setitem__(self, channel: Hashable, callbacks: Iterable[Callable[..., Any]]) -> None:
        check_channel(channel)
        if isinstance(callbacks, ChannelListeners) and callbacks._bus is self._bus and callbacks._channel == channel:
            return
        self._bus._set_listeners(channel, _entries(callbacks))

    def __delitem__(self, channel: Hashable) -> None:
        self._bus._remove_channel(channel)

    _MISSING: Any = object()

    def pop(self, channel: Hashable, default: Any = _MISSING) -> Any:
        """Remove *channel*; return its listeners as a plain set (*default* if there is none)."""
        try:
            return set(self._bus._remove_channel(channel))
        except KeyError:
            if default is self._MISSING:
                raise
            return default

    def popitem(self) -> tuple[Hashable, set[Callable[..., Any]]]:  # type: ignore[override]
        """Remove the oldest remaining channel; return it and its listeners as a plain set."""
        for channel in self:
            try:
                return channel, set(self._bus._remove_channel(channel))
            except KeyError:  # removed meanwhile by another thread
                continue
        raise KeyError("popitem(): no channels")

    def copy(self) -> dict[Hashable, set[Callable[..., Any]]]:
        """Return a plain ``{channel: set of listeners}`` snapshot."""
        snapshot = {}
        for channel in self:
            try:
                snapshot[channel] = set(self._bus._listeners_of(channel))
            except KeyError:  # removed meanwhile by another thread
                pass
        return snapshot

    def __contains__(self, channel: object) -> bool:
        return bool(self._bus._has_channel(channel))

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._bus._channel_names())

    def __len__(self) -> int:
        return len(self._bus._channel_names())

    def setdefault(self, channel: Hashable, default: Iterable[Callable[..., Any]] | None = None) -> ChannelListeners:
        """Declare *channel* (with *default*'s callbacks) unless it exists; return its view.

        Declaring is atomic: a channel another thread creates or fills meanwhile is kept.
        """
        check_channel(channel)
        self._bus._set_listeners(channel, _entries(default or ()), only_if_new=True)
        return ChannelListeners(self._bus, channel)

    def __repr__(self) -> str:
        return "{%s}" % ", ".join(f"{ch!r}: {self[ch]!r}" for ch in self if ch in self)


def _entries(callbacks: Iterable[Callable[..., Any]]) -> list[tuple[Callable[..., Any], Any]]:
    """Check every callback and its default priority, before anything is changed."""
    try:
        callbacks = list(callbacks)
    except TypeError:
        raise TypeError(
            f"listeners of a channel must be an iterable of callbacks, not {type(callbacks).__name__!r}"
        ) from None
    entries = []
    for callback in callbacks:
        check_callback(callback)
        entries.append((callback, resolve_priority(callback, None)))
    return entries
