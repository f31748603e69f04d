"""Plugins against the real OS, in child processes on the core under test.

Real signals to a real child, a real daemon with its PID file, and a real switch to an
unprivileged user. Every child is waited for or killed, and every file lives in tmp_path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _children import DEADLINE, reap, spawn, wait_until

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and fork")

CHILD = r'''
import json, os, sys

events = open(sys.argv[1], "a", buffering=1)  # opened now: it stays writable after a drop
core, config = sys.argv[2], json.loads(sys.argv[3])

def note(line):
    events.write(line + "\n")

import fastbus
from fastbus import plugins

if fastbus.COMPILED != (core == "compiled"):
    note("WRONG CORE %r" % fastbus.COMPILED)
    sys.exit(3)

bus = fastbus.Bus()
bus.subscribe("log", lambda msg, level=20: note("LOG %d %s" % (level, msg.splitlines()[0])))
plugins.SignalHandler(bus).subscribe()
bus.subscribe("graceful", lambda: note("GRACEFUL"))
if config.get("failing_graceful"):
    def broken():
        raise RuntimeError("graceful listener broke")
    bus.subscribe("graceful", broken)
if config.get("daemon"):
    plugins.Daemonizer(bus, stdout=config["stdout"], stderr=config["stderr"]).subscribe()
if config.get("pidfile"):
    plugins.PIDFile(bus, config["pidfile"]).subscribe()
if config.get("drop"):
    plugins.DropPrivileges(bus, **config["drop"]).subscribe()
    here = os.open(config["dir"], os.O_RDONLY)

def report():
    print("stdout of %d" % os.getpid(), flush=True)
    state = {"pid": os.getpid(), "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
             "egid": os.getegid(), "groups": os.getgroups(), "sid": os.getsid(0)}
    state["umask"] = os.umask(0o077)
    os.umask(state["umask"])
    if config.get("drop"):
        try:
            os.setuid(0)
            state["regained_root"] = True
        except PermissionError:
            state["regained_root"] = False
        os.close(os.open("made-by-child", os.O_WRONLY | os.O_CREAT, 0o666, dir_fd=here))
    note("STATE " + json.dumps(state))

bus.subscribe("start", report, priority=90)
bus.start()
note("RUNNING %d" % os.getpid())
if config.get("exit"):
    bus.exit()
bus.block()
note("DONE %d" % os.getpid())
'''


def alive(pid: int) -> bool:
    """True if *pid* runs; a zombie (dead, not yet reaped by its new parent) does not."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Child:
    """One child script run and its event log; kills whatever it started on close."""

    def __init__(self, tmp_path: Path, python: str, core_name: str, env: dict[str, str]) -> None:
        self.dir = tmp_path
        self.script = tmp_path / "child.py"
        self.script.write_text(CHILD)
        self.events = tmp_path / "events.log"
        self.events.touch()
        self.python, self.core_name, self.env = python, core_name, env
        self.procs: list[subprocess.Popen[bytes]] = []

    def command(self, **config: Any) -> list[str]:
        return [self.python, str(self.script), str(self.events), self.core_name, json.dumps(config)]

    def popen(self, **config: Any) -> subprocess.Popen[bytes]:
        proc = spawn(self.command(**config), self.env, self.dir)
        self.procs.append(proc)
        return proc

    def lines(self) -> list[str]:
        return self.events.read_text().splitlines()

    def wait_for(self, line: str, count: int = 1) -> None:
        wait_until(lambda: self.lines().count(line) >= count, what=repr(line))

    def wait_for_prefix(self, prefix: str, count: int = 1) -> list[str]:
        return wait_until(
            lambda: (lambda found: found if len(found) >= count else None)(
                [line for line in self.lines() if line.startswith(prefix)]
            ),
            what=repr(prefix),
        )

    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line[6:]) for line in self.lines() if line.startswith("STATE ")]

    def pids(self) -> list[int]:
        return [int(line.split()[1]) for line in self.lines() if line.startswith("RUNNING ")]

    def close(self) -> None:
        for pid in self.pids():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            reap(proc)


@pytest.fixture
def child(tmp_path: Path, python: str, core_name: str, core_env: dict[str, str]) -> Any:
    made = Child(tmp_path, python, core_name, core_env)
    yield made
    made.close()


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=DEADLINE)
    return proc.returncode, err.decode(errors="replace")


