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
    never share one (CherryPy's could, after a release); after a stop they start again from 1,
    but only once no thread of the old numbering is still starting or stopping. Every method
    is safe to call from any number of threads at once.

    Every thread whose ``start_thread`` was published gets exactly one ``stop_thread`` when it
    is released or the bus stops, after its last ``start_thread`` listener returned: ``stop``
    waits for threads still starting (CherryPy's published ``stop_thread`` for them at once,
    so a resource opened by a later ``start_thread`` listener was never closed). A thread
    that releases itself or stops the bus from one of its own ``start_thread`` listeners
    cannot be waited for; its
    ``stop_thread`` is published by ``acquire_thread`` once ``start_thread`` returns.
    """

    threads: Any = None
    """A map of {thread ident: index number} pairs."""

    def __init__(self, bus: Any) -> None:
        self.threads = {}
        # One condition guards all the state below; stop() waits on it for starts to finish.
        self._cond = threading.Condition(threading.Lock())
        self._last_index = 0
        self._starting: dict[int, int] = {}  # {index: ident} while start_thread is published
        self._deferred: set[int] = set()  # released while starting: stop_thread after start
        self._live = 0  # indexes given out whose stop_thread has not finished yet
        self._renumber = False  # a stop asked to count from 1 again, once nothing is live
        SimplePlugin.__init__(self, bus)
        for channel in ("acquire_thread", "start_thread", "release_thread", "stop_thread"):
            self.bus.listeners.setdefault(channel, set())

    def acquire_thread(self) -> None:
        """Run the ``start_thread`` listeners for the current thread, if not seen yet.

        Thread idents are not used as the index because platforms reuse them.
        """
        ident = threading.get_ident()
        with self._cond:
            if ident in self.threads:
                return
            if self._renumber and not self._live:
                self._last_index = 0
                self._renumber = False
            self._last_index += 1
            index = self.threads[ident] = self._last_index
            self._starting[index] = ident
            self._live += 1
        try:
            self.bus.publish("start_thread", index)
        finally:
            # Even if a listener failed: the start is over, and stop() may be waiting for it.
            with self._cond:
                del self._starting[index]
                released = index in self._deferred
                self._deferred.discard(index)
                self._cond.notify_all()
            if released:
                self._stop_thread(index)

    def release_thread(self) -> None:
        """Release the current thread and run the ``stop_thread`` listeners for it."""
        ident = threading.get_ident()
        with self._cond:
            index = self.threads.pop(ident, None)
            if index is not None and index in self._starting:
                # Called from one of our own start_thread listeners: the rest of them must
                # still run, so acquire_thread publishes stop_thread when they have.
                self._deferred.add(index)
                return
        if index is not None:
            self._stop_thread(index)

    def stop(self) -> None:
        """Release all threads and run the ``stop_thread`` listeners for each.

        A thread still running its ``start_thread`` listeners is waited for, so that its
        ``stop_thread`` comes after them; the current thread's own start (stop called from
        one of its ``start_thread`` listeners) is left to ``acquire_thread`` to finish, since
        waiting for it would never end. Threads that acquire meanwhile are not released:
        they are registered after this stop took its list, and a later stop releases them.
        """
        me = threading.get_ident()
        with self._cond:
            indexes = sorted(self.threads.values())
            self.threads.clear()
            self._renumber = True
            mine = {i for i in indexes if self._starting.get(i) == me}
            self._deferred.update(mine)
            indexes = [i for i in indexes if i not in mine]
            # Each of these starts ends (its publish returns or raises) without needing this
            # thread, and none can be deferred by anyone else: it is no longer registered.
            self._cond.wait_for(lambda: not any(i in self._starting for i in indexes))
        # One failing listener must not leave the other threads' resources behind.
        failure = None
        for index in indexes:
            try:
                self._stop_thread(index)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    graceful = stop

    def _stop_thread(self, index: int) -> None:
        """Publish ``stop_thread`` for *index*; after that, the index may be given out again."""
        try:
            self.bus.publish("stop_thread", index)
        finally:
            with self._cond:
                self._live -= 1
