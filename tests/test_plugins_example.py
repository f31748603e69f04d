"""The engine-bus page's examples (examples/), run for real: HTTP on localhost, SQLite on disk."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from _children import reap, spawn, wait_until

pytest.importorskip("cherrypy")  # an optional extra of fastbus; the examples need it

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="stops the example with SIGTERM")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEADLINE = 20.0  # an example starts CherryPy and an HTTP server: allow it more than the default
HTTP_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """An example script run as a child process on the core under test, its log in a file."""

    def __init__(self, script: str, args: list[str], env: dict[str, str], tmp_path: Path, python: str) -> None:
        self.log_path = tmp_path / f"{script}.log"
        self.log_file = open(self.log_path, "wb")
        self.proc = spawn(
            [python, str(EXAMPLES / script), *args], env, tmp_path, stdout=self.log_file, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"the example ended early ({self.proc.returncode}):\n{self.log()}")
            return text in self.log()

        wait_until(seen, DEADLINE, what=repr(text))

    def stop(self) -> int:
        """SIGTERM, which fastbus's SignalHandler turns into ``engine.exit()``."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(DEADLINE)

    def close(self) -> None:
        reap(self.proc, DEADLINE)
        self.log_file.close()


@pytest.fixture
def start(tmp_path: Path, python: str, core_env: dict[str, str]) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def starter(script: str, *args: str, **env: str) -> Server:
        server = Server(script, list(args), {**core_env, **env}, tmp_path, python)
        servers.append(server)
        return server

    yield starter
    for server in servers:
        server.close()


def request(port: int, path: str, body: bytes | None = None, content_type: str = "application/json") -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body)
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def post_json(port: int, data: Any) -> tuple[int, Any]:
    status, body = request(port, "/carts", json.dumps(data).encode())
    return status, json.loads(body)


def cart(n: int) -> dict[str, Any]:
    return {"customer": f"customer {n}", "items": [{"sku": f"sku-{n}", "quantity": n + 1, "price": 2.5}]}


BAD_CARTS = [
    ({"items": [{"sku": "a", "quantity": 1, "price": 1}]}, "missing field 'customer'"),
    ({"customer": "x"}, "missing field 'items'"),
    ({"customer": 7, "items": [{"sku": "a", "quantity": 1, "price": 1}]}, "'customer' must be a non-empty string"),
    ({"customer": "x", "items": "tea"}, "'items' must be a non-empty list"),
    ({"customer": "x", "items": [{"sku": "a", "price": 1}]}, "missing field 'items[0].quantity'"),
    ({"customer": "x", "items": [{"sku": "a", "quantity": "2", "price": 1}]}, "'items[0].quantity' must be a whole number"),
    ({"customer": "x", "items": [{"sku": "a", "quantity": True, "price": 1}]}, "'items[0].quantity' must be a whole number"),
    ({"customer": "x", "items": [{"sku": "a", "quantity": 1, "price": -1}]}, "'items[0].price' must be a number"),
    # Out of range: each was a 500 (an OverflowError, or SQLite's INTEGER limit) or, for the
    # last, a cart saved with the total Infinity, which GET /carts then sent as invalid JSON.
    ({"customer": "x", "items": [{"sku": "a", "quantity": 1, "price": 10**400}]}, "'items[0].price' must be a number"),
    ({"customer": "x", "items": [{"sku": "a", "quantity": 1, "price": 1e9 + 1}]}, "'items[0].price' must be a number"),
    ({"customer": "x", "items": [{"sku": "a", "quantity": 10**400, "price": 1.5}]}, "'items[0].quantity' must be a whole number"),
    ({"customer": "x", "items": [{"sku": "a", "quantity": 10**20, "price": 1}]}, "'items[0].quantity' must be a whole number"),
    ({"customer": "x", "items": [{"sku": "a", "quantity": 1_000_001, "price": 1}]}, "'items[0].quantity' must be a whole number"),
    ({"customer": "x", "items": [{"sku": "a", "quantity": 1, "price": 1e308}] * 2}, "'items[0].price' must be a number"),
    (["not", "an", "object"], "a cart must be a JSON object"),
]


def strict_json(body: bytes) -> Any:
    """Decode *body*, refusing NaN and Infinity, which Python's decoder takes but JSON lacks."""

    def refuse(literal: str) -> Any:
        raise ValueError(f"{literal} is not JSON")

    return json.loads(body, parse_constant=refuse)


