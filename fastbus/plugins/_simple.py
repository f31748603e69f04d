"""SimplePlugin: the base of plugins whose methods are named after the channels they serve."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ("SimplePlugin",)


class SimplePlugin:
    """Plugin base class which auto-subscribes methods for known channels.

    A method named after a channel of ``bus.listeners`` (``start``, ``stop``, ``exit``,
    ``graceful``, ``log``, ``main`` or any declared channel) is subscribed to it by
    :meth:`subscribe`, at the priority of its ``priority`` attribute if it has one.
    Works with a :class:`fastbus.Bus` and with a stock ``cherrypy.process.wspbus.Bus``.
    """

    bus: Any = None
    """A Bus, usually ``cherrypy.engine``."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus

    def _methods(self) -> list[tuple[str, Any]]:
        found = []
        for channel in list(self.bus.listeners):
            # Channels may be any hashable; only names can match methods.
            if isinstance(channel, str):
                method = getattr(self, channel, None)
                if method is not None:
                    found.append((channel, method))
        return found

    def _subscription_lock(self) -> Any:
        """This plugin's lock around :meth:`subscribe` and :meth:`unsubscribe`.

        Each of them makes one registry edit per channel; without the lock a subscribe and an
        unsubscribe of the same plugin from two threads could interleave and leave it half
        subscribed (``start`` without ``stop``, say). With it the calls take turns, and the
        plugin ends up wholly subscribed or wholly not, as the later one left it. It is per
        plugin: other plugins never wait for it, and the registry itself needs no help from it.
        Reentrant, because a registry edit can run code (``__hash__``, a GC finalizer) that
        subscribes or unsubscribes this plugin again from the same thread. Made on first use,
        since subclasses need not call ``SimplePlugin.__init__``.
        """
        lock = self.__dict__.get("_fastbus_subscription_lock")
        if lock is None:
            # setdefault is one C call: two threads making the first lock get the same one.
            lock = self.__dict__.setdefault("_fastbus_subscription_lock", threading.RLock())
        return lock

    def subscribe(self) -> None:
        """Register this object as a (multi-channel) listener on the bus."""
        with self._subscription_lock():
            for channel, method in self._methods():
                self.bus.subscribe(channel, method)

    def unsubscribe(self) -> None:
        """Unregister this object as a listener on the bus."""
        with self._subscription_lock():
            for channel, method in self._methods():
                self.bus.unsubscribe(channel, method)
