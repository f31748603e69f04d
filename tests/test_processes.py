"""The lifecycle paths that end the process (os._exit, os.execv, atexit), in real children."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from fastbus import _reexec

TIMEOUT = 60


def run_child(tmp_path, core_env, core_name, body, *, args=(), name="child.py"):
    prelude = f"""
        import os, sys, threading, time
        import fastbus
        assert fastbus.COMPILED is {core_name == 'compiled'}, fastbus.COMPILED
        bus = fastbus.Bus()
        bus.subscribe('log', lambda msg, level: print('LOG', level, msg, flush=True))
    """
    script = tmp_path / name
    script.write_text(textwrap.dedent(prelude) + textwrap.dedent(body))
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=core_env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
    )


def test_failing_start_listener_exits_the_process_with_70(tmp_path, core_env, core_name):
    result = run_child(tmp_path, core_env, core_name, """
        def broken():
            raise RuntimeError('cannot start')
        bus.subscribe('start', broken)
        bus.subscribe('stop', lambda: print('STOP RAN', flush=True))
        bus.subscribe('exit', lambda: print('EXIT RAN', flush=True))
        bus.start()
        print('NOT REACHED')
    """)
    assert result.returncode == 70, result.stderr
    out = result.stdout
    assert "LOG 40 Shutting down due to error in start listener:" in out
    assert "RuntimeError: cannot start" in out
    assert "STOP RAN" in out and "EXIT RAN" in out
    assert "NOT REACHED" not in out


@pytest.mark.parametrize("channel", ["stop", "exit"])
def test_exit_never_raises_a_failing_listener_ends_with_70(tmp_path, core_env, core_name, channel):
    result = run_child(tmp_path, core_env, core_name, f"""
        bus.start()
        bus.subscribe({channel!r}, lambda: 1 / 0)
        try:
            bus.exit()
        except BaseException:
            print('RAISED')
        print('NOT REACHED')
    """)
    assert result.returncode == 70, result.stderr
    assert f"Error in {channel!r} listener" in result.stdout
    assert "RAISED" not in result.stdout and "NOT REACHED" not in result.stdout


def test_system_exit_in_a_start_listener_propagates(tmp_path, core_env, core_name):
    result = run_child(tmp_path, core_env, core_name, """
        def leave():
            raise SystemExit(5)
        bus.subscribe('start', leave)
        try:
            bus.start()
        except SystemExit as exc:
            print('PROPAGATED', exc.code, flush=True)
    """)
    assert "PROPAGATED 5" in result.stdout
    # Left in STARTING, the bus is exited by the atexit check, which (as in wspbus) ends the
    # process with 70 since exiting from STARTING could otherwise loop.
    assert "the Bus is in the states.STARTING state" in result.stderr
    assert result.returncode == 70


def test_atexit_warns_and_exits_a_bus_left_running(tmp_path, core_env, core_name):
    result = run_child(tmp_path, core_env, core_name, """
        bus.subscribe('exit', lambda: print('EXIT RAN', flush=True))
        bus.start()
        print('MAIN DONE', flush=True)
    """)
    assert result.returncode == 0, result.stderr
    assert "RuntimeWarning: The main thread is exiting, but the Bus is in the states.STARTED state" in result.stderr
    assert result.stdout.index("MAIN DONE") < result.stdout.index("EXIT RAN")


def test_no_warning_once_the_bus_exited(tmp_path, core_env, core_name):
    result = run_child(tmp_path, core_env, core_name, """
        bus.start()
        bus.exit()
    """)
    assert result.returncode == 0
    assert "RuntimeWarning" not in result.stderr


def test_restart_reexecutes_with_the_same_arguments_and_closes_descriptors(tmp_path, core_env, core_name):
    marker = tmp_path / "runs.txt"
    result = run_child(tmp_path, core_env, core_name, f"""
        marker = {str(marker)!r}
        runs = open(marker).read().count('run') if os.path.exists(marker) else 0
        with open(marker, 'a') as f:
            f.write('run ')
        print('ARGV', sys.argv[1:], 'RUN', runs, 'CWD', os.getcwd(), flush=True)
        if runs == 0:
            leaked = os.open(marker, os.O_RDONLY)
            os.set_inheritable(leaked, True)
            os.environ['LEAKED_FD'] = str(leaked)
            os.chdir('/')  # restart must go back to where the process started
            bus.start()
            threading.Thread(target=bus.restart).start()  # block() re-executes, whenever it comes
            bus.block(interval=0.01)
            print('NOT REACHED: execv returned')
        else:
            fd = int(os.environ['LEAKED_FD'])
            try:
                os.fstat(fd)
                print('FD STILL OPEN')
            except OSError:
                print('FD CLOSED')
    """, args=("--flag", "value"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("ARGV ['--flag', 'value']") == 2
    assert "RUN 0" in out and "RUN 1" in out
    assert out.count(f"CWD {tmp_path}") == 2
    assert "LOG 20 Re-spawning " in out and "FD CLOSED" in out
    assert "NOT REACHED" not in out


def test_true_argv_is_the_interpreters_command_line():
    argv = _reexec.true_argv()
    if hasattr(sys, "orig_argv"):
        assert argv == sys.orig_argv
    else:
        assert argv[0] == sys.executable and argv[-len(sys.argv):] == sys.argv


def test_extend_pythonpath(monkeypatch):
    prefix = "." + os.pathsep
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    env = {"PYTHONPATH": "/x"}
    _reexec.extend_pythonpath(env)
    assert env["PYTHONPATH"] == prefix + "/x"
    _reexec.extend_pythonpath(env)
    assert env["PYTHONPATH"] == prefix + "/x"
    monkeypatch.setattr(sys, "path", ["/somewhere", *sys.path])
    env = {}
    _reexec.extend_pythonpath(env)
    assert env == {}


def test_set_cloexec_marks_open_descriptors(tmp_path):
    import fcntl

    fd = os.open(tmp_path / "f", os.O_CREAT | os.O_RDWR)
    try:
        os.set_inheritable(fd, True)
        assert not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        _reexec.set_cloexec(fd + 1)
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    finally:
        os.close(fd)
