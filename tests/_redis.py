"""A real redis-server for the bridge tests: a free loopback port, a temporary directory.

A plain module, imported as ``from _redis import ...`` (as ``_children``); the fixtures in
conftest.py hand out :class:`RedisServer` objects. Each server runs Debian's ``redis-server``
on 127.0.0.1 only, with no persistence unless a test asks for an append-only file (kept in the
test's temporary directory, so nothing is left behind), and can be killed with SIGKILL and
started again on the same port. Without ``redis-server`` (or redis-py) the tests that need one
are skipped, saying so, unless ``FASTBUS_REQUIRE_REDIS=1``, which CI sets: there a missing
server fails them, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

REQUIRE = "FASTBUS_REQUIRE_REDIS"
"""The environment variable that turns a missing redis-server or redis-py into a failure."""

DEADLINE = 15.0
"""Seconds a server gets to start answering, or to die after SIGKILL."""

_SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/sbin", "/usr/local/bin"])


def require_redis_py() -> None:
    """Skip (fail under FASTBUS_REQUIRE_REDIS=1) the calling test or module without redis-py."""
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("redis-py is not installed (python -m pip install -e '.[test]' brings it)")


def server_binary() -> str:
    """The redis-server to run, or skip (fail under FASTBUS_REQUIRE_REDIS=1) if there is none."""
    require_redis_py()
    found = shutil.which("redis-server", path=_SEARCH)
    if found is None:
        _missing("redis-server is not installed (Debian, Ubuntu: apt-get install redis-server)")
    return str(found)


def _missing(reason: str) -> None:
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}, and {REQUIRE}=1 requires the bridge tests to run")
    pytest.skip(f"bridge tests need a real Redis: {reason}", allow_module_level=True)


def certificates(directory: Path) -> tuple[Path, Path, Path]:
    """``(ca, certificate, key)``: a CA and a certificate it signed for 127.0.0.1, made with the
    openssl command (the test is skipped without it: it is not what the bridge tests are about)."""
    openssl = shutil.which("openssl", path=_SEARCH)
    if openssl is None:
        pytest.skip("the openssl command is needed to make the TLS test's certificates")
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, request = directory / "server.pem", directory / "server.key", directory / "server.csr"
    extensions = directory / "san.cnf"
    # What a strict verifier (Python 3.13's default VERIFY_X509_STRICT) asks: key usages (the
    # CA's too) and the issuer's key identifier, beside the address.
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for command in (
        [openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=fastbus test CA",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", *ec, "-keyout", key, "-out", request, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", request, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "1", "-extfile", extensions],
    ):
        subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=60)
    return ca, cert, key


def free_port() -> int:
    """A loopback TCP port nobody listens on now (the server takes it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process on 127.0.0.1:*port* (0: a free one), in *directory*.

    *password* sets ``requirepass``; *appendonly* keeps an append-only file with
    ``appendfsync always`` (so that what the server acknowledged survives a SIGKILL); *tls*
    serves TLS only, with a certificate for 127.0.0.1 from a CA of its own (``self.tls[0]``).
    """

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        password: str | None = None,
        appendonly: bool = False,
        port: int = 0,
        tls: bool = False,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.password = password
        self.appendonly = appendonly
        self.port = port
        self.tls = certificates(directory / "tls") if tls else None
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "redis.log"
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """The URL a bridge connects with (carrying the password, and the CA of a TLS server)."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}&ssl_cert_reqs=required"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def url_with(self, password: str | None) -> str:
        """:attr:`url`, with *password* instead of the server's."""
        saved, self.password = self.password, password
        try:
            return self.url
        finally:
            self.password = saved

    def _command(self) -> list[str]:
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ca, cert, key = self.tls
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                     "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
        command = [
            self.binary,
            *ports,
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--logfile", str(self.log),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]
        if self.password:
            command += ["--requirepass", self.password]
        return command

    def start(self) -> None:
        """Start the server: on a free port the first time, on the same port again after a kill."""
        assert self.process is None or self.process.poll() is not None, "already running"
        again = bool(self.port)
        for _ in range(1 if again else 5):
            if not again:
                self.port = free_port()  # another process may take it first: then try another
            self.process = subprocess.Popen(
                self._command(), cwd=self.directory, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            if self._wait_ready():
                return
            if self.process.poll() is None:
                self._kill()
        pytest.fail(f"redis-server did not start on port {self.port}: {self._log_text()[-2000:]}")

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self) -> bool:
        """Poll with PING until the server answers (True) or has exited (False)."""
        assert self.process is not None
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            if self.process.poll() is not None:
                return False
            if self.ping():
                return True
            time.sleep(0.01)
        return False

    def ping(self) -> bool:
        """True if the server answers on its port (any answer: with a password, an error)."""
        try:
            connection = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
            if self.tls is not None:  # the wrapped socket takes the plain one over
                context = ssl.create_default_context(cafile=str(self.tls[0]))
                try:
                    connection = context.wrap_socket(connection, server_hostname="127.0.0.1")
                except OSError:
                    connection.close()
                    raise
            with connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone: no shutdown, no save."""
        assert self.process is not None and self.process.poll() is None, "not running"
        self._kill()

    def _kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=DEADLINE)

    def restart(self) -> None:
        """Start the server again on the same port (after :meth:`kill`)."""
        self.start()

    def stop(self) -> None:
        """Kill the server if it runs (the tests keep nothing it holds)."""
        if self.process is not None and self.process.poll() is None:
            self._kill()

    def client(self, password: str | None = None) -> Any:
        """A redis-py client of this server, for a test's raw reads and writes."""
        import redis

        return redis.Redis.from_url(self.url_with(password or self.password))


class RedisServers:
    """Starts servers on demand for one test, and kills every one of them at its end."""

    def __init__(self, directory: Path) -> None:
        self.binary = server_binary()
        self.directory = directory
        self.servers: list[RedisServer] = []

    def __call__(
        self, *, password: str | None = None, appendonly: bool = False, port: int = 0, tls: bool = False
    ) -> RedisServer:
        server = RedisServer(
            self.binary, self.directory / f"redis-{len(self.servers)}", password=password, appendonly=appendonly,
            port=port, tls=tls,
        )
        self.servers.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()
