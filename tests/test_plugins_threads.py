"""In-process plugins on both cores: tasks, Monitor, Autoreloader, ThreadManager, SimplePlugin."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from _children import DEADLINE, wait_until

from fastbus.plugins import (
    Autoreloader,
    BackgroundTask,
    Monitor,
    PerpetualTimer,
    SimplePlugin,
    ThreadManager,
)


class LogRecorder:
    def __init__(self, bus: Any) -> None:
        self.records: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        bus.subscribe("log", self)

    def __call__(self, msg: str, level: int = 20) -> None:
        with self.lock:
            self.records.append((msg, level))

    def messages(self, level: int | None = None) -> list[str]:
        with self.lock:
            return [m for m, lv in self.records if level is None or lv == level]


@pytest.fixture
def log(bus: Any) -> LogRecorder:
    return LogRecorder(bus)


def flaky(calls: list[int], fail_on: set[int]) -> Callable[[], None]:
    def function() -> None:
        calls.append(len(calls) + 1)
        if len(calls) in fail_on:
            raise RuntimeError(f"failure {len(calls)}")

    return function


# -- BackgroundTask and PerpetualTimer ----------------------------------------------------------


def test_background_task_survives_failures(bus: Any, log: LogRecorder) -> None:
    calls: list[int] = []
    task = BackgroundTask(0.001, flaky(calls, {1, 2, 4}), bus=bus)
    task.start()
    try:
        wait_until(lambda: len(calls) >= 6)
        assert task.is_alive() and task.running
    finally:
        task.cancel()
        task.join(DEADLINE)
    assert not task.is_alive() and not task.running
    errors = [m for m in log.messages(40) if m.startswith("Error in background task thread function")]
    assert len(errors) >= 3
    assert "RuntimeError: failure 1" in errors[0] and "Traceback" in errors[0]


def test_background_task_cancel_is_immediate_and_safe_before_start() -> None:
    calls: list[int] = []
    task = BackgroundTask(3600, lambda: calls.append(1))
    assert task.daemon
    task.cancel()
    task.start()  # cancelled before run(): must end at once, never call
    task.join(DEADLINE)
    assert not task.is_alive() and calls == []

    task = BackgroundTask(3600, lambda: calls.append(1))
    task.start()
    task.running = False
    task.join(DEADLINE)  # far short of the 3600 s interval
    assert not task.is_alive()


def test_background_task_without_bus_prints_and_continues(capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[int] = []
    task = BackgroundTask(0.001, flaky(calls, {1}), args=(), kwargs={})
    task.start()
    wait_until(lambda: len(calls) >= 3)
    task.cancel()
    task.join(DEADLINE)
    assert "RuntimeError: failure 1" in capsys.readouterr().err


def test_perpetual_timer_survives_failures(bus: Any, log: LogRecorder) -> None:
    calls: list[int] = []
    timer = PerpetualTimer(0.001, flaky(calls, {1, 3}), bus=bus)
    timer.start()
    try:
        wait_until(lambda: len(calls) >= 5)
        assert timer.is_alive()
    finally:
        timer.cancel()
        timer.join(DEADLINE)
    assert not timer.is_alive()
    errors = [m for m in log.messages(40) if m.startswith("Error in perpetual timer thread function")]
    assert len(errors) >= 2 and "RuntimeError: failure 3" in errors[1]


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: BackgroundTask("1", print), TypeError, "interval"),
        (lambda: BackgroundTask(-1, print), ValueError, "interval"),
        (lambda: BackgroundTask(1, "print"), TypeError, "function"),
        (lambda: PerpetualTimer(None, print), TypeError, "interval"),
        (lambda: PerpetualTimer(1, 42), TypeError, "function"),
    ],
)
def test_task_arguments_are_checked(make: Callable[[], Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        make()


# -- Monitor -----------------------------------------------------------------------------


def test_monitor_follows_the_bus(bus: Any, log: LogRecorder) -> None:
    calls: list[int] = []
    monitor = Monitor(bus, flaky(calls, {2}), frequency=0.001, name="ticker")
    monitor.subscribe()
    bus.start()
    try:
        wait_until(lambda: len(calls) >= 4)  # it survived failure 2
        first = monitor.thread
        assert first is not None and first.name == "ticker" and first.is_alive()
        bus.graceful()
        second = monitor.thread
        assert second is not None and second is not first
        first.join(DEADLINE)
        assert not first.is_alive()
        seen = len(calls)
        wait_until(lambda: len(calls) > seen)
    finally:
        bus.exit()
    assert monitor.thread is None
    second.join(DEADLINE)
    assert not second.is_alive()
    messages = log.messages()
    assert "Started monitor thread 'ticker'." in messages
    assert "Stopped thread 'ticker'." in messages
    monitor.stop()
    assert log.messages()[-1] == "No thread running for ticker."


def test_monitor_start_is_idempotent_across_threads(bus: Any, log: LogRecorder) -> None:
    monitor = Monitor(bus, lambda: None, frequency=3600)
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        monitor.start()

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    started = [m for m in log.messages() if m == "Started monitor thread 'Monitor'."]
    already = [m for m in log.messages() if m == "Monitor thread 'Monitor' already started."]
    assert (len(started), len(already)) == (1, 7)
    thread = monitor.thread
    assert thread is not None
    monitor.stop()
    thread.join(DEADLINE)
    assert not thread.is_alive()


def test_monitor_disabled_by_zero_frequency(bus: Any) -> None:
    monitor = Monitor(bus, lambda: None, frequency=0)
    monitor.start()
    assert monitor.thread is None


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"callback": None}, TypeError, "callback"),
        ({"callback": print, "frequency": "60"}, TypeError, "frequency"),
        ({"callback": print, "name": 3}, TypeError, "name"),
    ],
)
def test_monitor_arguments_are_checked(bus: Any, kwargs: dict[str, Any], error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        Monitor(bus, **kwargs)


# -- Autoreloader ------------------------------------------------------------------------------


class Counted:
    """A function that counts its completed calls."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function
        self.count = 0

    def __call__(self) -> None:
        self.function()
        self.count += 1


