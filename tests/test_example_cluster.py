"""examples/cluster.py run for real: worker processes on free ports, a real redis-server, HTTP.

The example's launcher (``--ports``) starts three CherryPy workers, each a process with its own
bus, joined by fastbus.bridge through the redis-server of the ``redis_server`` fixture (which
skips these tests where redis-server is missing, and fails them under FASTBUS_REQUIRE_REDIS=1).
Everything is waited for by polling with a deadline. Both cores, and both bridge modes: the
compiled core runs the example in its default durable mode and the pure core in pub/sub mode,
so that each core and each mode is covered without running the cluster four times.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _children import reap, spawn, wait_until

pytest.importorskip("cherrypy")  # an optional extra of fastbus; the example needs it

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="stops the example with SIGTERM")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cluster.py"
DEADLINE = 30.0  # three CherryPy processes starting at once on a busy two-core machine
HTTP_TIMEOUT = 5.0


def free_ports(count: int) -> list[int]:
    """*count* distinct ports free on loopback now (held open together, so never the same)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def call(port: int, path: str, method: str = "GET", data: Any = None) -> tuple[int, Any]:
    """One HTTP request to a worker: its status and its decoded JSON body."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def bare_post(port: int, path: str) -> tuple[int, Any]:
    """A POST without a body or a Content-Length, as ``curl -X POST`` sends it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        connection.putrequest("POST", path)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


class Cluster:
    """The example's launcher and its workers, their log in one file."""

    def __init__(self, tmp_path: Path, python: str, env: dict[str, str], url: str, mode: str) -> None:
        self.url = url
        self.durable = mode == "durable"
        self.ports = free_ports(3)
        self.settings = tmp_path / "settings.json"
        self.settings.write_text(json.dumps({"currency": "EUR"}))
        # Prices there before the workers start: one set through a worker once they run would
        # race its own invalidation to the others (which may drop what they just cached).
        self.db = tmp_path / "prices.sqlite3"
        with contextlib.closing(sqlite3.connect(self.db)) as db, db:
            db.execute("CREATE TABLE products (name TEXT PRIMARY KEY, price REAL NOT NULL)")
            db.execute("INSERT INTO products VALUES ('tea', 3.5)")
        self.log_path = tmp_path / "cluster.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115
        command = [
            python, str(EXAMPLE), "--redis", url, "--ports", ",".join(map(str, self.ports)),
            "--db", str(self.db), "--settings", str(self.settings), "--mode", mode,
        ]
        env = dict(env, PYTHONUNBUFFERED="1")  # a worker that dies still leaves its last words
        self.proc = spawn(command, env, tmp_path, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.pids: list[int] = []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"the cluster ended early ({self.proc.returncode}):\n{self.log()}")

    def status(self, port: int) -> dict[str, Any]:
        status, body = call(port, "/status")
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    def statuses(self) -> list[dict[str, Any]]:
        self.alive()
        return [self.status(port) for port in self.ports]

    def wait_for(self, what: str, condition: Any) -> list[dict[str, Any]]:
        """Poll every worker's /status until *condition* holds for each; return the statuses."""
        def met() -> list[dict[str, Any]] | None:
            statuses = self.statuses()
            return statuses if all(condition(s) for s in statuses) else None

        return self.wait_until(met, what)  # type: ignore[no-any-return]

    def wait_until(self, condition: Any, what: str) -> Any:
        """wait_until, failing with the cluster's log as it is at the deadline."""
        try:
            return wait_until(condition, DEADLINE, what=what)
        except pytest.fail.Exception as exc:
            pytest.fail(f"{exc}; the cluster's log:\n{self.log()}")

    def close(self) -> None:
        reap(self.proc, DEADLINE)
        self.log_file.close()
        for pid in self.pids:  # a worker the launcher failed to stop
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def cluster(
    tmp_path: Path, python: str, core_env: dict[str, str], core_name: str, redis_server: Any
) -> Iterator[Cluster]:
    mode = "durable" if core_name == "compiled" else "pubsub"
    cluster = Cluster(tmp_path, python, core_env, redis_server.url, mode)
    try:
        yield cluster
    finally:
        cluster.close()


def all_up(cluster: Cluster) -> None:
    """Every worker's bus is STARTED, and its bridge has received a probe, so it is subscribed.

    (A worker answers HTTP before its bus has finished starting; stopped then, it would end
    at once with status 70, as a bus exiting while STARTING does.)
    """
    import fastbus.bridge

    def up() -> bool:
        cluster.alive()
        try:
            statuses = [cluster.status(port) for port in cluster.ports]
        except (urllib.error.URLError, ConnectionError):  # not listening yet
            return False
        cluster.pids = [s["pid"] for s in statuses]
        if all(s["state"] == "STARTED" and s["bridge"]["received"] for s in statuses):
            return True
        # A name no worker caches: dropping it changes nothing.
        fastbus.bridge.send(cluster.url, "cache-invalidate", "probe", durable=cluster.durable)
        return False

    cluster.wait_until(up, "every worker up and bridged")


def test_invalidation_and_graceful_reach_every_worker(cluster: Cluster) -> None:
    all_up(cluster)
    a, b, c = cluster.ports

    for port in (a, b, c):  # every worker caches the price it read
        assert call(port, "/products/tea")[1]["cached"] is False
        assert call(port, "/products/tea") == (
            200, {"name": "tea", "price": 3.5, "currency": "EUR", "worker": port, "cached": True}
        )

    # A change through b: b drops its cached price at once, the others when the message comes.
    assert call(b, "/products/tea", "PUT", {"price": 4}) == (200, {"name": "tea", "price": 4.0, "worker": b})
    assert call(b, "/products/tea")[1]["price"] == 4.0
    cluster.wait_for("the others' cached price dropped", lambda s: s["worker"] == b or "tea" not in s["cached"])
    for port in (a, c):
        assert call(port, "/products/tea")[1] == {
            "name": "tea", "price": 4.0, "currency": "EUR", "worker": port, "cached": False
        }

    # graceful asked of one worker runs on all: each re-reads the settings file, once.
    cluster.settings.write_text(json.dumps({"currency": "CHF"}))
    assert bare_post(c, "/graceful") == (200, {"graceful": 1, "worker": c})
    statuses = cluster.wait_for("graceful on every worker", lambda s: s["graceful"] >= 1)
    assert [(s["graceful"], s["settings"]) for s in statuses] == [(1, {"currency": "CHF"})] * 3
    assert call(a, "/products/tea")[1]["currency"] == "CHF"

    # ... and a program without a bus can ask for it too.
    import fastbus.bridge

    fastbus.bridge.send(cluster.url, "graceful", durable=cluster.durable)
    statuses = cluster.wait_for("a sent graceful on every worker", lambda s: s["graceful"] >= 2)
    assert [s["graceful"] for s in statuses] == [2, 2, 2]
    for s in statuses:
        assert s["bridge"]["malformed"] == 0 and s["bridge"]["missed"] == 0

    # Bad requests are JSON errors naming what is wrong, and change nothing.
    status, body = call(a, "/products/tea", "PUT", {"price": -1})
    assert status == 400 and "'price' must be a number" in body["error"]
    status, body = call(a, "/products/coffee")
    assert status == 404 and body == {"error": "no product named 'coffee'"}
    assert call(b, "/products/tea")[1]["price"] == 4.0

    # SIGTERM to the launcher stops every worker, each through its bus.
    cluster.proc.send_signal(signal.SIGTERM)
    assert cluster.proc.wait(DEADLINE) == 0, cluster.log()
    for pid in cluster.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert cluster.log().count("Bus EXITED") == 3
