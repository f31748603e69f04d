"""The engine-bus page's examples (examples/), run for real: HTTP on localhost, SQLite on disk."""

from __future__ import annotations

import ast
import http.client
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

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
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115
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
    status, body = request(port, "/carts")
    assert (status, json.loads(body)) == (200, {"carts": [], "next": None})

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
    page = strict_json(body)
    assert page["next"] is None  # all on the default page
    listed = page["carts"]
    assert status == 200 and [c["id"] for c in listed] == list(range(1, count + 2))
    assert sorted((c["customer"], c["items"], c["total"]) for c in listed) == expected
    assert sorted(sqlite_carts(db_path)) == expected  # straight from the file, while it runs

    assert server.stop() == 0, server.log()
    log = server.log()
    assert "Stopping down DB access" in log and "Bus EXITED" in log
    assert log.index("shut down") < log.index("Stopping down DB access")  # server first
    assert sorted(sqlite_carts(db_path)) == expected  # nothing lost, nothing bad saved


# --- The example as a JSON API: errors, bounds, HEAD and paging --------------------------------


def example_constants() -> dict[str, Any]:
    """ecommerce.py's module-level literals (its limits), read without importing it: importing
    it would install fastbus into CherryPy in this test process."""
    constants = {}
    for node in ast.parse((EXAMPLES / "ecommerce.py").read_text()).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


LIMITS = example_constants()


def limit(name: str) -> int:
    value = LIMITS.get(name)
    assert isinstance(value, int), f"examples/ecommerce.py has no integer constant {name}"
    return value


Answer = tuple[int, http.client.HTTPMessage, bytes]
"""An HTTP answer: status, headers and body."""


def exchange(port: int, method: str, path: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b"") -> Answer:
    """One request, sent as given: no header is added but Host, not even Content-Length."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        if body:
            conn.send(body)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def post(port: int, path: str, body: bytes, content_type: str = "application/json") -> Answer:
    return exchange(port, "POST", path, [("Content-Type", content_type), ("Content-Length", str(len(body)))], body)


def error_of(answer: Answer, status: int) -> str:
    """The message of an error *answer*, checked to be *status* and ``{"error": str}`` in JSON."""
    got, headers, body = answer
    assert got == status, answer
    assert headers.get_content_type() == "application/json", answer
    data = json.loads(body)
    assert isinstance(data, dict) and list(data) == ["error"] and isinstance(data["error"], str), answer
    return data["error"]


def json_cart(customer: str = "ada", items: int = 1, sku: str = "tea") -> bytes:
    cart = {"customer": customer, "items": [{"sku": sku, "quantity": 1, "price": 2}] * items}
    return json.dumps(cart, ensure_ascii=False).encode()


class Shop:
    """ecommerce.py serving on a free port, shared by the tests that need no state of their own."""

    def __init__(self, server: Server, port: int) -> None:
        self.server, self.port = server, port


@pytest.fixture(scope="module")
def shops() -> Iterator[dict[str, Shop]]:
    """The shared servers, by core name; stopped (each must exit 0) when the module is done."""
    started: dict[str, Shop] = {}
    yield started
    try:
        for shop in started.values():
            assert shop.server.stop() == 0, shop.server.log()
    finally:
        for shop in started.values():
            shop.server.close()


@pytest.fixture
def shop(
    shops: dict[str, Shop],
    core_name: str,
    core_env: dict[str, str],
    python: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Shop:
    """ecommerce.py on the core under test, started by the first test that asks for it and
    shared by the module's others, since starting one takes about a second."""
    if core_name not in shops:
        tmp_path = tmp_path_factory.mktemp(f"shop-{core_name}")
        port = free_port()
        env = {**core_env, "ECOMMERCE_DB": str(tmp_path / "shop.sqlite3")}
        server = Server("ecommerce.py", ["--port", str(port)], env, tmp_path, python)
        try:
            server.wait_for_log(f"Serving on http://127.0.0.1:{port}")
            assert f"fastbus {core_name} core; engine is a fastbus.Bus: True" in server.log()
        except BaseException:
            server.close()
            raise
        shops[core_name] = Shop(server, port)
    return shops[core_name]