def sqlite_carts(path: Path) -> list[tuple[str, list[Any], float]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=HTTP_TIMEOUT)
    try:
        rows = db.execute("SELECT customer, items, total FROM carts ORDER BY id").fetchall()
    finally:
        db.close()
    return [(customer, json.loads(items), total) for customer, items, total in rows]


def test_ecommerce_saves_carts_through_the_bus(start: Callable[..., Server], tmp_path: Path, core_name: str) -> None:
    port = free_port()
    db_path = tmp_path / "shop.sqlite3"
    server = start("ecommerce.py", "--port", str(port), ECOMMERCE_DB=str(db_path))
    server.wait_for_log(f"Serving on http://127.0.0.1:{port}")
    assert f"fastbus {core_name} core; engine is a fastbus.Bus: True" in server.log()
    assert request(port, "/carts") == (200, b"[]")

    # Carts from several clients at once; each is answered 201 with its own id.
    count, answers, lock = 12, [], threading.Lock()

    def client(numbers: range) -> None:
        for n in numbers:
            answer = post_json(port, cart(n))
            with lock:
                answers.append((n, answer))

    clients = [threading.Thread(target=client, args=(range(i, count, 4),)) for i in range(4)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(DEADLINE)
    assert len(answers) == count
    assert all(status == 201 and body["total"] == (n + 1) * 2.5 for n, (status, body) in answers)
    assert sorted(body["id"] for _, (_, body) in answers) == list(range(1, count + 1))

    # The page's own handler: a form field holding the cart.
    form = urllib.parse.urlencode({"cart_data": json.dumps(cart(count))}).encode()
    status, body = request(port, "/save_kart", form, "application/x-www-form-urlencoded")
    assert status == 201 and json.loads(body)["id"] == count + 1

    for bad, message in BAD_CARTS:
        status, raw = request(port, "/carts", json.dumps(bad).encode())
        assert status == 400 and json.loads(raw)["error"].startswith(message), (bad, status, raw[:300])
    # NaN and Infinity are not JSON, but Python's decoder takes them: refused as well.
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        status, body = request(port, "/carts", b'{"customer": "x", "items": [{"sku": "a", "quantity": 1, "price": %s}]}' % literal)
        assert status == 400 and json.loads(body)["error"].startswith("'items[0].price' must be a number"), body
    status, body = request(port, "/carts", b"{not json")
    assert status == 400 and json.loads(body)["error"].startswith("the cart is not valid JSON")
    status, body = request(port, "/carts", b"customer=x", "application/x-www-form-urlencoded")
    assert status == 415

    expected = sorted((f"customer {n}", cart(n)["items"], (n + 1) * 2.5) for n in range(count + 1))
    status, body = request(port, "/carts")
    listed = strict_json(body)
    assert status == 200 and [c["id"] for c in listed] == list(range(1, count + 2))
    assert sorted((c["customer"], c["items"], c["total"]) for c in listed) == expected
    assert sorted(sqlite_carts(db_path)) == expected  # straight from the file, while it runs

    assert server.stop() == 0, server.log()
    log = server.log()
    assert "Stopping down DB access" in log and "Bus EXITED" in log
    assert log.index("shut down") < log.index("Stopping down DB access")  # server first
    assert sorted(sqlite_carts(db_path)) == expected  # nothing lost, nothing bad saved


def test_hello_world_with_the_server(start: Callable[..., Server]) -> None:
    port = free_port()
    server = start("hello.py", "--port", str(port))
    server.wait_for_log("Bus STARTED")
    assert f"Serving on http://127.0.0.1:{port}" in server.log()
    assert request(port, "/") == (200, b"hello world")
    assert server.stop() == 0, server.log()


def test_hello_world_without_the_server(start: Callable[..., Server]) -> None:
    port = free_port()
    server = start("hello.py", "--no-server", HELLO_PORT=str(port))
    server.wait_for_log("Bus STARTED")
    assert "Listening for SIGTERM." in server.log()
    assert "Serving on" not in server.log()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT).close()
    assert server.proc.poll() is None  # the engine runs all the same
    assert server.stop() == 0, server.log()
    assert "Bus EXITED" in server.log()
