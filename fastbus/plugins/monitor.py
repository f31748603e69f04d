"""Monitor: run a callback at intervals in its own thread while the bus is started."""

from __future__ import annotations

import threading
from typing import Any, Callable

from .._arguments import check_real
from ._simple import SimplePlugin
from .tasks import BackgroundTask, check_function

__all__ = ("Monitor",)


class Monitor(SimplePlugin):
    """Bus listener that calls *callback* every *frequency* seconds in its own thread.

    The thread (a :class:`BackgroundTask` named *name*, else after the class) starts on
    ``start`` (priority 70) and ends on ``stop``; ``graceful`` restarts it. A frequency of
    zero or less disables the monitor. Start, stop and graceful may come from different
    threads at once: there is never more than one monitor thread.
    """

    callback: Any = None
    """The function to call at intervals."""

    frequency: float = 60
    """The time in seconds between callback runs."""

    thread: BackgroundTask | None = None
    """The :class:`BackgroundTask` thread, while the monitor runs."""

    def __init__(self, bus: Any, callback: Callable[[], Any], frequency: float = 60, name: str | None = None) -> None:
        SimplePlugin.__init__(self, bus)
        check_function(callback, "callback")
        check_real(frequency, "frequency")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__!r}")
        self.callback = callback
        self.frequency = frequency
        self.thread = None
        self.name: str | None = name
        self._thread_lock: threading.RLock = threading.RLock()

    def _thread_name(self) -> str:
        return self.name or self.__class__.__name__

    def start(self) -> None:
        """Start our callback in its own background thread (unless it runs already)."""
        if self.frequency > 0:
            threadname = self._thread_name()
            with self._thread_lock:
                if self.thread is None:
                    self.thread = BackgroundTask(self.frequency, self.callback, bus=self.bus)
                    self.thread.name = threadname
                    self.thread.start()
                    self.bus.log("Started monitor thread %r." % threadname)
                else:
                    self.bus.log("Monitor thread %r already started." % threadname)

    start.priority = 70  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop our callback's background thread, waiting for it if it is not daemonic.

        Called from the monitor thread itself (its callback stopped the bus), it only
        cancels the thread, which ends when the callback returns.
        """
        with self._thread_lock:
            thread, self.thread = self.thread, None
        if thread is None:
            self.bus.log("No thread running for %s." % self._thread_name())
            return
        thread.cancel()
        if thread is not threading.current_thread():
            name = thread.name
            if not thread.daemon:
                self.bus.log("Joining %r" % name)
                thread.join()
            self.bus.log("Stopped thread %r." % name)

    def graceful(self) -> None:
        """Stop the callback's background thread and start a new one."""
        self.stop()
        self.start()