def test_ecommerce_errors_are_json(shop: Shop) -> None:
    port = shop.port
    # CherryPy's own errors, which were its HTML page; the message is not left HTML-escaped.
    assert error_of(exchange(port, "GET", "/nowhere&else"), 404) == "The path '/nowhere&else' was not found."
    error_of(exchange(port, "GET", "/carts/7"), 404)
    message = error_of(exchange(port, "POST", "/carts", [("Content-Type", "application/json")]), 411)
    assert "Content-Length" in message
    # The application's own.
    answer = exchange(port, "PUT", "/carts", [("Content-Length", "0")])
    assert error_of(answer, 405) == "use GET or HEAD or POST" and answer[1]["Allow"] == "GET, HEAD, POST"
    answer = exchange(port, "GET", "/save_kart")
    assert error_of(answer, 405) == "use POST" and answer[1]["Allow"] == "POST"
    form = post(port, "/carts", b"customer=x", "application/x-www-form-urlencoded")
    assert error_of(form, 415) == "send the cart as application/json"
    assert error_of(post(port, "/carts", b"{}"), 400) == "missing field 'customer'"
    repeated = urllib.parse.urlencode([("cart_data", "{}"), ("cart_data", "{}")]).encode()
    message = error_of(post(port, "/save_kart", repeated, "application/x-www-form-urlencoded"), 400)  # was a 500
    assert message == "'cart_data' must be one form field holding the cart as JSON"
    assert error_of(post(port, "/carts", b"[1,"), 400).startswith("the cart is not valid JSON")


def test_ecommerce_unexpected_error_is_json_500(start: Callable[..., Server], tmp_path: Path) -> None:
    # A database file from elsewhere, with a carts table lacking columns: saving and listing
    # both fail inside the db-save/db-list listeners, which CherryPy answers with a 500.
    db_path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE carts (id INTEGER PRIMARY KEY)")
    db.commit()
    db.close()
    port = free_port()
    server = start("ecommerce.py", "--port", str(port), ECOMMERCE_DB=str(db_path))
    server.wait_for_log(f"Serving on http://127.0.0.1:{port}")
    for answer in (post(port, "/carts", json_cart()), exchange(port, "GET", "/carts")):
        message = error_of(answer, 500)
        assert message.startswith("The server encountered an unexpected condition"), answer
        assert "Traceback" not in message and "sqlite" not in message.lower(), message
    assert "OperationalError" in server.log()  # logged for the operator, not sent to the client
    assert server.stop() == 0, server.log()


def test_ecommerce_bounds_the_request_body(shop: Shop) -> None:
    port, bound = shop.port, limit("MAX_BODY_BYTES")
    too_large = f"the request body must be at most {bound:,} bytes"
    cart = json_cart()
    # At the bound a cart (padded with blanks, which JSON allows) is taken; one byte more is not.
    assert post(port, "/carts", cart.ljust(bound))[0] == 201
    assert error_of(post(port, "/carts", cart.ljust(bound + 1)), 413) == too_large
    # An announced length over the bound is refused before the body is read: none is sent.
    announced = [("Content-Type", "application/json"), ("Content-Length", str(bound + 1))]
    assert error_of(exchange(port, "POST", "/carts", announced), 413) == too_large
    # A chunked body announces nothing; it is stopped once the bound is passed.
    padded = cart.ljust(bound + 1)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(padded), padded)
    headers = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
    assert error_of(exchange(port, "POST", "/carts", headers, chunked), 413) == too_large
    # The page's form handler is bounded alike.
    form = urllib.parse.urlencode({"cart_data": cart.decode().ljust(bound)}).encode()
    assert error_of(post(port, "/save_kart", form, "application/x-www-form-urlencoded"), 413) == too_large


