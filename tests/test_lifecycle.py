"""The state machine: transitions, their channels and log messages, wait, block."""

from __future__ import annotations

import pickle
import signal
import threading
import time

import pytest
from _children import DEADLINE, wait_until

import fastbus
from fastbus import _bus, states


@pytest.fixture
def log(bus):
    entries = []
    bus.subscribe("log", lambda msg, level: entries.append(msg))
    return entries


def test_states_repr_identity_and_class_attributes(Bus):
    assert repr(states.STARTED) == "states.STARTED"
    assert [s.name for s in states] == ["STOPPED", "STARTING", "STARTED", "STOPPING", "EXITING"]
    assert Bus.states is states is fastbus.states
    assert Bus.state is states.STOPPED
    assert Bus.execv is False
    assert isinstance(Bus.max_cloexec_files, int)
    assert pickle.loads(pickle.dumps(states.EXITING)) is states.EXITING
    with pytest.raises(AttributeError):
        states.STOPPED = object()


def test_start_stop_exit_graceful_publish_and_log(bus, log):
    seen = []
    for channel in ("start", "stop", "exit", "graceful"):
        bus.subscribe(channel, lambda channel=channel: seen.append((channel, bus.state)))
    assert bus.state is states.STOPPED
    bus.start()
    assert bus.state is states.STARTED
    bus.graceful()
    bus.exit()
    assert bus.state is states.EXITING
    assert seen == [
        ("start", states.STARTING),
        ("graceful", states.STARTED),
        ("stop", states.STOPPING),
        ("exit", states.EXITING),
    ]
    assert log == [
        "Bus STARTING", "Bus STARTED", "Bus graceful",
        "Bus STOPPING", "Bus STOPPED", "Bus EXITING", "Bus EXITED",
    ]


def test_stop_then_start_again(bus, log):
    bus.start()
    bus.stop()
    assert bus.state is states.STOPPED
    bus.start()
    assert bus.state is states.STARTED
    bus.exit()
    assert log.count("Bus STARTED") == 2


def test_log_with_traceback(bus, log):
    bus.log("plain")
    try:
        raise NameError("lost")
    except NameError:
        bus.log("with tb", level=40, traceback=True)
    assert log[0] == "plain"
    assert log[1].startswith("with tb\nTraceback") and "NameError: lost" in log[1]


def test_wait_returns_at_once_when_already_there(bus):
    bus.wait(states.STOPPED, interval=60)
    bus.wait([states.STARTED, states.STOPPED], interval=60)


def once_waiting(bus, then):
    """Run *then* in a thread as soon as a wait() on *bus* is waiting; return the thread."""

    def run():
        wait_until(lambda: bus._wakers, what="a wait() under way")
        then()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_wait_wakes_on_the_state_change_not_the_next_poll(bus):
    # With a 30 s interval a polling wait would sleep 30 s; ours returns when the state is set.
    starter = once_waiting(bus, bus.start)
    began = time.monotonic()
    bus.wait(states.STARTED, interval=30)
    elapsed = time.monotonic() - began
    starter.join(DEADLINE)
    assert bus.state is states.STARTED
    assert elapsed < DEADLINE  # a poll would have taken 30 s
    bus.exit()


def test_wait_accepts_any_iterable_of_states(bus):
    starter = once_waiting(bus, bus.start)
    bus.wait({states.STARTED, states.EXITING}, interval=30)
    starter.join(DEADLINE)
    assert bus.state is states.STARTED
    bus.exit()


class FakeClock:
    """wait()'s clock and waker lock, under the test's control: waiting moves the clock on."""

    def __init__(self):
        self.now = 0

    def monotonic(self):
        return self.now

    def allocate_lock(self):
        return FakeWaker(self)


class FakeWaker:
    def __init__(self, clock):
        self.clock = clock
        self.taken = self.released = False

    def acquire(self, blocking=True, timeout=-1):
        if not self.taken:  # wait() takes it first, then waits for a release
            self.taken = True
            return True
        if self.released:
            self.released = False
            return True
        self.clock.now += timeout
        return False

    def release(self):
        if self.released:
            raise RuntimeError("release unlocked lock")
        self.released = True


