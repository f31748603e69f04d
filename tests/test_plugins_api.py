"""The plugins' API: CherryPy's names and signatures, argument checks, in-process behaviour."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import fastbus
from fastbus import plugins
from fastbus.plugins import (
    Autoreloader,
    Daemonizer,
    DropPrivileges,
    Monitor,
    PIDFile,
    SignalHandler,
)

DEADLINE = 15.0


class LogRecorder:
    def __init__(self, bus: Any) -> None:
        self.records: list[tuple[str, int]] = []
        bus.subscribe("log", self)

    def __call__(self, msg: str, level: int = 20) -> None:
        self.records.append((msg, level))

    def messages(self, level: int | None = None) -> list[str]:
        return [m for m, lv in self.records if level is None or lv == level]


@pytest.fixture
def log(bus: Any) -> LogRecorder:
    return LogRecorder(bus)


# -- the same names and signatures as CherryPy's, checked without importing CherryPy ------------


def cherrypy_plugin_classes() -> dict[str, ast.ClassDef]:
    spec = importlib.util.find_spec("cherrypy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("CherryPy is not installed")
    source = Path(spec.submodule_search_locations[0], "process", "plugins.py").read_text()
    return {node.name: node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}


def ast_parameters(cls: ast.ClassDef) -> list[tuple[str, Any]] | None:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            args = node.args
            names = [a.arg for a in args.args]
            defaults = [None] * (len(names) - len(args.defaults)) + [
                ast.literal_eval(d) for d in args.defaults
            ]
            return list(zip(names, defaults))
    return None


def test_same_classes_as_cherrypy() -> None:
    assert set(cherrypy_plugin_classes()) == set(plugins.__all__)
    assert plugins.SimplePlugin is fastbus.SimplePlugin


# PerpetualTimer takes threading.Timer's arguments plus bus=, as CherryPy's does.
@pytest.mark.parametrize("name", sorted(set(plugins.__all__) - {"PerpetualTimer"}))
def test_same_constructor_as_cherrypy(name: str) -> None:
    theirs = ast_parameters(cherrypy_plugin_classes()[name])
    ours = [
        (p.name, None if p.default is inspect.Parameter.empty else p.default)
        for p in inspect.signature(getattr(plugins, name).__init__).parameters.values()
    ]
    if name == "BackgroundTask":
        # Immutable defaults where CherryPy shares a [] and a {} between all instances.
        assert theirs == [("self", None), ("interval", None), ("function", None), ("args", []), ("kwargs", {}), ("bus", None)]
        assert ours == [("self", None), ("interval", None), ("function", None), ("args", ()), ("kwargs", None), ("bus", None)]
    else:
        assert ours == theirs


@pytest.mark.parametrize(
    "method, priority",
    [(DropPrivileges.start, 77), (Daemonizer.start, 65), (PIDFile.start, 70), (Monitor.start, 70), (Autoreloader.start, 70)],
)
def test_default_priorities(method: Any, priority: int) -> None:
    assert method.priority == priority


def test_public_names_have_docstrings() -> None:
    for name in plugins.__all__:
        cls = getattr(plugins, name)
        assert cls.__doc__ and len(cls.__doc__) > 40, name
        for attr, value in vars(cls).items():
            if not attr.startswith("_") and inspect.isfunction(value):
                assert value.__doc__, f"{name}.{attr}"


def test_plugins_do_not_import_cherrypy(python: str, core_env: dict[str, str]) -> None:
    code = (  # every plugin's module, which fastbus.plugins imports only on first use
        "import sys; from fastbus.plugins import *; "
        "assert 'cherrypy' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([python, "-c", code], env=core_env, check=True, timeout=DEADLINE)


# -- PIDFile ----------------------------------------------------------------------------------


def test_pidfile_written_on_start_removed_on_exit(bus: Any, log: LogRecorder, tmp_path: Path) -> None:
    path = tmp_path / "run" / "app.pid"
    path.parent.mkdir()
    plugin = PIDFile(bus, path)
    plugin.subscribe()
    bus.start()
    try:
        assert path.read_bytes() == b"%d\n" % os.getpid()
        assert path.stat().st_mode & 0o777 == 0o644 & ~current_umask()
        assert os.listdir(path.parent) == ["app.pid"]  # no temporary file left
        plugin.start()
        assert f"PID {os.getpid()!r} already written to {path!r}." in log.messages()
    finally:
        bus.exit()
    assert not path.exists()
    assert log.messages().count(f"PID file removed: {path!r}.") == 1


def current_umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def test_pidfile_leaves_files_it_did_not_write(bus: Any, tmp_path: Path) -> None:
    path = tmp_path / "other.pid"
    path.write_text("1\n")
    PIDFile(bus, str(path)).subscribe()
    bus.exit()  # never started: the file is someone else's
    assert path.read_text() == "1\n"


def test_pidfile_argument_checked(bus: Any) -> None:
    with pytest.raises(TypeError, match="pidfile"):
        PIDFile(bus, 42)


# -- Daemonizer, in-process with fork() replaced so that a mistake cannot fork pytest -----------


@pytest.fixture
def no_fork(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    forks: list[int] = []

    def fork() -> int:
        forks.append(1)
        raise AssertionError("the test process must not fork")

    monkeypatch.setattr(os, "fork", fork)
    return forks


def test_daemonizer_refuses_with_other_threads(bus: Any, log: LogRecorder, no_fork: list[int]) -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait, args=(DEADLINE,), name="other")
    other.start()
    try:
        daemonizer = Daemonizer(bus)
        daemonizer.start()
    finally:
        release.set()
        other.join(DEADLINE)
    assert no_fork == [] and daemonizer.finalized is False
    warnings = log.messages(30)
    assert warnings[0].startswith("There are ") and warnings[0].endswith(
        " active threads. Daemonizing now may cause strange failures."
    )
    assert "other" in warnings[0]


def test_daemonizer_refuses_twice(bus: Any, log: LogRecorder, no_fork: list[int]) -> None:
    daemonizer = Daemonizer(bus)
    daemonizer.finalized = True
    daemonizer.start()
    assert no_fork == [] and log.messages() == ["Already deamonized."]


@pytest.mark.parametrize("argument", ["stdin", "stdout", "stderr"])
def test_daemonizer_arguments_checked(bus: Any, argument: str) -> None:
    with pytest.raises(TypeError, match=argument):
        Daemonizer(bus, **{argument: 1})


# -- DropPrivileges: arguments (the real switch runs in a child, test_plugins_process) ---------


@pytest.mark.skipif(sys.platform == "win32", reason="pwd and grp")
def test_drop_privileges_names_become_numbers(bus: Any) -> None:
    import grp
    import pwd

    user, group = pwd.getpwuid(65534).pw_name, grp.getgrgid(65534).gr_name
    plugin = DropPrivileges(bus, umask=0o022, uid=user, gid=group.encode())
    assert (plugin.uid, plugin.gid, plugin.umask) == (65534, 65534, 0o022)
    assert (DropPrivileges(bus, uid=0, gid=0).uid, DropPrivileges(bus).gid) == (0, None)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"uid": 1.5}, TypeError, "uid"),
        ({"uid": -1}, ValueError, "uid"),
        ({"uid": "no-such-user-fastbus"}, ValueError, "uid: no such user"),
        ({"gid": True}, TypeError, "gid"),
        ({"gid": "no-such-group-fastbus"}, ValueError, "gid: no such group"),
        ({"umask": "022"}, TypeError, "umask"),
        ({"umask": 0o1000}, ValueError, "umask"),
    ],
)
def test_drop_privileges_arguments_checked(bus: Any, kwargs: dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        DropPrivileges(bus, **kwargs)


def test_drop_privileges_without_settings_only_warns(bus: Any, log: LogRecorder) -> None:
    plugin = DropPrivileges(bus)
    plugin.start()
    plugin.start()
    assert log.messages(30) == ["uid/gid not set", "umask not set"]
    assert plugin.finalized


# -- SignalHandler in this process (pytest runs tests in the main thread) ----------------------


@pytest.mark.skipif(not hasattr(signal, "SIGUSR2"), reason="needs SIGUSR2")
def test_signal_handler_restores_previous_handlers(bus: Any, log: LogRecorder) -> None:
    def previous(signum: int, frame: Any) -> None:
        pass

    old = signal.signal(signal.SIGUSR2, previous)
    try:
        caught = threading.Event()
        handler = SignalHandler(bus)
        handler.handlers = {"SIGUSR2": caught.set, "SIGNOPE": print}  # unknown: skipped
        handler.subscribe()
        handler.subscribe()  # twice: must still restore `previous`, not our own handler
        assert signal.getsignal(signal.SIGUSR2) == handler._handle_signal
        os.kill(os.getpid(), signal.SIGUSR2)
        assert caught.wait(DEADLINE)
        assert "Caught signal SIGUSR2." in log.messages()
        handler.unsubscribe()
        assert signal.getsignal(signal.SIGUSR2) is previous
        assert caught.set not in bus.listeners["SIGUSR2"]
        assert f"Restoring SIGUSR2 handler {previous!r}." in log.messages()
        assert log.messages(30) == []
    finally:
        signal.signal(signal.SIGUSR2, old)


@pytest.fixture
def usr2(bus: Any) -> Any:
    """A SignalHandler with no default handlers; SIGUSR2's and SIGWINCH's are put back after."""
    if not hasattr(signal, "SIGUSR2") or not hasattr(signal, "raise_signal"):
        pytest.skip("needs SIGUSR2 and signal.raise_signal")
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR2, signal.SIGWINCH)}
    handler = SignalHandler(bus)
    handler.handlers = {}
    try:
        yield handler
    finally:
        handler.unsubscribe()
        for sig, previous in old.items():
            signal.signal(sig, previous)


def test_a_failing_signal_listener_is_logged_not_raised(bus: Any, log: LogRecorder, usr2: SignalHandler) -> None:
    def broken() -> None:
        raise RuntimeError("graceful broke")

    bus.subscribe("graceful", broken)
    usr2.set_handler("SIGUSR2", bus.graceful)
    signal.raise_signal(signal.SIGUSR2)  # runs the handler before returning; used to raise
    errors = log.messages(40)
    assert [e.splitlines()[0] for e in errors] == [
        f"Error in 'graceful' listener {broken!r}",
        f"Error in 'SIGUSR2' listener {bus.graceful!r}",
    ]
    assert all("graceful broke" in e for e in errors)


def test_an_error_outside_the_listeners_is_logged_not_raised(bus: Any, log: LogRecorder, usr2: SignalHandler) -> None:
    class Odd:
        """A bus whose publish itself fails (no ChannelFailures, so nothing logged it)."""

        subscribe, unsubscribe, log, exit, graceful = bus.subscribe, bus.unsubscribe, bus.log, bus.exit, bus.graceful

        def publish(self, channel: Any) -> None:
            raise LookupError("no such thing")

    odd = SignalHandler(Odd())
    odd.handlers = {}
    try:
        odd.set_handler("SIGUSR2")
        signal.raise_signal(signal.SIGUSR2)
    finally:
        odd.unsubscribe()
    (error,) = log.messages(40)
    assert error.startswith("Error handling signal SIGUSR2.\nTraceback") and "LookupError: no such thing" in error


def test_a_failing_log_does_not_keep_the_signal_from_its_listeners(bus: Any, usr2: SignalHandler) -> None:
    served = []

    def failing_log(msg: str, level: int = 20) -> None:
        raise OSError("log disk full")

    usr2.set_handler("SIGUSR2", lambda: served.append(1))
    bus.subscribe("log", failing_log)
    try:
        signal.raise_signal(signal.SIGUSR2)
    finally:
        bus.unsubscribe("log", failing_log)
    assert served == [1]


def test_signals_arriving_during_a_signal_wait_for_it(bus: Any, usr2: SignalHandler) -> None:
    """A nested handler only queues: no listener runs in the middle of another signal's."""
    order: list[str] = []
    calls = []

    def usr2_listener() -> None:
        calls.append(1)
        order.append(f"usr2 {len(calls)} begins")
        if len(calls) == 1:
            signal.raise_signal(signal.SIGWINCH)  # each raise_signal runs the handler at once
            signal.raise_signal(signal.SIGUSR2)
            signal.raise_signal(signal.SIGUSR2)  # still queued: merged with the one before
        order.append(f"usr2 {len(calls)} ends")

    usr2.set_handler("SIGUSR2", usr2_listener)
    usr2.set_handler("SIGWINCH", lambda: order.append("winch"))
    signal.raise_signal(signal.SIGUSR2)
    assert order == ["usr2 1 begins", "usr2 1 ends", "winch", "usr2 2 begins", "usr2 2 ends"]


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_still_propagate(bus: Any, usr2: SignalHandler, stop: type) -> None:
    calls = []

    def listener() -> None:
        calls.append(1)
        if len(calls) == 1:
            signal.raise_signal(signal.SIGUSR2)  # queued behind this one
            raise stop

    usr2.set_handler("SIGUSR2", listener)
    with pytest.raises(stop):
        signal.raise_signal(signal.SIGUSR2)
    assert calls == [1]
    # The queued signal is served with the next one (merged with it), not left behind.
    signal.raise_signal(signal.SIGUSR2)
    assert calls == [1, 1]