# -- SignalHandler -----------------------------------------------------------------------------


def test_sigterm_exits(child: Child) -> None:
    proc = child.popen()
    child.wait_for_prefix("RUNNING")
    assert "LOG 20 Listening for SIGTERM." in child.lines()
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    lines = child.lines()
    assert "LOG 20 Caught signal SIGTERM." in lines
    assert lines[-1] == f"DONE {proc.pid}" and "LOG 20 Bus EXITED" in lines


def test_sigusr1_is_graceful(child: Child) -> None:
    proc = child.popen()
    child.wait_for_prefix("RUNNING")
    for n in (1, 2):
        proc.send_signal(signal.SIGUSR1)
        child.wait_for("GRACEFUL", count=n)
    assert proc.poll() is None
    assert "LOG 20 Caught signal SIGUSR1." in child.lines()
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err


def test_a_failing_graceful_listener_is_logged_and_block_goes_on(child: Child) -> None:
    # The ChannelFailures of the graceful publish used to escape the signal handler into
    # bus.block(), which raised it: the bus stayed STARTED with nobody blocking.
    proc = child.popen(failing_graceful=True)
    child.wait_for_prefix("RUNNING")
    for n in (1, 2):
        proc.send_signal(signal.SIGUSR1)
        child.wait_for("GRACEFUL", count=n)
        child.wait_for_prefix("LOG 40 Error in 'SIGUSR1' listener", count=n)
    lines = child.lines()
    assert len([line for line in lines if line.startswith("LOG 40 Error in 'graceful' listener")]) == 2
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert "Traceback" not in err and "RuntimeWarning" not in err, err
    lines = child.lines()
    assert "LOG 20 Caught signal SIGTERM." in lines and "LOG 20 Bus EXITED" in lines
    assert lines[-1] == f"DONE {proc.pid}"


BURST = r'''
import os, sys, threading

events = open(sys.argv[1], "a", buffering=1)
core = sys.argv[2]

import fastbus
from fastbus import plugins

assert fastbus.COMPILED == (core == "compiled"), fastbus.COMPILED
bus = fastbus.Bus()
# Every log line is written and flushed (line buffering) to one stream. A flush checks for
# signals while it holds the stream's lock, so a handler that nests there and logs too fails
# with "RuntimeError: reentrant call inside <_io.BufferedWriter ...>".
sink = open(os.devnull, "w", buffering=1)
failed_writes = []

def log(msg, level=20):
    try:
        sink.write(msg + "\n")
    except Exception as exc:
        failed_writes.append(repr(exc))
        raise

bus.subscribe("log", log)
plugins.SignalHandler(bus).subscribe()
graceful = []
bus.subscribe("graceful", lambda: graceful.append(1))
# Another thread logs all along, so the handler's writes often wait for the stream's lock,
# and signals pile up meanwhile.
quiet = threading.Event()

def chatter():
    while not quiet.is_set():
        bus.log("chatter " + "x" * 100)

threading.Thread(target=chatter, daemon=True).start()
bus.subscribe("stop", quiet.set)
bus.start()
events.write("RUNNING\n")
try:
    bus.block()
finally:
    events.write("DONE %s graceful=%d failed writes: %r\n" % (bus.state, len(graceful), failed_writes[:3]))
'''


def test_a_burst_of_signals_leaves_the_process_running(tmp_path: Path, python: str, core_name: str, core_env: dict[str, str]) -> None:
    # Handlers used to nest, each logging in the middle of the one before: a nested write to
    # the log stream failed as a reentrant call, and the failure escaped into bus.block().
    # Before the fix every run of this test ended the child.
    script, events = tmp_path / "burst.py", tmp_path / "events.log"
    script.write_text(BURST)
    events.touch()
    proc = spawn([python, str(script), str(events), core_name], core_env, tmp_path)
    try:
        wait_until(lambda: "RUNNING" in events.read_text() or proc.poll() is not None, what="child running")
        sent, end = 0, time.monotonic() + 1.0
        while time.monotonic() < end and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)
            sent += 1
        assert proc.poll() is None, (sent, events.read_text(), finish(proc))
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
    finally:
        reap(proc)
    last = events.read_text().splitlines()[-1]
    assert code == 0 and "Traceback" not in err, err
    assert last.startswith("DONE states.EXITING graceful=") and last.endswith(" failed writes: []"), last
    assert int(last.split("graceful=")[1].split()[0]) >= 1


