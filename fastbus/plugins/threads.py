"""ThreadManager: tell the bus when request threads start and stop."""

from __future__ import annotations

import threading
from typing import Any

from ._simple import SimplePlugin

__all__ = ("ThreadManager",)


class ThreadManager(SimplePlugin):
    """Manager for HTTP request threads.

    If you control thread creation and destruction, publish to ``acquire_thread`` and
    ``release_thread`` from each thread (at its start and end). This registers the current
    thread and publishes ``start_thread`` (once per thread) and ``stop_thread`` with the
    thread's index, so that listeners can set up and tear down per-thread resources.

    If threads are created and destroyed by code you do not control (e.g. Apache), publish
    only ``acquire_thread``, at the beginning of every request: you cannot know whether the
    thread will be reused. The bus calls the ``stop_thread`` listeners for every thread
    still registered when it stops (or on ``graceful``).

    Indexes count from 1 and are never reused while the plugin runs, so two live threads
    never share one (CherryPy's could, after a release); they start again from 1 after a
    stop. Every method is safe to call from any number of threads at once.
    """

    threads: Any = None
    """A map of {thread ident: index number} pairs."""

    def __init__(self, bus: Any) -> None:
        self.threads = {}
        self._lock = threading.Lock()
        self._last_index = 0
        SimplePlugin.__init__(self, bus)
        for channel in ("acquire_thread", "start_thread", "release_thread", "stop_thread"):
            self.bus.listeners.setdefault(channel, set())

    def acquire_thread(self) -> None:
        """Run the ``start_thread`` listeners for the current thread, if not seen yet.

        Thread idents are not used as the index because platforms reuse them.
        """
        ident = threading.get_ident()
        with self._lock:
            if ident in self.threads:
                return
            self._last_index += 1
            index = self.threads[ident] = self._last_index
        self.bus.publish("start_thread", index)

    def release_thread(self) -> None:
        """Release the current thread and run the ``stop_thread`` listeners for it."""
        ident = threading.get_ident()
        with self._lock:
            index = self.threads.pop(ident, None)
        if index is not None:
            self.bus.publish("stop_thread", index)

    def stop(self) -> None:
        """Release all threads and run the ``stop_thread`` listeners for each."""
        with self._lock:
            indexes = sorted(self.threads.values())
            self.threads.clear()
            self._last_index = 0
        # One failing listener must not leave the other threads' resources behind.
        failure = None
        for index in indexes:
            try:
                self.bus.publish("stop_thread", index)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    graceful = stop