def test_signal_handler_defaults(bus: Any) -> None:
    handler = SignalHandler(bus)
    assert handler.handlers == {"SIGTERM": bus.exit, "SIGHUP": handler.handle_SIGHUP, "SIGUSR1": bus.graceful}
    assert SignalHandler.signals[signal.SIGTERM] == "SIGTERM"
    assert not handler._is_daemonized()


def test_signal_handler_from_another_thread_warns(bus: Any, log: LogRecorder) -> None:
    handler = SignalHandler(bus)
    handler.handlers = {"SIGTERM": bus.exit}
    thread = threading.Thread(target=handler.subscribe)
    thread.start()
    thread.join(DEADLINE)
    (warning,) = log.messages(30)
    assert warning.startswith("Could not listen for SIGTERM: ")
    assert signal.getsignal(signal.SIGTERM) != handler._handle_signal


@pytest.mark.parametrize(
    "sig, listener, error, words",
    [
        ("SIGNOPE", None, ValueError, "No such signal: 'SIGNOPE'"),
        (10_000, None, ValueError, "No such signal: 10000"),
        (1.0, None, TypeError, "signal"),
        ("SIGTERM", "exit", TypeError, "listener"),
    ],
)
def test_set_handler_arguments_checked(bus: Any, sig: Any, listener: Any, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        SignalHandler(bus).set_handler(sig, listener)


# -- on a stock cherrypy.process.wspbus.Bus, in a child so that this process's CherryPy state
#    (import order for fastbus.install) is left alone -------------------------------------------

STOCK = r'''
import os, signal, sys, threading, time
from cherrypy.process import wspbus
from fastbus.plugins import BackgroundTask, Monitor, PIDFile, SignalHandler, ThreadManager

bus = wspbus.Bus()
bus.subscribe("log", lambda msg, level=20: None)
pidfile = sys.argv[1]
PIDFile(bus, pidfile).subscribe()
ticks = []
Monitor(bus, lambda: ticks.append(1), frequency=0.001).subscribe()
manager = ThreadManager(bus)
manager.subscribe()
stopped = []
bus.subscribe("stop_thread", stopped.append)
graceful = threading.Event()
bus.subscribe("graceful", graceful.set)
handler = SignalHandler(bus)
handler.subscribe()
bus.start()
assert open(pidfile).read() == "%d\n" % os.getpid()
t = threading.Thread(target=bus.publish, args=("acquire_thread",))
t.start(); t.join()
os.kill(os.getpid(), signal.SIGUSR1)
assert graceful.wait(10)
end = time.monotonic() + 10
while len(ticks) < 3:
    assert time.monotonic() < end
    time.sleep(0.001)
handler.unsubscribe()
bus.exit()
assert not os.path.exists(pidfile) and stopped == [1], stopped
print("stock ok")
'''


def test_plugins_on_a_stock_wspbus(python: str, core_env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("cherrypy")  # only checks availability here; the child imports it
    script = tmp_path / "stock.py"
    script.write_text(STOCK)
    done = subprocess.run(
        [python, str(script), str(tmp_path / "stock.pid")],
        env=core_env, capture_output=True, text=True, timeout=DEADLINE,
    )
    assert done.returncode == 0 and done.stdout == "stock ok\n", done.stderr