def test_wait_publishes_to_channel_every_interval(bus, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(_bus, "time", clock)
    monkeypatch.setattr(_bus, "_thread", clock)
    ticks = []

    def tick():
        ticks.append(clock.now)
        if len(ticks) == 3:
            clock.now += 5  # this publish overran two intervals and more
        if len(ticks) == 6:
            bus.start()

    bus.subscribe("main", tick)
    bus.wait(states.STARTED, interval=2, channel="main")
    # One publish at the end of every interval, none early and none missing; after the one
    # that overran, the next comes at once, then every interval again, with no burst to make
    # up for the intervals it missed.
    assert ticks == [2, 4, 6, 11, 13, 15]
    assert bus.state is states.STARTED
    bus.exit()


def test_wait_publishes_on_the_real_clock_no_earlier_than_each_interval(bus):
    interval = 0.01
    ticks = []

    def tick():
        ticks.append(time.monotonic())
        if len(ticks) == 4:
            bus.start()

    bus.subscribe("main", tick)
    began = time.monotonic()
    bus.wait(states.STARTED, interval=interval, channel="main")
    assert len(ticks) == 4
    # Lower bounds only: a loaded machine may publish late, never early.
    assert all(t - began >= (k + 1) * interval for k, t in enumerate(ticks)), (began, ticks)
    bus.exit()


def test_start_with_callback_runs_after_start_listeners(bus):
    events = []
    bus.subscribe("start", lambda: events.append("start"))
    thread = bus.start_with_callback(lambda *a, **k: events.append((a, k)), (1, 2), {"x": 3})
    thread.join(10)
    assert not thread.is_alive()
    assert thread.name.startswith("Bus Callback ")
    assert events == ["start", ((1, 2), {"x": 3})]
    bus.exit()


def test_block_waits_for_exit_and_joins_non_daemon_threads(bus, log):
    finished = []
    # The worker runs until block() says it waits for it: block must then join it.
    joining = threading.Event()
    bus.subscribe("log", lambda msg, level: joining.set() if msg == "Waiting for thread worker." else None)

    def worker():
        bus.exit()
        assert joining.wait(DEADLINE)
        finished.append("worker")

    thread = threading.Thread(target=worker, name="worker")
    thread.start()
    try:
        bus.block(interval=0.01)
        assert not thread.is_alive()
    finally:
        joining.set()
        thread.join(DEADLINE)
    assert bus.state is states.EXITING
    assert finished == ["worker"]
    # The worker's exit logs and block's may interleave; each side keeps its own order.
    exiting = ["Bus STOPPING", "Bus STOPPED", "Bus EXITING", "Bus EXITED"]
    blocking = ["Waiting for child threads to terminate...", "Waiting for thread worker."]
    assert [m for m in log if m in exiting] == exiting
    assert [m for m in log if m in blocking] == blocking


def test_block_turns_keyboard_interrupt_into_exit(bus, log):
    def interrupt():
        raise KeyboardInterrupt

    bus.subscribe("main", interrupt)
    bus.block(interval=0.01)
    assert bus.state is states.EXITING
    assert "Keyboard Interrupt: shutting down bus" in log


def test_block_exits_and_reraises_system_exit(bus, log):
    def leave():
        raise SystemExit(4)

    bus.subscribe("main", leave)
    with pytest.raises(SystemExit):
        bus.block(interval=0.01)
    assert bus.state is states.EXITING
    assert "SystemExit raised: shutting down bus" in log


def test_repr_names_the_state(bus):
    assert "states.STOPPED" in repr(bus)


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signal.pthread_kill (POSIX)")
def test_wait_is_woken_by_a_signal_handler_that_changes_the_state(bus):
    # The usual way a process ends: a signal handler calls exit() while the main thread waits.
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: bus.start())
    try:
        main = threading.main_thread().ident
        sender = once_waiting(bus, lambda: signal.pthread_kill(main, signal.SIGALRM))
        began = time.monotonic()
        bus.wait(states.STARTED, interval=30)
        elapsed = time.monotonic() - began
        sender.join(DEADLINE)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert bus.state is states.STARTED
    assert elapsed < DEADLINE  # a poll would have taken 30 s
    bus.exit()


def test_several_waiters_all_wake(bus):
    woke = []

    def waiter():
        bus.wait(states.STARTED, interval=30)
        woke.append(bus.state)

    threads = [threading.Thread(target=waiter) for _ in range(5)]
    for thread in threads:
        thread.start()
    bus.start()
    for thread in threads:
        thread.join(10)
    assert woke == [states.STARTED] * 5
    bus.exit()
