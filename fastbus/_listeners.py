"""``bus.listeners``: a live, thread-safe view of the registry, shaped like wspbus's dict.

wspbus exposes its registry as ``{channel: set_of_callbacks}`` and CherryPy relies on that
shape: it iterates the channels, declares channels with ``setdefault(name, set())`` and
resets them with ``listeners[name] = set()``. Here the registry lives in the core, sorted for
dispatch, and this view translates each of those uses into a registry operation, so the two
never disagree.
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSet
from typing import Any, Callable, Hashable, Iterable, Iterator

from ._arguments import check_callback, check_channel

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

    def add(self, callback: Callable[..., Any]) -> None:
        self._bus.subscribe(self._channel, callback)

    def discard(self, callback: Callable[..., Any]) -> None:
        self._bus.unsubscribe(self._channel, callback)

    def __repr__(self) -> str:
        return "{%s}" % ", ".join(map(repr, self._callbacks())) if len(self) else "set()"


class Listeners(MutableMapping[Hashable, ChannelListeners]):
    """``bus.listeners``: channel name → :class:`ChannelListeners`, in channel creation order.

    Iterating it takes a snapshot, so it never raises while other threads add channels.
    Assigning an iterable of callbacks to a channel replaces its listeners with those (each
    at its default priority); ``listeners['x'] = set()`` empties (or creates) a channel.
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
        try:
            callbacks = list(callbacks)
        except TypeError:
            raise TypeError(
                f"listeners of a channel must be an iterable of callbacks, "
                f"not {type(callbacks).__name__!r}"
            ) from None
        for callback in callbacks:
            check_callback(callback)
        self._bus._clear(channel)
        for callback in callbacks:
            self._bus.subscribe(channel, callback)

    def __delitem__(self, channel: Hashable) -> None:
        self._bus._remove_channel(channel)

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
        callbacks = list(default) if default is not None else []
        for callback in callbacks:
            check_callback(callback)
        if self._bus._declare(channel):
            for callback in callbacks:
                self._bus.subscribe(channel, callback)
        return ChannelListeners(self._bus, channel)

    def __repr__(self) -> str:
        return "{%s}" % ", ".join(f"{ch!r}: {self[ch]!r}" for ch in self if ch in self)
