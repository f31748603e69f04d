"""The lifecycle Bus: wspbus's process state machine on top of the active core.

Written once: :class:`Lifecycle` holds the state machine and :class:`Bus` joins it to the core
that :mod:`fastbus._core` selected. The module docstring of :mod:`fastbus._states` draws the
state diagram; each transition publishes to the channel of the same name.
"""

from __future__ import annotations

import _thread
import atexit
import numbers
import os
import sys
import threading
import time
import traceback as _traceback
import warnings
import weakref
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any, Callable

from . import _reexec
from ._arguments import check_seconds
from ._core import CoreBus
from ._listeners import Listeners
from ._states import State, states
from ._subscriptions import Subscribed

__all__ = ("Bus", "Lifecycle", "bus_class_on")

BUILTIN_CHANNELS = ("start", "stop", "exit", "graceful", "log", "main")
EX_SOFTWARE = 70  # os.EX_SOFTWARE, which Windows lacks


class _StateAttribute:
    """``bus.state``: an ordinary attribute, except that setting it wakes :meth:`Bus.wait`.

    Read on the class it gives ``states.STOPPED``, as wspbus's class attribute does. The value
    lives in an ordinary attribute (not looked up through ``__dict__``, which would cost every
    later method lookup on the bus its fast path in CPython's specializing interpreter).
    """

    def __get__(self, bus: Any, owner: type | None = None) -> State:
        if bus is None:
            return states.STOPPED
        return getattr(bus, "_fastbus_state", states.STOPPED)

    def __set__(self, bus: Any, value: State) -> None:
        bus._fastbus_state = value
        # Wake every wait(). No lock is taken: the state is often set from a signal handler,
        # which may interrupt this very loop in the same thread.
        for waker in list(getattr(bus, "_wakers", ())):
            try:
                waker.release()
            except RuntimeError:  # released already, and not yet taken back by its waiter
                pass


class _ExitCheck:
    """The atexit hook of one bus; it holds the bus weakly so the bus can still be freed."""

    __slots__ = ("bus",)

    def __init__(self, bus: Lifecycle) -> None:
        self.bus = weakref.ref(bus)

    def __call__(self) -> None:
        bus = self.bus()
        if bus is not None:
            bus._clean_exit()


def _wanted_states(state: Any) -> set[Any]:
    # One state, or an iterable of them (strings count as one value, None as none).
    if state is None:
        return set()
    if isinstance(state, (str, bytes)):
        return {state}
    try:
        return set(state)
    except TypeError:
        return {state}


if TYPE_CHECKING:
    # For type checkers the lifecycle is a core bus, so that the core's typed methods
    # (subscribe, publish, ...) are what users of Bus see; at run time it is a mixin joined
    # to whichever core is active (see Bus below).
    _Core = CoreBus
else:
    _Core = object


