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

    def subscribe(self) -> None:
        """Register this object as a (multi-channel) listener on the bus."""
        with _plugin_lock:
            for channel, method in self._methods():
                self.bus.subscribe(channel, method)

    def unsubscribe(self) -> None:
        """Unregister this object as a listener on the bus."""
        with _plugin_lock:
            for channel, method in self._methods():
                self.bus.unsubscribe(channel, method)


# One lock for all plugins: (un)subscribing is rare and must not interleave halfway.
_plugin_lock = threading.RLock()
