"""The contenders: fastbus on each core, its peers, and the floor, behind one small interface.

Each contender says, as Python source, how a user of its API would publish and how they would
subscribe then unsubscribe one callback (``_measure`` times exactly those statements), and what
it does not do that fastbus does, so the tables never compare unlike work without saying so.
All of them are given the same callback objects.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Callable

__all__ = ("CONTENDERS", "SHAPES", "Built", "Contender", "Unavailable", "make_callbacks")

CHANNEL = "ch"
WSPBUS = "cherrypy.process.wspbus"

# How a publish passes its data: the source of the argument list, and the words for tables.
SHAPES = {
    "positional": ("1", "one positional argument"),
    "keyword": ("key=1", "one keyword argument"),
    "none": ("", "no argument"),
}


class Unavailable(Exception):
    """The contender cannot run here; the message says why (shown as "skipped: ...")."""


def make_callbacks(count: int) -> list[Callable[..., None]]:
    """Return *count* distinct no-op functions, as a real application's would be.

    Distinct objects matter: a registry keyed by callback would collapse copies of one
    function. They take an optional positional ``arg`` and keyword ``key`` so that every shape
    of publish, and blinker's sender, fit them.
    """

    def make() -> Callable[..., None]:
        def noop(arg: Any = None, key: Any = None) -> None:
            return None

        return noop

    return [make() for _ in range(count)]


class Built:
    """One contender holding some callbacks, ready to be timed.

    *env* names the objects that the statements use; *publish* maps each supported shape to
    its statement; *churn* subscribes and unsubscribes ``extra`` (None: no registry);
    *activate*, if given, runs before each timed batch (zope.event's list is global).
    """

    __slots__ = ("env", "publish", "churn", "activate", "keep")

    def __init__(
        self,
        env: dict[str, Any],
        publish: dict[str, str],
        churn: str | None = None,
        activate: Callable[[], None] | None = None,
        keep: Any = None,
    ) -> None:
        self.env = env
        self.publish = publish
        self.churn = churn
        self.activate = activate
        self.keep = keep  # whatever must stay alive while the statements run

    def call(self, shape: str) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
        """The publish statement for *shape* as ``(function, args, kwargs)``.

        For harnesses that make the call themselves (pytest-benchmark): they then call exactly
        what the command times, with no wrapper of ours in between. Raises KeyError if the
        contender does not publish in that shape.
        """
        node = ast.parse(self.publish[shape], mode="eval").body
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            raise ValueError(f"not a plain call: {self.publish[shape]!r}")
        args = tuple(ast.literal_eval(arg) for arg in node.args)
        kwargs = {str(kw.arg): ast.literal_eval(kw.value) for kw in node.keywords}
        return self.env[node.func.id], args, kwargs


def _calls(function: str, lead: str = "") -> dict[str, str]:
    # One statement per shape, e.g. "publish('ch', 1)".
    return {
        shape: f"{function}({', '.join(part for part in (lead, args) if part)})"
        for shape, (args, _) in SHAPES.items()
    }


# What makes fastbus's own compiled contenders importable. fastbus is not on PyPI: it is
# installed from its checkout, and that install builds the extensions when it can.
BUILD_HINT = (
    "to build it, install fastbus from its checkout where a C compiler and Python headers "
    "are present: python -m pip install -e ."
)


def pip_hint(*distributions: str) -> str:
    """The command that installs *distributions* into the running interpreter."""
    return f"install it with: python -m pip install {' '.join(distributions)}"


class Contender:
    """A named way to dispatch; subclasses import their library in :meth:`load`."""

    name = ""
    summary = ""
    gaps: tuple[str, ...] = ()  # what it does not do that fastbus does
    hint = ""  # how to make it importable, shown after the reason it was skipped

    def load(self) -> None:
        """Import what is needed; raise :class:`Unavailable` if it cannot run here."""

    def version(self) -> str | None:
        return None

    def restore(self) -> None:
        """Undo any global change :meth:`build` made (only zope.event needs one)."""

    def build(self, callbacks: Sequence[Callable[..., Any]]) -> Built:
        raise NotImplementedError

    def _import(self, module: str, why: str) -> Any:
        try:
            return importlib.import_module(module)
        except ImportError as exc:
            reason = f"{why} ({exc})"
            raise Unavailable(f"{reason}; {self.hint}" if self.hint else reason) from None


class Floor(Contender):
    name = "floor"
    summary = "fastbus._floor: a compiled loop that calls the callbacks and collects results"
    gaps = ("no registry, channels, priorities or error handling: the least any bus must do",)
    hint = BUILD_HINT

    def load(self) -> None:
        self.module = self._import("fastbus._floor", "floor unavailable")

    def build(self, callbacks: Sequence[Callable[..., Any]]) -> Built:
        floor = self.module.Floor(list(callbacks))
        return Built({"call": floor.call}, _calls("call"), keep=floor)


class _FastbusBus(Contender):
    core = ""

    def load(self) -> None:
        core = self._import(self.core, "not built")
        from fastbus._bus import bus_class_on

        self.Bus = bus_class_on(core.CoreBus)

    def version(self) -> str | None:
        import fastbus

        return fastbus.__version__

    def build(self, callbacks: Sequence[Callable[..., Any]]) -> Built:
        return _wspbus_like(self.Bus(), callbacks)


def _wspbus_like(bus: Any, callbacks: Iterable[Callable[..., Any]]) -> Built:
    # Declared first, the way CherryPy declares its channels, so that "0 subscribers" times a
    # publish to an existing, empty channel rather than the shortcut for an unknown one.
    bus.listeners.setdefault(CHANNEL, set())
    for callback in callbacks:
        bus.subscribe(CHANNEL, callback)
    env = {"publish": bus.publish, "subscribe": bus.subscribe, "unsubscribe": bus.unsubscribe}
    churn = f"subscribe({CHANNEL!r}, extra); unsubscribe({CHANNEL!r}, extra)"
    return Built(env, _calls("publish", repr(CHANNEL)), churn, keep=bus)


class FastbusCompiled(_FastbusBus):
    name = "fastbus-c"
    summary = "fastbus.Bus on the compiled core (fastbus._core_c)"
    core = "fastbus._core_c"
    hint = BUILD_HINT


class FastbusPure(_FastbusBus):
    name = "fastbus-py"
    summary = "fastbus.Bus on the pure-Python core (fastbus._core_py)"
    core = "fastbus._core_py"


class Wspbus(Contender):
    name = "wspbus"
    summary = "cherrypy.process.wspbus.Bus, the stock bus; it sorts the listeners on every publish"
    hint = pip_hint("CherryPy")

    def load(self) -> None:
        self.module = self._import(WSPBUS, "CherryPy is not installed")
        # In a process that ran fastbus.install() (python -m fastbus.run, say), the import hook
        # answers for this module with fastbus's own Bus: timing it would set fastbus against
        # itself under wspbus's name.
        served = (self.module, sys.modules.get(WSPBUS))
        bus_home = getattr(getattr(self.module, "Bus", None), "__module__", "") or ""
        if any(getattr(m, "__fastbus__", False) for m in served) or bus_home.startswith("fastbus"):
            raise Unavailable(
                f"{WSPBUS} is served by fastbus in this process (fastbus.install() or "
                "python -m fastbus.run), so it would be fastbus itself; run the benchmark "
                "with plain python to measure the stock wspbus"
            )

    def version(self) -> str | None:
        return _dist_version("CherryPy")

    def build(self, callbacks: Sequence[Callable[..., Any]]) -> Built:
        return _wspbus_like(self.module.Bus(), callbacks)


class Blinker(Contender):
    name = "blinker"
    summary = "blinker.Signal: connect(weak=False) / send(sender, **kwargs)"
    gaps = (
        "no priorities; stops at the first failing receiver",
        "always passes a sender positionally (None for the keyword and no-argument cases)",
        "returns (receiver, result) pairs; receivers held strongly here (weak=False; its "
        "default weak references cost more)",
    )

    hint = pip_hint("blinker")

    def load(self) -> None:
        self.module = self._import("blinker", "not installed")

    def version(self) -> str | None:
        return _dist_version("blinker")

    def build(self, callbacks: Sequence[Callable[..., Any]]) -> Built:
        signal = self.module.Signal()
        for callback in callbacks:
            signal.connect(callback, weak=False)
        env = {"send": signal.send, "connect": signal.connect, "disconnect": signal.disconnect}
        return Built(env, _calls("send"), "connect(extra, weak=False); disconnect(extra)", keep=signal)


class Psygnal(Contender):
    name = "psygnal"
    summary = "psygnal.SignalInstance((object,)): connect / emit(*args)"
    gaps = (
        "no keyword arguments (that case is not run); returns no results",
        "stops at the first failing callback (raises EmitLoopError)",
    )

    hint = pip_hint("psygnal")

    def load(self) -> None:
        self.module = self._import("psygnal", "not installed")

    def version(self) -> str | None:
        return _dist_version("psygnal")

    def build(self, callbacks: Sequence[Callable[..., Any]]) -> Built:
        # emit() with fewer arguments than declared is allowed (check_nargs is off by default),
        # so one signal serves the positional and the no-argument cases.
        signal = self.module.SignalInstance((object,))
        for callback in callbacks:
            signal.connect(callback)
        env = {"emit": signal.emit, "connect": signal.connect, "disconnect": signal.disconnect}
        publish = _calls("emit")
        del publish["keyword"]
        return Built(env, publish, "connect(extra); disconnect(extra)", keep=signal)


class Pyee(Contender):
    name = "pyee"
    summary = "pyee.EventEmitter: add_listener / emit(event, *args, **kwargs)"
    gaps = (
        "no priorities; returns whether anyone listened, not the results",
        "stops at the first failing listener",
    )

    hint = pip_hint("pyee")

    def load(self) -> None:
        self.module = self._import("pyee", "not installed")

    def version(self) -> str | None:
        return _dist_version("pyee")

    def build(self, callbacks: Sequence[Callable[..., Any]]) -> Built:
        emitter = self.module.EventEmitter()
        for callback in callbacks:
            emitter.add_listener(CHANNEL, callback)
        env = {"emit": emitter.emit, "on": emitter.add_listener, "off": emitter.remove_listener}
        churn = f"on({CHANNEL!r}, extra); off({CHANNEL!r}, extra)"
        return Built(env, _calls("emit", repr(CHANNEL)), churn, keep=emitter)


class ZopeEvent(Contender):
    name = "zope.event"
    summary = "zope.event: subscribers.append / notify(event)"
    gaps = (
        "one global list, no channels; exactly one positional argument (the keyword and "
        "no-argument cases are not run)",
        "no priorities; returns no results; stops at the first failing subscriber; "
        "unsubscribing is list.remove, a linear search",
    )

    hint = pip_hint("zope.event")

    def load(self) -> None:
        self.module = self._import("zope.event", "not installed")
        # notify() reads the module's global list at each call, so each build gets a list of
        # its own that activate() binds there; restore() puts the user's list back.
        self.saved = self.module.subscribers

    def restore(self) -> None:
        self.module.subscribers = self.saved

    def version(self) -> str | None:
        return _dist_version("zope.event")

    def build(self, callbacks: Sequence[Callable[..., Any]]) -> Built:
        module = self.module
        subscribers: list[Callable[..., Any]] = []
        module.subscribers = subscribers
        for callback in callbacks:
            subscribers.append(callback)

        def activate() -> None:
            module.subscribers = subscribers

        env = {"notify": module.notify, "append": subscribers.append, "remove": subscribers.remove}
        churn = "append(extra); remove(extra)"
        return Built(env, {"positional": "notify(1)"}, churn, activate, keep=subscribers)


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


CONTENDERS: dict[str, type[Contender]] = {
    cls.name: cls
    for cls in (Floor, FastbusCompiled, FastbusPure, Wspbus, Blinker, Psygnal, Pyee, ZopeEvent)
}
"""Every contender by name, in the order tables show them."""