def test_sighup_on_a_terminal_or_in_the_foreground_exits(child: Child) -> None:
    proc = child.popen()
    child.wait_for_prefix("RUNNING")
    proc.send_signal(signal.SIGHUP)
    code, err = finish(proc)
    assert code == 0, err
    lines = child.lines()
    assert "LOG 20 SIGHUP caught but not daemonized. Exiting." in lines
    assert len(child.pids()) == 1 and not any("Re-spawning" in line for line in lines)


# -- Daemonizer and PIDFile ---------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    assert text.endswith("\n") and text.strip().isdigit(), repr(text)
    return int(text)


def test_daemon_writes_its_pidfile_and_restarts_on_sighup(child: Child, tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    out, err = tmp_path / "daemon.out", tmp_path / "daemon.err"
    config = {"daemon": True, "pidfile": str(pidfile), "stdout": str(out), "stderr": str(err)}
    launcher = child.popen(**config)
    code, stderr = finish(launcher)  # the launching process returns as soon as it forked
    assert code == 0, stderr

    pid = wait_until(lambda: read_pid(pidfile), what="PID file")
    child.wait_for_prefix("RUNNING")  # noted after start, which wrote the PID file at 70
    assert pid != launcher.pid and alive(pid)
    assert child.pids() == [pid]
    lines = child.lines()
    assert f"LOG 20 Daemonized to PID: {pid}" in lines
    assert f"LOG 20 PID {pid} written to {str(pidfile)!r}." in lines
    (state,) = child.states()
    assert state["pid"] == pid and state["sid"] != os.getsid(0) and state["sid"] != pid
    assert state["umask"] == 0
    wait_until(lambda: f"stdout of {pid}" in out.read_text(), what="redirected stdout")

    # Daemonized, SIGHUP restarts: the process re-executes and daemonizes again.
    os.kill(pid, signal.SIGHUP)
    new_pid = wait_until(lambda: (lambda p: p if p and p != pid else None)(read_pid(pidfile)), what="new PID")
    wait_until(lambda: not alive(pid), what="old daemon gone")
    child.wait_for_prefix("RUNNING", count=2)
    assert alive(new_pid) and child.pids() == [pid, new_pid]
    lines = child.lines()
    assert "LOG 20 SIGHUP caught while daemonized. Restarting." in lines
    assert any(line.startswith("LOG 20 Re-spawning ") for line in lines)
    assert f"LOG 20 PID file removed: {str(pidfile)!r}." in lines

    os.kill(new_pid, signal.SIGTERM)
    wait_until(lambda: not alive(new_pid), what="daemon exit")
    assert not pidfile.exists()
    assert child.lines()[-1] == f"DONE {new_pid}"


# -- DropPrivileges ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to drop privileges")
def test_drop_privileges_in_a_child(child: Child, tmp_path: Path) -> None:
    import grp
    import pwd

    user = pwd.getpwuid(65534).pw_name  # nobody
    group = grp.getgrgid(65534).gr_name  # nogroup, or nobody
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    proc = child.popen(drop={"uid": user, "gid": group, "umask": 0o027}, dir=str(shared), exit=True)
    code, err = finish(proc)
    assert code == 0, err
    (state,) = child.states()
    assert (state["uid"], state["euid"], state["gid"], state["egid"]) == (65534, 65534, 65534, 65534)
    assert state["groups"] == [] and state["umask"] == 0o027
    assert state["regained_root"] is False
    made = (shared / "made-by-child").stat()
    assert (made.st_uid, made.st_gid, made.st_mode & 0o777) == (65534, 65534, 0o640)
    lines = child.lines()
    assert "LOG 20 Started as uid: 'root' gid: 'root'" in lines
    assert f"LOG 20 Running as uid: {user!r} gid: {group!r}" in lines
    assert any(line.startswith("LOG 20 umask old: ") and line.endswith("new: 027") for line in lines)