class Lifecycle(_Core):
    """Process state-machine and messenger for HTTP site deployment.

    All listeners of a channel are called even if others of that channel fail. Each failure is
    logged and execution proceeds to the next listener; the only way to stop all processing
    from inside a listener is to raise SystemExit (or KeyboardInterrupt) and stop the whole
    server.
    """

    listeners: Listeners

    states = states
    state = _StateAttribute()
    execv = False
    max_cloexec_files = _reexec.MAX_FILES

    def __init__(self) -> None:
        # One lock per running wait(), held by it and released to wake it (see wait()).
        self._wakers: set[Any] = set()
        self._exit_check: _ExitCheck | None = None
        self.execv = False
        # Through the attribute, so that a subclass's ``state`` property sees it.
        self.state = states.STOPPED
        for channel in BUILTIN_CHANNELS:
            self._set_listeners(channel, (), only_if_new=True)
        self.listeners = Listeners(self)

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} {self.state!r} at {id(self):#x}>"

    def subscribed(
        self, channel: Hashable, callback: Callable[..., Any], priority: float | numbers.Real | None = None, *,
        weak: bool = False, once: bool = False,
    ) -> Subscribed:
        """Subscribe *callback* for the length of a ``with`` or ``async with`` block.

        ``with bus.subscribed("x", f): ...`` subscribes ``f`` (with ``subscribe``'s arguments)
        on entering and, on leaving, also by an exception, puts the channel back as it was
        for ``f``: unsubscribed, or subscribed as before the block if it already was. The
        arguments are checked here, at the call. Entering gives the callback.
        """
        return Subscribed(self, channel, callback, priority, weak, once)

    # -- the state machine ------------------------------------------------------------------

    def _clean_exit(self) -> None:
        """Shut the bus down at interpreter exit if nobody did, and warn about it."""
        if self.state != states.EXITING:
            warnings.warn(  # noqa: B028
                "The main thread is exiting, but the Bus is in the %r state; "
                "shutting it down automatically now. You must either call "
                "bus.block() after start(), or call bus.exit() before the "
                "main thread exits." % self.state,
                RuntimeWarning,
            )
            self.exit()

    def start(self) -> None:
        """Start all services: publish ``start``, moving STOPPED → STARTING → STARTED.

        If a ``start`` listener fails, the bus logs it, exits (running the ``stop`` and
        ``exit`` listeners) and ends the process with exit code 70, as wspbus does.
        """
        if self._exit_check is None:
            self._exit_check = _ExitCheck(self)
            atexit.register(self._exit_check)
        self.state = states.STARTING
        self.log("Bus STARTING")
        try:
            self.publish("start")
            self.state = states.STARTED
            self.log("Bus STARTED")
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            self.log("Shutting down due to error in start listener:", level=40, traceback=True)
            error = sys.exc_info()[1]
            try:
                self.exit()
            except Exception:
                # Failures of stop and exit listeners were logged by publish.
                pass
            raise error  # type: ignore[misc]  # noqa: B904

    def stop(self) -> None:
        """Stop all services: publish ``stop``, moving STARTED → STOPPING → STOPPED."""
        self.state = states.STOPPING
        self.log("Bus STOPPING")
        self.publish("stop")
        self.state = states.STOPPED
        self.log("Bus STOPPED")

    def exit(self) -> None:
        """Stop all services and prepare to exit the process; never raises an Exception.

        exit() is often called from a thread, a signal handler or an atexit hook, where an
        exception would go unseen; so if a ``stop`` or ``exit`` listener fails, the failure is
        logged and the process ends at once with exit code 70. Exiting while still STARTING
        (a start listener failed, or Ctrl-C while one hung) also ends the process, since
        returning could loop forever.
        """
        exitstate = self.state
        try:
            self.stop()
            self.state = states.EXITING
            self.log("Bus EXITING")
            self.publish("exit")
            # Not strictly needed, but better than a last "Waiting for child threads...".
            self.log("Bus EXITED")
        except Exception:
            os._exit(EX_SOFTWARE)
        if exitstate == states.STARTING:
            os._exit(EX_SOFTWARE)

    def restart(self) -> None:
        """Restart the process (may close connections).

        The calling thread only exits the bus and flags the restart; the main thread, in
        :meth:`block`, re-executes the process, as some platforms require.
        """
        self.execv = True
        self.exit()

    def graceful(self) -> None:
        """Advise all services to reload: publish ``graceful``."""
        self.log("Bus graceful")
        self.publish("graceful")

    def block(self, interval: float = 0.1) -> None:
        """Wait for the EXITING state, KeyboardInterrupt or SystemExit, then wind down.

        Meant for the main thread. After EXITING it waits for every other non-daemon thread
        to end (needed on macOS, and it lets them finish before atexit hooks run), then
        re-executes the process if :meth:`restart` asked for it; that way another thread can
        ask for the restart while the main thread performs it.
        """
        try:
            self.wait(states.EXITING, interval=interval, channel="main")
        except (KeyboardInterrupt, OSError):
            # An interrupted sleep may surface as OSError (EINTR) on some platforms.
            self.log("Keyboard Interrupt: shutting down bus")
            self.exit()
        except SystemExit:
            self.log("SystemExit raised: shutting down bus")
            self.exit()
            raise

        self.log("Waiting for child threads to terminate...")
        current, main = threading.current_thread(), threading.main_thread()
        for thread in threading.enumerate():
            # Never join ourselves or the main thread (which may be elsewhere when a Windows
            # service or another thread runs exit); daemon threads end with the process.
            if thread is not current and thread is not main and not thread.daemon:
                self.log("Waiting for thread %s." % thread.name)
                thread.join()

        if self.execv:
            self._do_execv()

    def wait(self, state: Any, interval: float = 0.1, channel: Any = None) -> None:
        """Wait until the bus is in *state* (a state or an iterable of states).

        Returns as soon as the state is set (within a millisecond, not at the next poll as in
        wspbus), and publishes to *channel* every *interval* seconds meanwhile.
        """
        check_seconds(interval, "interval")
        wanted = _wanted_states(state)
        waker = _thread.allocate_lock()
        waker.acquire()
        # Registered before the first look at the state: a change from then on releases the
        # waker, so the acquire below returns at once even if the change came first.
        self._wakers.add(waker)
        try:
            next_tick = time.monotonic() + interval
            while self.state not in wanted:
                remaining = next_tick - time.monotonic()
                if remaining > 0:
                    waker.acquire(timeout=remaining)
                    continue
                self.publish(channel)
                now = time.monotonic()
                next_tick = max(next_tick + interval, now) if interval else now
        finally:
            self._wakers.discard(waker)

    def start_with_callback(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> threading.Thread:
        """Start *func* in a new thread T, then start the bus, and return T.

        T waits until the bus is STARTED before calling ``func(*args, **kwargs)``.
        """
        if not callable(func):
            raise TypeError(f"func must be callable, not {type(func).__name__!r}")
        args = tuple(args) if args is not None else ()
        kwargs = dict(kwargs) if kwargs is not None else {}

        def _callback() -> None:
            self.wait(states.STARTED)
            func(*args, **kwargs)

        thread = threading.Thread(target=_callback)
        thread.name = "Bus Callback " + thread.name
        thread.start()
        self.start()
        return thread

    def log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        """Publish *msg* at *level* to ``log``, with the exception being handled if asked."""
        if traceback:
            msg += "\n" + "".join(_traceback.format_exception(*sys.exc_info()))
        self.publish("log", msg, level)

    # -- re-executing the process, for restart() --------------------------------------------

    def _do_execv(self) -> None:
        """Re-execute the current process; call from the main thread only.

        Some platforms (macOS) do not take ``execv`` from a child thread well.
        """
        args = self._get_true_argv()
        self.log("Re-spawning %s" % " ".join(args))
        self._extend_pythonpath(os.environ)
        if sys.platform == "win32":
            args = ['"%s"' % arg for arg in args]
        os.chdir(_reexec.STARTUP_CWD)
        if self.max_cloexec_files:
            self._set_cloexec()
        os.execv(sys.executable, args)

    _get_interpreter_argv = staticmethod(_reexec.interpreter_argv)
    _get_true_argv = staticmethod(_reexec.true_argv)
    _extend_pythonpath = staticmethod(_reexec.extend_pythonpath)

    def _set_cloexec(self) -> None:
        """Mark open files (but stdin/out/err) close-on-exec, below ``max_cloexec_files``.

        Set ``max_cloexec_files`` to 0 to leave descriptors as they are.
        """
        _reexec.set_cloexec(self.max_cloexec_files)


class Bus(Lifecycle, CoreBus):
    __doc__ = Lifecycle.__doc__


def bus_class_on(core_bus: type) -> type[Bus]:
    """Return the lifecycle Bus on *core_bus*: :class:`Bus` itself for the active core.

    The test suite uses it to run the one lifecycle on both cores.
    """
    if core_bus is CoreBus:
        return Bus
    made: type[Bus] = type("Bus", (Lifecycle, core_bus), {"__module__": __name__, "__doc__": Bus.__doc__})
    return made