@contextlib.contextmanager
def reloading_on(bus: Any, watched: Any) -> Iterator[tuple[Autoreloader, threading.Event]]:
    """Start *bus* with an Autoreloader watching only *watched*, once it has seen the file.

    Gives the reloader and an event set when the bus exits. A restart here does not
    re-execute: it sets the bus's ``execv`` flag, then exits it. The bus is exited after
    the block unless a restart did that. ``reloader.callback.count`` counts the checks done.
    """
    reloader = Autoreloader(bus, frequency=0.01, match=r"^$")  # watch only our file
    reloader.files.add(str(watched))
    reloader.callback = Counted(reloader.callback)
    reloader.subscribe()
    restarted = threading.Event()
    bus.subscribe("exit", restarted.set)
    bus.start()
    try:
        wait_until(lambda: str(watched) in reloader.mtimes)
        yield reloader, restarted
    finally:
        if not restarted.is_set():
            bus.exit()


def test_autoreloader_restarts_on_a_real_edit(bus: Any, log: LogRecorder, tmp_path: Any) -> None:
    watched = tmp_path / "settings.cfg"
    watched.write_text("a = 1\n")
    with reloading_on(bus, watched) as (reloader, restarted):
        seen = reloader.callback.count
        wait_until(lambda: reloader.callback.count >= seen + 3)
        assert not restarted.is_set()  # a few checks of an unchanged file restarted nothing
        watched.write_text("a = 2\n")
        # Coarse filesystem clocks could give the edit the same mtime; make it later.
        stat = watched.stat()
        os.utime(watched, (stat.st_atime, stat.st_mtime + 10))
        assert restarted.wait(DEADLINE)
    assert bus.execv is True
    assert f"Restarting because {watched} changed." in log.messages()
    assert reloader.thread is None


def test_autoreloader_restarts_on_deletion(bus: Any, tmp_path: Any) -> None:
    watched = tmp_path / "gone.py"
    watched.write_text("")
    with reloading_on(bus, watched) as (_, restarted):
        watched.unlink()
        assert restarted.wait(DEADLINE)


def test_autoreloader_watches_module_files(bus: Any) -> None:
    reloader = Autoreloader(bus, match=r"^fastbus\.plugins\.")
    files = reloader.sysfiles()
    import fastbus.plugins.autoreload as here

    assert here.__file__ in files
    assert all("fastbus" in f for f in files)


