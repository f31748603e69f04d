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

A cart with missing fields, wrong types or numbers out of range (quantity 1 to 1,000,000,
price 0 to 1,000,000,000) gets a 400 with a message naming the field, and is not saved. SIGTERM (or Ctrl-C) stops the bus: the plugin closes the database after the last
request was answered, and every accepted cart has been committed by then.
"""

from __future__ import annotations

import argparse
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
        if "items" not in data:
            raise CartError("missing field 'items'")
        items = data["items"]
        if not isinstance(items, list) or not items:
            raise CartError("'items' must be a non-empty list")
        cart = cls(customer.strip(), [cls._item(n, item) for n, item in enumerate(items)])
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

    def list_them(self) -> list[dict[str, Any]]:
        """Return every saved cart, oldest first."""
        with self.lock:
            assert self.db is not None, "db-list listener called while stopped"
            rows = self.db.execute("SELECT id, customer, items, total FROM carts ORDER BY id").fetchall()
        return [
            {"id": id_, "customer": customer, "items": json.loads(items), "total": total}
            for id_, customer, items, total in rows
        ]


def _error(status: int, message: str) -> dict[str, str]:
    cherrypy.response.status = status
    return {"error": message}


class ECommerce:
    """The shop: it publishes carts to the bus and never sees the database."""

    @cherrypy.expose
    def index(self) -> str:
        return "POST a cart (JSON) to /carts; GET /carts lists the saved ones.\n"

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def carts(self, **form: Any) -> Any:
        """``GET``: the saved carts. ``POST`` (a JSON cart): save it, answer 201 and its id.

        Form fields (which CherryPy decodes into arguments) are refused with 415 below.
        """
        method = cherrypy.request.method
        if method == "GET":
            results = cherrypy.engine.publish("db-list")
            if not results:
                return _error(503, "the database is not running")
            return results[0]
        if method != "POST":
            cherrypy.response.headers["Allow"] = "GET, POST"
            return _error(405, "use GET or POST")
        content_type = cherrypy.request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return _error(415, "send the cart as application/json")
        return self._save(cherrypy.request.body.read())

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def save_kart(self, cart_data: str = "") -> Any:
        """The page's handler: a form field ``cart_data`` holding the cart as JSON."""
        if cherrypy.request.method != "POST":
            cherrypy.response.headers["Allow"] = "POST"
            return _error(405, "use POST")
        return self._save(cart_data)

    def _save(self, body: str | bytes) -> Any:
        try:
            data = json.loads(body)
        except ValueError as exc:  # UnicodeDecodeError is one too
            return _error(400, f"the cart is not valid JSON: {exc}")
        try:
            cart = Cart.from_json(data)
        except CartError as exc:
            return _error(400, str(exc))
        ids = cherrypy.engine.publish("db-save", cart)
        if not ids:
            return _error(503, "the database is not running")
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
        "engine.autoreload.on": False,
        "log.screen": True,
    })
    cherrypy.engine.log("fastbus %s core; engine is a fastbus.Bus: %s"
                        % ("compiled" if fastbus.COMPILED else "pure", fastbus.installed()))
    DatabasePlugin(cherrypy.engine, os.path.abspath(args.db)).subscribe()
    SignalHandler(cherrypy.engine).subscribe()
    cherrypy.tree.mount(ECommerce(), "/", {"/": {"request.show_tracebacks": False}})
    cherrypy.engine.start()
    cherrypy.engine.block()


if __name__ == "__main__":
    main()
