"""A private redis-server for the bridge benchmark: a free loopback port, a temporary directory.

The benchmark never uses a Redis that happens to be running (its data and its load are not
ours to disturb, and its configuration would change the figures): it starts Debian's (or any)
``redis-server`` itself, without persistence, and stops it when done, leaving nothing behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

__all__ = ("INSTALL_HINT", "RedisServer", "ServerUnavailable")

INSTALL_HINT = "install it with: apt-get install redis-server (or your system's package)"
START_DEADLINE = 15.0  # seconds for the server to answer PING
ATTEMPTS = 5  # a free port found by binding may be taken by someone else before the server binds it


class ServerUnavailable(Exception):
    """No redis-server could be started; the message says why and what to do."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ping(port: int) -> bool:
    # A raw RESP PING, so that knowing the server is up needs no client library.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``with RedisServer() as server:`` a redis-server at ``server.url``, gone on exit.

    *executable* is the ``redis-server`` to run (default: the one on ``PATH``). The server
    binds 127.0.0.1 only, saves nothing (no RDB, no AOF), works in a temporary directory that
    is removed afterwards, and lets a slow pub/sub subscriber's output buffer grow without
    limit: a benchmark that overruns the default limit would be cut off, not measured.
    """

    def __init__(self, executable: str | None = None) -> None:
        found = shutil.which(executable or "redis-server")
        if found is None:
            what = executable or "redis-server"
            raise ServerUnavailable(f"{what} not found; {INSTALL_HINT}")
        self.executable = found
        self.port = 0
        self.version = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="fastbus-bench-redis-")
        self.version = self._version()
        last = ""
        for _ in range(ATTEMPTS):
            self.port = _free_port()
            if self._launch():
                return
            last = self._log_tail()
        self.stop()
        raise ServerUnavailable(f"{self.executable} did not start: {last or 'no output'}")

    def _version(self) -> str:
        done = subprocess.run([self.executable, "--version"], capture_output=True, text=True, timeout=30)
        for word in done.stdout.split():
            if word.startswith("v="):
                return word[2:]
        return done.stdout.strip()

    def _launch(self) -> bool:
        assert self._dir is not None
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", self._dir,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--client-output-buffer-limit", "pubsub 0 0 0",
            "--logfile", os.path.join(self._dir, "redis.log"),
        ]
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, cwd=self._dir)
        end = time.monotonic() + START_DEADLINE
        while time.monotonic() < end:
            if self._proc.poll() is not None:  # the port was taken meanwhile, say
                return False
            if _ping(self.port):
                return True
            time.sleep(0.02)
        self._kill()
        return False

    def _log_tail(self) -> str:
        try:
            with open(os.path.join(self._dir or "", "redis.log"), errors="replace") as log:
                return " | ".join(log.read().strip().splitlines()[-3:])
        except OSError:
            return ""

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(10)
            self._proc = None

    def stop(self) -> None:
        """Stop the server and remove its directory (also after a failed start)."""
        self._kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