def test_ecommerce_refuses_deep_nesting_with_400(shop: Shop) -> None:
    port = shop.port
    nested = [
        b"[" * 100_000 + b"]" * 100_000,  # the body: was a 500 page with a RecursionError
        b'{"customer": "x", "items": ' + b'{"a": ' * 20_000 + b"1" + b"}" * 20_000 + b"}",
    ]
    for body in nested:
        assert len(body) <= limit("MAX_BODY_BYTES")  # refused for its depth, not its size
        assert error_of(post(port, "/carts", body), 400).startswith("the cart is nested too deeply"), body[:40]
    form = urllib.parse.urlencode({"cart_data": "[" * 20_000 + "]" * 20_000}).encode()
    message = error_of(post(port, "/save_kart", form, "application/x-www-form-urlencoded"), 400)
    assert message.startswith("the cart is nested too deeply")
    assert post(port, "/carts", json_cart())[0] == 201  # and the server goes on serving


def test_ecommerce_body_must_be_utf8(shop: Shop) -> None:
    port = shop.port
    cart = json_cart("zoë")
    latin1 = cart.decode().encode("latin-1")
    where = latin1.index("ë".encode("latin-1"))
    assert error_of(post(port, "/carts", latin1), 400) == f"the body must be UTF-8 JSON (byte {where} is not UTF-8)"
    # UTF-16, which Python's decoder would have guessed and taken, is not JSON on the wire.
    assert error_of(post(port, "/carts", cart.decode().encode("utf-16")), 400).startswith("the body must be UTF-8 JSON")
    # A UTF-8 byte order mark may be ignored (RFC 8259), and is.
    assert post(port, "/carts", b"\xef\xbb\xbf" + cart)[0] == 201
    # No codec's or Python's wording reaches the client.
    digits = b'{"customer": "x", "items": [{"sku": "a", "quantity": %s, "price": 1}]}' % (b"1" * 5000)
    message = error_of(post(port, "/carts", digits), 400)
    if hasattr(sys, "get_int_max_str_digits"):  # this Python refuses to convert 5,000 digits
        assert message == "the cart holds a number too long to read"
    else:
        assert message.startswith("'items[0].quantity' must be a whole number")


def test_ecommerce_bounds_field_lengths_and_item_count(shop: Shop) -> None:
    port = shop.port
    customer, sku, items = limit("MAX_CUSTOMER_LENGTH"), limit("MAX_SKU_LENGTH"), limit("MAX_ITEMS")
    # At each bound (in characters, not bytes; blanks around the name are not counted).
    for body in (json_cart(" " + "é" * customer + " "), json_cart(sku="s" * sku), json_cart(items=items)):
        status, _, answer = post(port, "/carts", body)
        assert status == 201, answer
    refused = [
        (json_cart("c" * (customer + 1)), f"'customer' must be at most {customer:,} characters long"),
        (json_cart(sku="s" * (sku + 1)), f"'items[0].sku' must be at most {sku:,} characters long"),
        (json_cart(items=items + 1), f"'items' must hold at most {items:,} items"),
    ]
    for body, message in refused:
        assert error_of(post(port, "/carts", body), 400) == message


def test_ecommerce_head_wherever_get(shop: Shop) -> None:
    port = shop.port
    for path in ("/carts", "/carts?limit=1", "/"):
        get_status, get_headers, get_body = exchange(port, "GET", path)
        status, headers, body = exchange(port, "HEAD", path)
        assert (get_status, status, body) == (200, 200, b""), path
        assert headers.get_content_type() == "application/json"
        assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))
    status, headers, body = exchange(port, "HEAD", "/save_kart")  # GET is not allowed there either
    assert (status, headers["Allow"], body) == (405, "POST", b"")
    status, headers, body = exchange(port, "HEAD", "/carts?limit=0")
    assert (status, headers.get_content_type(), body) == (400, "application/json", b"")


