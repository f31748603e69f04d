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
"""

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
