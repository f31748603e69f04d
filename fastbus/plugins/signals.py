"""SignalHandler: turn the operating system's signals into publishes on the bus."""

from __future__ import annotations

import os
import signal as _signal
import sys
import threading
from collections import OrderedDict
from typing import Any, Callable

__all__ = ("SignalHandler",)

# The signals caught and not yet served, oldest first: {(id(handler), signum): handler}.
# Process-wide, like signal handlers: Python runs them all in the main thread, so one
# serving loop (see SignalHandler._handle_signal) serves them all, whichever bus they are for.
_pending: OrderedDict[tuple[int, int | None], SignalHandler] = OrderedDict()
# True while that loop runs; a handler invoked meanwhile only queues its signal.
_serving = False


def _serve_pending() -> None:
    """Serve the queued signals in arrival order, unless that is already being done."""
    global _serving
    # Looked at again once the flag is down: a handler that ran just before it went down
    # saw it up and left its signal queued for us.
    while _pending and not _serving:
        try:
            _serving = True
            while _pending:
                (_, signum), handler = _pending.popitem(last=False)
                handler._serve(signum)
        finally:
            _serving = False


def _stdin_is_tty() -> bool:
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        # No stdin at all (pythonw, or closed): certainly not a terminal.
        return False


class SignalHandler:
    """Register bus channels (and listeners) for system signals.

    Each signal handled gets a channel named after it (``'SIGTERM'``, ``'SIGHUP'``...); the
    Python signal handler installed by :meth:`set_handler` logs the signal and publishes to
    that channel, so any number of listeners can react to it. A failing listener is logged
    (by the publish) and never raised into the code the signal interrupted, and signals that
    arrive while one is being served wait for it to finish (see :meth:`_handle_signal`).
    What the application does on each signal is set through :attr:`handlers`, a dict of
    ``{signal name: listener}``; the default is::

        handlers = {'SIGTERM': bus.exit,
                    'SIGHUP': self.handle_SIGHUP,
                    'SIGUSR1': bus.graceful}

    :meth:`handle_SIGHUP` restarts the process if it is daemonized but exits if it is
    attached to a terminal, because Unix window managers send SIGHUP to the processes of a
    terminal window that the user closes.

    Signals that the platform lacks may be listed too: :meth:`subscribe` skips them.
    :meth:`unsubscribe` puts back the handlers that were in place before.
    """

    handlers: dict[str, Callable[..., Any]] = {}  # noqa: RUF012
    """A map from signal names (e.g. ``'SIGTERM'``) to listeners (e.g. ``bus.exit``)."""

    signals: dict[int, str] = {int(sig): sig.name for sig in _signal.Signals}  # noqa: RUF012
    """A map from signal numbers to names (the canonical name where a number has several)."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.handlers = {
            "SIGTERM": self.bus.exit,
            "SIGHUP": self.handle_SIGHUP,
            "SIGUSR1": self.bus.graceful,
        }
        # signal number -> the handler that was there before ours, for unsubscribe().
        self._previous_handlers: dict[int, Any] = {}
        # (channel, listener) pairs subscribed by set_handler, for unsubscribe().
        self._listeners: list[tuple[str, Callable[..., Any]]] = []
        self._lock = threading.RLock()
        # A daemonized process runs under another PID than the one that built this plugin.
        self._original_pid = os.getpid()

    def _is_daemonized(self) -> bool:
        """Tell whether this process runs as a daemon.

        It does if its PID differs from the one that created the plugin (it was forked
        since) *and* its stdin is not a terminal. The terminal test alone would be fooled by
        CI tools (Buildbot, Jenkins) that run the process without one.
        """
        return self._original_pid != os.getpid() and not _stdin_is_tty()

    def subscribe(self) -> None:
        """Install the handlers of :attr:`handlers` for their signals.

        Signals this platform does not have are skipped silently. A signal that exists but
        cannot be handled here (Python only sets handlers from the main thread) is logged at
        WARNING level and skipped.
        """
        with self._lock:
            for signame, listener in list(self.handlers.items()):
                try:
                    self.set_handler(signame, listener)
                except ValueError as exc:
                    if self._signal_number(signame) is not None:
                        self.bus.log("Could not listen for %s: %s" % (signame, exc), level=30)

    def unsubscribe(self) -> None:
        """Put back the signal handlers in place before :meth:`subscribe`; drop our listeners."""
        with self._lock:
            previous, self._previous_handlers = self._previous_handlers, {}
            listeners, self._listeners = self._listeners, []
            for signum, handler in previous.items():
                signame = self.signals.get(signum, str(signum))
                if handler is None:
                    # Set from outside Python; the default is the best we can restore.
                    self.bus.log("Restoring %s handler to SIG_DFL." % signame)
                    handler = _signal.SIG_DFL
                else:
                    self.bus.log("Restoring %s handler %r." % (signame, handler))
                try:
                    ours = _signal.signal(signum, handler)
                except ValueError:
                    self.bus.log(
                        "Unable to restore %s handler %r." % (signame, handler),
                        level=40,
                        traceback=True,
                    )
                    continue
                if ours != self._handle_signal:
                    self.bus.log(
                        "Restored old %s handler %r, but our handler was not registered."
                        % (signame, handler),
                        level=30,
                    )
            for channel, listener in listeners:
                self.bus.unsubscribe(channel, listener)

    def _signal_number(self, signal: str | bytes | int) -> Any:
        if isinstance(signal, bytes):
            signal = os.fsdecode(signal)
        if isinstance(signal, str):
            if not signal.startswith("SIG") or signal.startswith("SIG_"):
                return None
            return getattr(_signal, signal, None)
        return signal if signal in self.signals else None

    def set_handler(self, signal: str | bytes | int, listener: Callable[..., Any] | None = None) -> None:
        """Handle *signal* (a name such as ``'SIGHUP'`` or a number) by publishing to its channel.

        If *listener* is given, it is subscribed to the signal's channel, before the handler
        is installed so that a signal arriving meanwhile is not lost. Raises ValueError if
        the signal does not exist on this platform, or cannot be handled from this thread.
        """
        if isinstance(signal, bool) or not isinstance(signal, (str, bytes, int)):
            raise TypeError(f"signal must be a signal name or number, not {type(signal).__name__!r}")
        if listener is not None and not callable(listener):
            raise TypeError(f"listener must be callable, not {type(listener).__name__!r}")
        signum = self._signal_number(signal)
        if signum is None:
            raise ValueError("No such signal: %r" % (signal,))
        signame = self.signals[signum]
        with self._lock:
            if listener is not None:
                self.bus.log("Listening for %s." % signame)
                self.bus.subscribe(signame, listener)
                self._listeners.append((signame, listener))
            previous = _signal.signal(signum, self._handle_signal)
            # Subscribing twice must not make our own handler the one to restore.
            self._previous_handlers.setdefault(signum, previous)

    def _handle_signal(self, signum: int | None = None, frame: Any = None) -> None:
        """The Python signal handler (:meth:`set_handler` installs it): log, then publish.

        Python runs signal handlers in the main thread at whatever point it had reached: between
        two bytecodes, or inside a C call that checks for signals, such as a buffered stream's
        flush, which does so while it holds the stream's lock. So handlers nest: a signal that
        arrives while the previous one is being served runs its handler in the middle of that
        one, and when both write the same log stream the inner write fails with "RuntimeError:
        reentrant call inside <_io.BufferedWriter ...>". Hence two rules:

        - **One signal is served at a time.** The handler queues the signal; only the outermost
          invocation serves, taking the queue in arrival order until it is empty. An invocation
          nested in it only queues and returns, doing no I/O and taking no lock. A signal already
          queued and not yet served is not queued twice, as the kernel merges a pending standard
          signal. Serving from a thread instead would take the listeners (``exit`` above all) off
          the main thread, where wspbus runs them and where :meth:`Bus.block` expects an
          exception that stops the process; so the work stays here, and only its nesting goes.
        - **No Exception escapes.** Whatever the main thread was doing (``bus.block()``, a
          request, a write) is unrelated to the signal. A listener failure was logged by the
          publish (as ``Error in 'SIGUSR1' listener ...``) and its ChannelFailures stops here;
          any other error is logged here; a failing log is dropped, as nothing is left to log it
          with, and does not keep the signal from being published. KeyboardInterrupt and
          SystemExit still propagate: a listener raises them to stop the whole process (the
          bus's own ``exit()`` raises nothing else: it ends the process with ``os._exit(70)``
          when a listener fails), and ``block()`` turns them into an exit. Signals queued
          behind one of them are served by the next signal's handler.

        Reentrancy with the main thread's own work remains a limit of any Python signal
        handler that does I/O: a signal that interrupts the main thread inside a write to the
        very stream a ``log`` listener writes to makes that listener fail. In a server the main
        thread waits in ``block()`` and writes nothing, so this does not arise.
        """
        _pending[(id(self), signum)] = self
        _serve_pending()

    def _serve(self, signum: int | None) -> None:
        """Log and publish one signal; log, never raise, what fails (see :meth:`_handle_signal`)."""
        signame = self.signals.get(signum, str(signum))  # type: ignore[arg-type]
        self._log("Caught signal %s." % signame)
        try:
            self.bus.publish(signame)
        except Exception as exc:
            # ChannelFailures (fastbus's or wspbus's): publish logged each failure already.
            if type(exc).__name__ != "ChannelFailures":
                self._log("Error handling signal %s." % signame, level=40, traceback=True)

    def _log(self, msg: str, level: int = 20, traceback: bool = False) -> None:
        """Log *msg* to the bus, dropping a failure of the log itself (nothing left to log it)."""
        try:
            self.bus.log(msg, level=level, traceback=traceback)
        except Exception:
            pass

    def handle_SIGHUP(self) -> None:
        """Restart if daemonized, else exit (even if the log line about it fails)."""
        if self._is_daemonized():
            self._log("SIGHUP caught while daemonized. Restarting.")
            self.bus.restart()
        else:
            # Not daemonized: in the foreground, or in the background of a shell.
            self._log("SIGHUP caught but not daemonized. Exiting.")
            self.bus.exit()