def test_ecommerce_index_is_json_with_the_limits(shop: Shop) -> None:
    status, headers, body = exchange(shop.port, "GET", "/")
    assert (status, headers.get_content_type()) == (200, "application/json")
    assert json.loads(body)["limits"] == {
        "body_bytes": limit("MAX_BODY_BYTES"),
        "customer_length": limit("MAX_CUSTOMER_LENGTH"),
        "items": limit("MAX_ITEMS"),
        "sku_length": limit("MAX_SKU_LENGTH"),
        "quantity": [1, limit("MAX_QUANTITY")],
        "price": [0, limit("MAX_PRICE")],
        "page_size": limit("MAX_PAGE_SIZE"),
    }
    assert error_of(post(shop.port, "/", b"{}"), 405) == "use GET or HEAD"


def test_ecommerce_pages_the_carts(start: Callable[..., Server], tmp_path: Path) -> None:
    port = free_port()
    server = start("ecommerce.py", "--port", str(port), ECOMMERCE_DB=str(tmp_path / "shop.sqlite3"))
    server.wait_for_log(f"Serving on http://127.0.0.1:{port}")
    default, largest = limit("DEFAULT_PAGE_SIZE"), limit("MAX_PAGE_SIZE")
    count = default + 3
    for n in range(count):
        assert post(port, "/carts", json.dumps(cart(n)).encode())[0] == 201

    def page(path: str) -> tuple[list[int], Any]:
        status, _, body = exchange(port, "GET", path)
        assert status == 200, body
        data = strict_json(body)
        assert list(data) == ["carts", "next"]
        return [c["id"] for c in data["carts"]], data["next"]

    # The default page, then the one its pointer names, which is the last.
    assert page("/carts") == (list(range(1, default + 1)), f"/carts?after={default}&limit={default}")
    assert page(f"/carts?after={default}&limit={default}") == (list(range(default + 1, count + 1)), None)
    # Walking with a small page visits every cart once, in order.
    seen, path = [], "/carts?limit=4"
    while path is not None:
        ids, path = page(path)
        assert 0 < len(ids) <= 4
        seen.extend(ids)
    assert seen == list(range(1, count + 1))
    assert page(f"/carts?limit={largest}") == (list(range(1, count + 1)), None)
    assert page(f"/carts?after={count}") == ([], None)
    one = strict_json(exchange(port, "GET", "/carts?after=2&limit=1")[2])
    assert one == {"carts": [{"id": 3, **cart(2), "total": 3 * 2.5}], "next": "/carts?after=3&limit=1"}
    assert server.stop() == 0, server.log()


def test_ecommerce_refuses_bad_paging_parameters(shop: Shop) -> None:
    port, largest, last_id = shop.port, limit("MAX_PAGE_SIZE"), limit("MAX_CART_ID")
    limit_message = f"parameter 'limit' must be a whole number from 1 to {largest:,}"
    after_message = f"parameter 'after' must be a whole number from 0 to {last_id:,}"
    bad = [
        ("limit=0", limit_message),
        (f"limit={largest + 1}", limit_message),
        ("limit=", limit_message),
        ("limit=ten", limit_message),
        ("limit=-1", limit_message),
        ("limit=%2B5", limit_message),  # +5, which int() takes
        ("limit=%205", limit_message),  # " 5"
        ("limit=1_0", limit_message),
        ("limit=%D9%A3", limit_message),  # an Arabic-Indic 3
        ("limit=1&limit=2", "parameter 'limit' given more than once"),
        ("after=-1", after_message),
        ("after=x", after_message),
        (f"after={last_id + 1}", after_message),
        ("after=" + "9" * 5000, after_message),  # no 500 from converting 5,000 digits
        ("page=2", "unexpected parameter 'page'"),
        ("limit=5&offset=5", "unexpected parameter 'offset'"),
    ]
    for query, message in bad:
        assert error_of(exchange(port, "GET", f"/carts?{query}"), 400) == message, query
    assert error_of(post(port, "/carts?limit=5", json_cart()), 400) == "unexpected parameter 'limit'"


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
