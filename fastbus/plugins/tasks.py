"""Threads that call a function at intervals, and keep doing so when it fails."""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from .._arguments import check_seconds

__all__ = ("BackgroundTask", "PerpetualTimer")


def check_interval(value: Any, argument: str = "interval") -> None:
    """Raise TypeError/ValueError unless *value* is a number of seconds, zero or more."""
    check_seconds(value, argument)


def check_function(value: Any, argument: str = "function") -> None:
    if not callable(value):
        raise TypeError(f"{argument} must be callable, not {type(value).__name__!r}")


def report_failure(bus: Any, message: str) -> None:
    """Log the exception being handled to *bus*, or print it to stderr if there is none.

    Reporting must never end the thread it protects, so a failing log is printed instead.
    """
    if bus is not None:
        try:
            bus.log(message, level=40, traceback=True)
            return
        except Exception:
            pass
    try:
        sys.stderr.write(message + "\n" + traceback.format_exc())
    except Exception:
        pass


class PerpetualTimer(threading.Timer):
    """A :class:`threading.Timer` whose :meth:`run` repeats until :meth:`cancel` is called.

    It waits on the timer's ``finished`` event, so :meth:`cancel` takes effect at once.
    Pass ``bus=`` to have failures logged there (level 40, with the traceback). A failing
    function does not end the timer: CherryPy's timer stopped for good at the first error,
    which silently killed periodic jobs such as session cleanup (and let memory grow
    without bound); this one logs every failure and calls the function again at the next
    interval.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take :class:`threading.Timer`'s arguments, plus an optional ``bus`` keyword."""
        self.bus = kwargs.pop("bus", None)
        super().__init__(*args, **kwargs)
        check_interval(self.interval)
        check_function(self.function)

    def run(self) -> None:
        """Call the function every interval until cancelled, logging each failure."""
        while not self.finished.wait(self.interval):
            try:
                self.function(*self.args, **self.kwargs)
            except Exception:
                report_failure(self.bus, "Error in perpetual timer thread function %r." % self.function)


class BackgroundTask(threading.Thread):
    """A thread that calls ``function(*args, **kwargs)`` every *interval* seconds.

    The one to use for most repeating tasks. It is daemonic by default so that it never
    delays the end of the process, and :meth:`cancel` wakes it at once rather than at the
    end of the current interval. Each failure of the function is logged to *bus* (level
    40, with the traceback; to stderr without a bus) and the task carries on: a periodic
    job that dies at its first error is a silent leak (cherrypy issue 1803).
    """

    def __init__(
        self,
        interval: float,
        function: Callable[..., Any],
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        bus: Any = None,
    ) -> None:
        check_interval(interval)
        check_function(function)
        super().__init__()
        self.interval = interval
        self.function = function
        self.args = args
        self.kwargs = kwargs if kwargs is not None else {}
        self.bus = bus
        self._cancelled = threading.Event()
        self.daemon = True

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`cancel`; setting it False cancels."""
        return self.is_alive() and not self._cancelled.is_set()

    @running.setter
    def running(self, value: bool) -> None:
        if value:
            self._cancelled.clear()
        else:
            self._cancelled.set()

    def cancel(self) -> None:
        """Stop repeating; a call in progress finishes first. Safe before start, too."""
        self._cancelled.set()

    def run(self) -> None:
        """Call the function every interval until cancelled, logging each failure."""
        while not self._cancelled.wait(self.interval):
            try:
                self.function(*self.args, **self.kwargs)
            except Exception:
                report_failure(self.bus, "Error in background task thread function %r." % self.function)
