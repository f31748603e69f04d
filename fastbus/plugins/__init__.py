"""Plugins: objects that follow the bus's lifecycle by subscribing to its channels.

They offer process-wide services (signal handling, daemonizing, a PID file, dropping
privileges, periodic tasks, reloading on code changes, per-thread setup) that follow the
bus's state without the application holding references to them. Each has the constructor
arguments, attributes, channel names, default priorities and log messages of its namesake in
``cherrypy.process.plugins``, and works on a :class:`fastbus.Bus` and equally on a stock
``cherrypy.process.wspbus.Bus``; none imports CherryPy.

Where CherryPy's versions lose work or race, these do not: periodic tasks survive a failing
function, the autoreloader survives concurrent imports, and subscribing plugins or managing
threads is safe from any number of threads.

Each plugin's module is imported when its class is first looked up here, so importing
:mod:`fastbus` or this package loads none of them (nor the ``signal``, ``pwd`` or ``grp``
modules some of them need).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers
    from . import autoreload as autoreload
    from . import daemon as daemon
    from . import monitor as monitor
    from . import pidfile as pidfile
    from . import privileges as privileges
    from . import signals as signals
    from . import tasks as tasks
    from . import threads as threads
    from ._simple import SimplePlugin
    from .autoreload import Autoreloader
    from .daemon import Daemonizer
    from .monitor import Monitor
    from .pidfile import PIDFile
    from .privileges import DropPrivileges
    from .signals import SignalHandler
    from .tasks import BackgroundTask, PerpetualTimer
    from .threads import ThreadManager

__all__ = (
    "Autoreloader",
    "BackgroundTask",
    "Daemonizer",
    "DropPrivileges",
    "Monitor",
    "PIDFile",
    "PerpetualTimer",
    "SignalHandler",
    "SimplePlugin",
    "ThreadManager",
)

# The module of this package that defines each public name.
_MODULE_OF = {
    "Autoreloader": "autoreload",
    "BackgroundTask": "tasks",
    "Daemonizer": "daemon",
    "DropPrivileges": "privileges",
    "Monitor": "monitor",
    "PIDFile": "pidfile",
    "PerpetualTimer": "tasks",
    "SignalHandler": "signals",
    "SimplePlugin": "_simple",
    "ThreadManager": "threads",
}

# The public modules, reachable as attributes (fastbus.plugins.signals) as when they were
# imported eagerly.
_SUBMODULES = ("autoreload", "daemon", "monitor", "pidfile", "privileges", "signals", "tasks", "threads")


if not TYPE_CHECKING:  # hidden from type checkers, which then flag any other name

    def __getattr__(name: str) -> Any:
        """Import a plugin's module on first use (only lookups that find nothing else come here)."""
        if name in _SUBMODULES:
            return import_module(f"{__name__}.{name}")  # the import sets the attribute itself
        try:
            module_name = _MODULE_OF[name]
        except KeyError:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
        value = getattr(import_module(f"{__name__}.{module_name}"), name)
        globals()[name] = value  # later lookups find it without calling this again
        return value

    def __dir__() -> list[str]:
        """The public names and modules, lazy ones included, and the private ones; not the helpers."""
        return sorted({*__all__, *_SUBMODULES, *(name for name in globals() if name.startswith("_"))})
