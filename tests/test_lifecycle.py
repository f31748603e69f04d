"""The state machine: transitions, their channels and log messages, wait, block."""

from __future__ import annotations

import pickle
import signal
import threading
import time

import pytest

import fastbus
from fastbus import states


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


def test_wait_wakes_on_the_state_change_not_the_next_poll(bus):
    # With a 30 s interval a polling wait would sleep 30 s; ours returns when the state is set.
    timer = threading.Timer(0.05, bus.start)
    timer.start()
    began = time.monotonic()
    bus.wait(states.STARTED, interval=30)
    elapsed = time.monotonic() - began
    timer.join()
    assert bus.state is states.STARTED
    assert elapsed < 10
    bus.exit()


def test_wait_accepts_any_iterable_of_states(bus):
    threading.Timer(0.05, bus.start).start()
    bus.wait({states.STARTED, states.EXITING}, interval=30)
    assert bus.state in (states.STARTED,)
    bus.exit()


def test_wait_publishes_to_channel_every_interval(bus):
    ticks = []
    bus.subscribe("main", lambda: ticks.append(time.monotonic()))
    wait_done = threading.Event()

    def starter():
        deadline = time.monotonic() + 20
        while len(ticks) < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        bus.start()

    threading.Thread(target=starter).start()
    bus.wait(states.STARTED, interval=0.01, channel="main")
    wait_done.set()
    assert len(ticks) >= 4
    assert all(b > a for a, b in zip(ticks, ticks[1:]))
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

    def worker():
        time.sleep(0.2)
        finished.append("worker")

    threading.Thread(target=worker, name="worker").start()
    threading.Timer(0.05, bus.exit).start()
    bus.block(interval=0.01)
    assert bus.state is states.EXITING
    assert finished == ["worker"]
    assert log[:5] == ["Bus STOPPING", "Bus STOPPED", "Bus EXITING", "Bus EXITED",
                       "Waiting for child threads to terminate..."]


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


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer (POSIX)")
def test_wait_is_woken_by_a_signal_handler_that_changes_the_state(bus):
    # The usual way a process ends: a signal handler calls exit() while the main thread waits.
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: bus.start())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        began = time.monotonic()
        bus.wait(states.STARTED, interval=30)
        elapsed = time.monotonic() - began
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert bus.state is states.STARTED
    assert elapsed < 10  # a poll would have taken 30 s
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
