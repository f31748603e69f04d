"""The engine-bus page's ECommerce example, made real: carts saved through the bus to SQLite.

The application never holds a reference to the database. It publishes each cart to the
``db-save`` channel (and asks ``db-list`` for the saved ones); ``DatabasePlugin``, a
:class:`fastbus.plugins.SimplePlugin`, subscribes those channels when the bus starts and
unsubscribes them when it stops. CherryPy runs on fastbus (``fastbus.install()``)::

    python examples/ecommerce.py [--host 127.0.0.1] [--port 8080] [--db ecommerce.sqlite3]

(or set ``ECOMMERCE_PORT`` and ``ECOMMERCE_DB``). Then::

    curl -d '{"customer": "ada", "items": [{"sku": "tea", "quantity": 2, "price": 3.5}]}' \\
         -H 'Content-Type: application/json' http://127.0.0.1:8080/carts
    curl http://127.0.0.1:8080/carts

Every answer is JSON. ``POST /carts`` answers 201 ``{"id": ..., "total": ...}``;
``GET /carts`` (and ``HEAD``) answers a page of carts, oldest first, and where the next
page starts::

    {"carts": [{"id": 1, "customer": "ada", "items": [...], "total": 7.0}, ...],
     "next": "/carts?after=20&limit=20"}

``next`` is null on the last page. ``?limit=`` is the page size (1 to 100, 20 by default) and
``?after=`` the id of the last cart already seen (0, the default, starts at the beginning);
paging by id rather than by offset means a cart saved meanwhile is neither skipped nor
listed twice. A bad or unknown parameter is a 400 naming it. The page is an object, not the
bare list of carts that ``GET /carts`` once answered, so that a client written for the whole
list fails plainly rather than quietly seeing the first page only. ``GET /`` lists the limits.

Every error, whether this module's or CherryPy's (400, 404, 405, 411, 413, 415, 500, 503),
is ``{"error": "..."}`` with ``Content-Type: application/json``; the message names the field,
parameter, method or bound at fault, and never shows a traceback. The limits keep what one
request can make the server read, hold and store small:

- a request body of at most 256 KiB (``MAX_BODY_BYTES``), else 413; a ``Content-Length``
  over it is refused before any of the body is read, a chunked body once it passes it;
- the body is JSON in UTF-8 (a leading byte order mark is ignored), else 400; so is JSON
  nested deeper than Python's decoder follows (about a thousand levels; a cart has three);
- ``customer``: 1 to 200 characters (``MAX_CUSTOMER_LENGTH``) once leading and trailing
  blanks are stripped;
- ``items``: 1 to 100 of them (``MAX_ITEMS``); each ``sku`` 1 to 64 characters
  (``MAX_SKU_LENGTH``), each ``quantity`` a whole number from 1 to 1,000,000
  (``MAX_QUANTITY``), each ``price`` a number from 0 to 1,000,000,000 (``MAX_PRICE``);
- a page of at most 100 carts (``MAX_PAGE_SIZE``).

A cart breaking any of them is answered 400 and not saved. Errors that the HTTP server
(cheroot) answers before CherryPy sees the request, such as a malformed request line or
``Content-Length`` header or a request line or headers too long, remain cheroot's plain text.

SIGTERM (or Ctrl-C) stops the bus: the plugin closes the database after the last request was
answered, and every accepted cart has been committed by then.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sqlite3
import threading
from typing import Any

import fastbus

fastbus.install()  # before CherryPy is imported, so that cherrypy.engine is a fastbus.Bus

import cherrypy  # noqa: E402

from fastbus.plugins import SignalHandler, SimplePlugin  # noqa: E402


class CartError(ValueError):
    """A cart that cannot be saved; the message says which field is wrong and why."""


# Bounds keep every product finite and within what SQLite stores: JSON allows integers of any
# size (10**400 overflows a float, 10**20 SQLite's INTEGER) and Python's decoder takes NaN and
# Infinity, none of which a shop can sell.
MAX_QUANTITY = 1_000_000
MAX_PRICE = 1_000_000_000

# Bounds on what one request can make the server read, store or send (plain literals, which
# the tests read without importing this module). The largest valid cart is under 100 KB of
# JSON even with every character escaped, so any spelling of it fits in MAX_BODY_BYTES; a page
# is at most MAX_PAGE_SIZE such carts.
MAX_BODY_BYTES = 262_144  # 256 KiB
MAX_CUSTOMER_LENGTH = 200
MAX_SKU_LENGTH = 64
MAX_ITEMS = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_CART_ID = 9_223_372_036_854_775_807  # 2**63 - 1, SQLite's largest rowid


class Cart:
    """A customer's cart: a name and a list of items (sku, quantity, unit price)."""

    def __init__(self, customer: str, items: list[dict[str, Any]]) -> None:
        self.customer = customer
        self.items = items

    @property
    def total(self) -> float:
        """The sum of quantity × price, as a float (SQLite's REAL) even when all are integers."""
        return round(math.fsum(item["quantity"] * float(item["price"]) for item in self.items), 2)

    @classmethod
    def from_json(cls, data: Any) -> Cart:
        """Build a cart from decoded JSON, or raise CartError naming the first bad field."""
        if not isinstance(data, dict):
            raise CartError("a cart must be a JSON object")
        unknown = sorted(set(data) - {"customer", "items"})
        if unknown:
            raise CartError(f"unexpected field {unknown[0]!r}")
        customer = data.get("customer")
        if "customer" not in data:
            raise CartError("missing field 'customer'")
        if not isinstance(customer, str) or not customer.strip():
            raise CartError("'customer' must be a non-empty string")
        customer = customer.strip()
        if len(customer) > MAX_CUSTOMER_LENGTH:
            raise CartError(f"'customer' must be at most {MAX_CUSTOMER_LENGTH:,} characters long")
        if "items" not in data:
            raise CartError("missing field 'items'")
        items = data["items"]
        if not isinstance(items, list) or not items:
            raise CartError("'items' must be a non-empty list")
        if len(items) > MAX_ITEMS:
            raise CartError(f"'items' must hold at most {MAX_ITEMS:,} items")
        cart = cls(customer, [cls._item(n, item) for n, item in enumerate(items)])
        # Bounded items keep it finite unless there are about 10**293 of them; checked anyway,
        # since an infinite total would be saved and then listed as invalid JSON.
        if not math.isfinite(cart.total):
            raise CartError("the cart's 'total' is too large")
        return cart

    @staticmethod
    def _item(n: int, item: Any) -> dict[str, Any]:
        where = f"items[{n}]"
        if not isinstance(item, dict):
            raise CartError(f"{where} must be an object")
        for field in ("sku", "quantity", "price"):
            if field not in item:
                raise CartError(f"missing field '{where}.{field}'")
        unknown = sorted(set(item) - {"sku", "quantity", "price"})
        if unknown:
            raise CartError(f"unexpected field '{where}.{unknown[0]}'")
        sku, quantity, price = item["sku"], item["quantity"], item["price"]
        if not isinstance(sku, str) or not sku:
            raise CartError(f"'{where}.sku' must be a non-empty string")
        if len(sku) > MAX_SKU_LENGTH:
            raise CartError(f"'{where}.sku' must be at most {MAX_SKU_LENGTH:,} characters long")
        # bool is an int to Python, never a quantity or a price to a shop. The range checks
        # compare without converting, so a huge int cannot overflow and NaN fails them.
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
            raise CartError(f"'{where}.quantity' must be a whole number from 1 to {MAX_QUANTITY:,}")
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 <= price <= MAX_PRICE:
            raise CartError(f"'{where}.price' must be a number from 0 to {MAX_PRICE:,}")
        return {"sku": sku, "quantity": quantity, "price": price}