def test_autoreloader_survives_concurrent_imports(bus: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """sys.modules grows and shrinks in another thread all along the scans."""
    # Only our modules are watched (edits elsewhere in the tree must not restart), but the
    # whole of sys.modules is scanned each time.
    reloader = Autoreloader(bus, match=r"^_fastbus_")
    done = threading.Event()

    def churn() -> None:
        i = 0
        while not done.is_set():
            name = f"_fastbus_churn_{i % 50}"
            if name in sys.modules:
                del sys.modules[name]
            else:
                sys.modules[name] = types.ModuleType(name)
            i += 1

    class Weird(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            raise ImportError("lazy module that cannot load")

    monkeypatch.setitem(sys.modules, "_fastbus_weird", Weird("_fastbus_weird"))
    thread = threading.Thread(target=churn)
    thread.start()
    try:
        end = time.monotonic() + 0.5
        scans = 0
        while time.monotonic() < end:
            reloader.run()
            scans += 1
    finally:
        done.set()
        thread.join(DEADLINE)
        for i in range(50):
            sys.modules.pop(f"_fastbus_churn_{i}", None)
    assert scans > 0 and bus.execv is False


def test_autoreloader_arguments_are_checked(bus: Any) -> None:
    with pytest.raises(ValueError, match="match"):
        Autoreloader(bus, match="(")
    with pytest.raises(TypeError, match="match"):
        Autoreloader(bus, match=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="frequency"):
        Autoreloader(bus, frequency=None)  # type: ignore[arg-type]


# -- ThreadManager -------------------------------------------------------------------------


def test_thread_manager_across_real_threads(bus: Any) -> None:
    manager = ThreadManager(bus)
    manager.subscribe()
    started: list[int] = []
    stopped: list[int] = []
    lock = threading.Lock()

    def record(into: list[int]) -> Callable[[int], None]:
        def listener(index: int) -> None:
            with lock:
                into.append(index)

        return listener

    bus.subscribe("start_thread", record(started))
    bus.subscribe("stop_thread", record(stopped))
    count = 16
    barrier = threading.Barrier(count)
    release = threading.Event()

    def worker(n: int) -> None:
        barrier.wait()
        for _ in range(3):
            bus.publish("acquire_thread")  # only the first one counts
        if n % 2:
            bus.publish("release_thread")
        release.wait(DEADLINE)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    wait_until(lambda: len(started) == count and len(stopped) == count // 2)
    assert sorted(started) == list(range(1, count + 1))  # one each, never shared
    assert len(manager.threads) == count // 2
    bus.publish("acquire_thread")  # this thread, after some were released: a fresh index
    assert started[-1] == count + 1
    bus.start()
    bus.stop()  # releases every thread still registered
    release.set()
    for t in threads:
        t.join(DEADLINE)
    assert sorted(stopped) == sorted(started)
    assert manager.threads == {}
    bus.exit()


def test_thread_manager_stop_runs_every_listener_even_if_one_fails(bus: Any) -> None:
    from fastbus import ChannelFailures

    manager = ThreadManager(bus)
    seen: list[int] = []

    def listener(index: int) -> None:
        seen.append(index)
        if index == 1:
            raise RuntimeError("boom")

    bus.subscribe("stop_thread", listener)
    manager.acquire_thread()
    t = threading.Thread(target=manager.acquire_thread)
    t.start()
    t.join(DEADLINE)
    with pytest.raises(ChannelFailures):
        manager.stop()
    assert seen == [1, 2] and manager.threads == {}


class Resources:
    """Per-thread resources opened on ``start_thread`` (priority 50) and closed on ``stop_thread``.

    ``events`` records, in order, ("open", i) and ("close", i); ``open`` is what is still open.
    """

    def __init__(self, bus: Any) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, int]] = []
        self.open: set[int] = set()
        self.closed = threading.Event()
        bus.subscribe("start_thread", self.opened, priority=50)
        bus.subscribe("stop_thread", self.close)

    def opened(self, index: int) -> None:
        with self.lock:
            self.events.append(("open", index))
            self.open.add(index)

    def close(self, index: int) -> None:
        with self.lock:
            self.events.append(("close", index))
            self.open.discard(index)
        self.closed.set()

    def count(self, kind: str, index: int) -> int:
        with self.lock:
            return self.events.count((kind, index))


def run_thread(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # daemon: a deadlock fails, not hangs
    thread.start()
    return thread


def joined(thread: threading.Thread) -> bool:
    thread.join(DEADLINE)
    return not thread.is_alive()


def test_thread_manager_stop_waits_for_a_thread_still_starting(bus: Any) -> None:
    """stop() racing acquire_thread(): the thread's start_thread listeners all run, then its stop_thread.

    Before, stop() published stop_thread(1) while an earlier start_thread listener of thread 1
    still ran, so the resource opened after it was never closed; and stop() numbered from 1
    again at once, so a thread acquiring meanwhile was also given 1.
    """
    manager = ThreadManager(bus)
    manager.subscribe()
    resources = Resources(bus)
    in_start, go = threading.Event(), threading.Event()

    def slow_first(index: int) -> None:
        if not in_start.is_set():  # only the first thread's start is held up
            in_start.set()
            assert go.wait(DEADLINE)

    bus.subscribe("start_thread", slow_first, priority=10)
    stop_returned = threading.Event()
    bus.subscribe("stop", stop_returned.set, priority=51)  # just after the manager's stop (50)
    bus.start()
    first = run_thread(lambda: bus.publish("acquire_thread"))
    assert in_start.wait(DEADLINE)
    stopper = run_thread(bus.stop)
    # stop() must *not* get through while thread 1 starts: it waits on the manager's condition
    # (the only thread that can, now), or returns early if broken.
    wait_until(lambda: stop_returned.is_set() or manager._cond._waiters, what="stop() waiting or done")
    assert not stop_returned.is_set(), "stop() returned while thread 1 was still starting"
    assert resources.events == []
    # A thread acquiring now must not share index 1, still being set up.
    indexes: list[int] = []
    bus.subscribe("start_thread", indexes.append, priority=90)
    assert joined(run_thread(lambda: bus.publish("acquire_thread")))
    assert indexes == [2]
    go.set()
    assert joined(first) and joined(stopper)
    assert resources.events[:3] == [("open", 2), ("open", 1), ("close", 1)]
    assert resources.open == {2} and list(manager.threads.values()) == [2]
    bus.stop()  # thread 2 was registered after the first stop took its snapshot
    assert resources.open == set() and manager.threads == {}
    # Nothing in flight any more: numbering starts again from 1, as in CherryPy.
    assert joined(run_thread(lambda: bus.publish("acquire_thread")))
    assert indexes[-1] == 1
    bus.exit()


@pytest.mark.parametrize("call", ["manager.stop", "bus.stop", "bus.graceful", "release_thread"])
def test_thread_manager_start_thread_listener_that_stops_or_releases(bus: Any, call: str) -> None:
    """No deadlock, and stop_thread comes once, after the thread's last start_thread listener."""
    manager = ThreadManager(bus)
    manager.subscribe()
    resources = Resources(bus)

    def stop_early(index: int) -> None:
        if call == "manager.stop":
            manager.stop()
        elif call == "bus.stop":
            bus.stop()
        elif call == "bus.graceful":
            bus.graceful()
        else:
            bus.publish("release_thread")
        # Not torn down under our feet: the rest of start_thread is still to run.
        assert resources.count("close", index) == 0

    bus.subscribe("start_thread", stop_early, priority=10)
    bus.start()
    thread = run_thread(lambda: bus.publish("acquire_thread"))
    assert joined(thread), "deadlock"
    assert resources.events == [("open", 1), ("close", 1)]
    assert manager.threads == {}
    bus.stop()  # nothing left to release
    assert resources.events == [("open", 1), ("close", 1)]
    bus.exit()


def test_thread_manager_two_starting_threads_stop_each_other(bus: Any) -> None:
    """Both threads' start_thread listeners call stop() at once: neither waits for the other forever."""
    manager = ThreadManager(bus)
    resources = Resources(bus)
    both = threading.Barrier(2, timeout=DEADLINE)

    def stop_together(index: int) -> None:
        both.wait()
        manager.stop()

    bus.subscribe("start_thread", stop_together, priority=10)
    threads = [run_thread(manager.acquire_thread) for _ in range(2)]
    assert all(joined(t) for t in threads), "deadlock"
    assert resources.open == set() and manager.threads == {}
    assert sorted(resources.events) == [("close", 1), ("close", 2), ("open", 1), ("open", 2)]
    for index in (1, 2):  # each opened before it was closed
        assert resources.events.index(("open", index)) < resources.events.index(("close", index))


def test_thread_manager_stop_is_not_held_up_by_a_failed_start(bus: Any) -> None:
    """A failing start_thread listener still ends the start; the thread is released once."""
    from fastbus import ChannelFailures

    manager = ThreadManager(bus)
    resources = Resources(bus)

    def fail(index: int) -> None:
        raise RuntimeError("no resource for you")

    bus.subscribe("start_thread", fail, priority=10)
    with pytest.raises(ChannelFailures):
        manager.acquire_thread()
    assert manager.threads == {threading.get_ident(): 1}
    stopper = run_thread(manager.stop)
    assert joined(stopper), "stop() waited for a start that had already failed"
    assert resources.events == [("open", 1), ("close", 1)]


# -- SimplePlugin ------------------------------------------------------------------------------


def test_simple_plugin_concurrent_subscribe_and_channel_declarations(bus: Any) -> None:
    class Plugin(SimplePlugin):
        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

    plugins = [Plugin(bus) for _ in range(20)]
    done = threading.Event()

    def declare() -> None:
        i = 0
        while not done.is_set():
            bus.listeners.setdefault(f"chan{i % 200}", set())
            i += 1

    declarer = threading.Thread(target=declare)
    declarer.start()
    try:
        workers = [threading.Thread(target=p.subscribe) for p in plugins]
        for w in workers:
            w.start()
        for w in workers:
            w.join(DEADLINE)
    finally:
        done.set()
        declarer.join(DEADLINE)
    assert all(p.start in bus.listeners["start"] and p.stop in bus.listeners["stop"] for p in plugins)
    workers = [threading.Thread(target=p.unsubscribe) for p in plugins]
    for w in workers:
        w.start()
    for w in workers:
        w.join(DEADLINE)
    assert not any(p.start in bus.listeners["start"] for p in plugins)