class DatabasePlugin(SimplePlugin):
    """Saves carts published to ``db-save`` and lists them on ``db-list``, in SQLite.

    The connection is opened on ``start`` and closed on ``stop``; request threads share it
    behind a lock, and each save is committed before the request is answered.
    """

    def __init__(self, bus: Any, path: str) -> None:
        SimplePlugin.__init__(self, bus)
        self.path = path
        self.db: sqlite3.Connection | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        self.bus.log("Starting up DB access")
        with self.lock:
            self.db = sqlite3.connect(self.path, check_same_thread=False)
            with self.db:
                self.db.execute(
                    "CREATE TABLE IF NOT EXISTS carts (id INTEGER PRIMARY KEY, "
                    "customer TEXT NOT NULL, items TEXT NOT NULL, total REAL NOT NULL)"
                )
        self.bus.subscribe("db-save", self.save_it)
        self.bus.subscribe("db-list", self.list_them)

    def stop(self) -> None:
        self.bus.log("Stopping down DB access")
        self.bus.unsubscribe("db-save", self.save_it)
        self.bus.unsubscribe("db-list", self.list_them)
        with self.lock:
            if self.db is not None:
                self.db.close()
                self.db = None

    # After the HTTP server's stop (50), which lets requests in progress finish: they may save.
    stop.priority = 60  # type: ignore[attr-defined]

    def save_it(self, cart: Cart) -> int:
        """Save *cart* and return its id."""
        with self.lock:
            assert self.db is not None, "db-save listener called while stopped"
            with self.db:  # commits, or rolls back on error
                cursor = self.db.execute(
                    "INSERT INTO carts (customer, items, total) VALUES (?, ?, ?)",
                    (cart.customer, json.dumps(cart.items), cart.total),
                )
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def list_them(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Return at most *limit* saved carts whose ids are above *after*, oldest first."""
        with self.lock:
            assert self.db is not None, "db-list listener called while stopped"
            rows = self.db.execute(
                "SELECT id, customer, items, total FROM carts WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        return [
            {"id": id_, "customer": customer, "items": json.loads(items), "total": total}
            for id_, customer, items, total in rows
        ]


def json_error_page(status: str, message: str, traceback: str, version: str) -> str:
    """CherryPy's error page as ``{"error": message}``: every error has the one shape.

    CherryPy calls it (``error_page.default``) for each error it answers, its own (404, 411,
    413, a 500 from an unexpected exception) and the HTTPErrors raised here, with *message*
    already HTML-escaped; *traceback* and *version* are left out on purpose.
    """
    cherrypy.serving.response.headers["Content-Type"] = "application/json"
    if status.startswith("413 "):  # CherryPy's own message does not say what the bound is
        message = f"the request body must be at most {MAX_BODY_BYTES:,} bytes"
    return json.dumps({"error": html.unescape(message)})


def refuse_large_bodies() -> None:
    """413 as soon as a ``Content-Length`` over the bound arrives, before reading the body.

    A chunked body, whose size is not announced, is stopped by ``request.body.maxbytes``
    once more than the bound has been read.
    """
    length = cherrypy.request.headers.get("Content-Length", "").strip()  # cheroot checked it is a number
    too_long = len(length) > len(str(MAX_BODY_BYTES))  # converted only when short
    if length.isascii() and length.isdigit() and (too_long or int(length) > MAX_BODY_BYTES):
        raise cherrypy.HTTPError(413)


def allow(*methods: str) -> None:
    """Answer 405 (with ``Allow``) unless the request's method is one of *methods*."""
    if cherrypy.request.method not in methods:
        cherrypy.response.headers["Allow"] = ", ".join(methods)
        raise cherrypy.HTTPError(405, f"use {' or '.join(methods)}")


def refuse_parameters(params: dict[str, Any]) -> None:
    """400 naming the first parameter left over: one not understood is not silently ignored."""
    if params:
        raise cherrypy.HTTPError(400, f"unexpected parameter {min(params)!r}")


def whole_number(params: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    """Take the parameter *name* from *params* as a whole number from *low* to *high*.

    Only ASCII digits: ``int()`` would also take signs, blanks, underscores and other
    scripts' digits, and raise on thousands of them.
    """
    value = params.pop(name, None)
    if value is None:
        return default
    if not isinstance(value, str):
        raise cherrypy.HTTPError(400, f"parameter {name!r} given more than once")
    if not (value.isascii() and value.isdigit() and len(value) <= len(str(high)) and low <= int(value) <= high):
        raise cherrypy.HTTPError(400, f"parameter {name!r} must be a whole number from {low:,} to {high:,}")
    return int(value)


class ECommerce:
    """The shop: it publishes carts to the bus and never sees the database."""

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def index(self) -> Any:
        """What there is to use, and the limits it keeps."""
        allow("GET", "HEAD")
        return {
            "carts": "POST a cart (JSON) to /carts; GET /carts lists the saved ones, a page at a time",
            "limits": {
                "body_bytes": MAX_BODY_BYTES,
                "customer_length": MAX_CUSTOMER_LENGTH,
                "items": MAX_ITEMS,
                "sku_length": MAX_SKU_LENGTH,
                "quantity": [1, MAX_QUANTITY],
                "price": [0, MAX_PRICE],
                "page_size": MAX_PAGE_SIZE,
            },
        }

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def carts(self, **params: Any) -> Any:
        """``GET``/``HEAD``: a page of saved carts. ``POST`` (a JSON cart): save it, answer 201.

        *params* are the query string's (and a form body's, which is refused with 415).
        """
        allow("GET", "HEAD", "POST")
        if cherrypy.request.method != "POST":
            return self._page(params)
        content_type = cherrypy.request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise cherrypy.HTTPError(415, "send the cart as application/json")
        refuse_parameters(params)
        return self._save(cherrypy.request.body.read())

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def save_kart(self, cart_data: str = "") -> Any:
        """The page's handler: a form field ``cart_data`` holding the cart as JSON."""
        allow("POST")
        if not isinstance(cart_data, str):  # the field repeated, or sent as a file
            raise cherrypy.HTTPError(400, "'cart_data' must be one form field holding the cart as JSON")
        return self._save(cart_data)

    def _page(self, params: dict[str, Any]) -> Any:
        after = whole_number(params, "after", 0, MAX_CART_ID, 0)
        limit = whole_number(params, "limit", 1, MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE)
        refuse_parameters(params)
        # One more than the page, to learn whether another page follows.
        results = cherrypy.engine.publish("db-list", after, limit + 1)
        if not results:
            raise cherrypy.HTTPError(503, "the database is not running")
        carts = results[0][:limit]
        more = len(results[0]) > limit
        next_page = f"{cherrypy.request.script_name}/carts?after={carts[-1]['id']}&limit={limit}" if more else None
        return {"carts": carts, "next": next_page}

    def _save(self, body: str | bytes) -> Any:
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8-sig")  # RFC 8259 lets a parser ignore a BOM
            except UnicodeDecodeError as exc:
                # The codec's own message names itself and Python's terms; say what to send.
                raise cherrypy.HTTPError(400, f"the body must be UTF-8 JSON (byte {exc.start} is not UTF-8)") from None
        try:
            data = json.loads(body)
        except RecursionError:
            # The decoder recurses once per level: refuse what it cannot follow, as bad input.
            message = "the cart is nested too deeply: it is an object holding a list of objects"
            raise cherrypy.HTTPError(400, message) from None
        except json.JSONDecodeError as exc:
            raise cherrypy.HTTPError(400, f"the cart is not valid JSON: {exc}") from None
        except ValueError:
            # Python refuses to convert integers of over 4,300 digits (its message suggests a
            # setting of the server's); no quantity or price is that long.
            raise cherrypy.HTTPError(400, "the cart holds a number too long to read") from None
        try:
            cart = Cart.from_json(data)
        except CartError as exc:
            raise cherrypy.HTTPError(400, str(exc)) from None
        ids = cherrypy.engine.publish("db-save", cart)
        if not ids:
            raise cherrypy.HTTPError(503, "the database is not running")
        cherrypy.response.status = 201
        return {"id": ids[0], "total": cart.total}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The engine-bus page's ECommerce example.")
    parser.add_argument("--host", default=os.environ.get("ECOMMERCE_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("ECOMMERCE_PORT", "8080")))
    parser.add_argument("--db", default=os.environ.get("ECOMMERCE_DB", "ecommerce.sqlite3"))
    args = parser.parse_args(argv)

    cherrypy.config.update({
        "server.socket_host": args.host,
        "server.socket_port": args.port,
        # The HTTP server's own bound would answer 413 in plain text before CherryPy sees the
        # request; the application's bound below (refuse_large_bodies, request.body.maxbytes)
        # answers in JSON instead.
        "server.max_request_body_size": 0,
        "engine.autoreload.on": False,
        "log.screen": True,
    })
    cherrypy.engine.log("fastbus %s core; engine is a fastbus.Bus: %s"
                        % ("compiled" if fastbus.COMPILED else "pure", fastbus.installed()))
    DatabasePlugin(cherrypy.engine, os.path.abspath(args.db)).subscribe()
    SignalHandler(cherrypy.engine).subscribe()
    cherrypy.tree.mount(ECommerce(), "/", {"/": {
        "request.show_tracebacks": False,
        "error_page.default": json_error_page,
        "hooks.on_start_resource": refuse_large_bodies,
        "request.body.maxbytes": MAX_BODY_BYTES,
    }})
    cherrypy.engine.start()
    cherrypy.engine.block()


if __name__ == "__main__":
    main()
