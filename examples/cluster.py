"""Several CherryPy workers, one bus: fastbus.bridge carries cache invalidations and graceful.

Each worker is a process of its own serving its own port, with an in-memory cache of product
prices read from a SQLite file that all of them share. A :class:`fastbus.bridge.RedisBridge`
joins the workers' ``cherrypy.engine`` buses through Redis on two channels:

- ``cache-invalidate``: the worker that changes a price publishes the product's name; its own
  listener drops the cached price at once, and every other worker's as soon as the message
  arrives, so that no worker keeps answering the old price;
- ``graceful``: ``POST /graceful`` to any worker, ``kill -USR1`` of any worker, or
  ``fastbus.bridge.send(url, "graceful", durable=True)`` from any program runs ``graceful``
  on every worker: each re-reads its settings file (here, the currency it quotes prices in).

Start a Redis server and three workers (``--ports`` starts one process per port and stops them
all on SIGTERM or Ctrl-C; ``--port`` runs a single worker, as a process supervisor would)::

    redis-server --port 6379 --save '' &
    python examples/cluster.py --redis redis://127.0.0.1:6379/0 --ports 8081,8082,8083

Then change a price through one worker and read it through another, and reload them all::

    curl -X PUT -H 'Content-Type: application/json' -d '{"price": 3.5}' http://127.0.0.1:8081/products/tea
    curl http://127.0.0.1:8082/products/tea     # {"name": "tea", "price": 3.5, "currency": "EUR", ...}
    curl -X PUT -H 'Content-Type: application/json' -d '{"price": 4}' http://127.0.0.1:8083/products/tea
    curl http://127.0.0.1:8082/products/tea     # 4.0: 8083's change dropped 8082's cached 3.5
    echo '{"currency": "CHF"}' > cluster-settings.json
    curl -X POST http://127.0.0.1:8081/graceful # every worker now quotes CHF
    python -c 'import fastbus.bridge as b; b.send("redis://127.0.0.1:6379/0", "graceful", durable=True)'
    curl http://127.0.0.1:8082/status           # graceful count, settings, cached names, bridge stats

Every answer is JSON; an error is ``{"error": "..."}``. The bridge runs in durable mode by
default (Redis Streams, ``--mode durable``): a worker cut off from Redis for a while still gets
the invalidations published meanwhile once it reconnects, and one that restarts with the same
name (``--name``, by default ``worker-PORT``) gets those published while it was down. Both
channels tolerate a message twice (dropping a name that is not cached, or reloading the
settings again, changes nothing), which is all at-least-once delivery asks of a listener.
``--mode pubsub`` trades that for the lowest latency: a disconnected worker misses what is
published meanwhile, and its bridge's ``stats()`` counts what it missed (a program sending to
pub/sub workers leaves out ``durable=True``). See docs/bridge.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from typing import Any

import fastbus

fastbus.install()  # before CherryPy is imported, so that cherrypy.engine is a fastbus.Bus

import cherrypy  # noqa: E402

import fastbus.bridge  # noqa: E402
from fastbus.plugins import SignalHandler, SimplePlugin  # noqa: E402

INVALIDATE = "cache-invalidate"
BRIDGED = (INVALIDATE, "graceful")
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_PRICE = 1_000_000_000
DEFAULT_SETTINGS = {"currency": "EUR"}


class Catalogue(SimplePlugin):
    """The products' prices: SQLite shared by the workers, a cache private to this one.

    Subscribed channels: ``start`` opens the database, ``stop`` closes it, ``graceful``
    re-reads the settings file and ``cache-invalidate`` drops a name from the cache (called
    on the request thread for this worker's own changes, and on the bridge's receiving
    thread for the other workers').
    """

    def __init__(self, bus: Any, db_path: str, settings_path: str) -> None:
        SimplePlugin.__init__(self, bus)
        self.db_path = db_path
        self.settings_path = settings_path
        self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
        self.graceful_count = 0
        self.lock = threading.Lock()
        self.cache: dict[str, float] = {}
        self.db: sqlite3.Connection | None = None

    def subscribe(self) -> None:
        SimplePlugin.subscribe(self)
        self.bus.subscribe(INVALIDATE, self.invalidate)

    def unsubscribe(self) -> None:
        SimplePlugin.unsubscribe(self)
        self.bus.unsubscribe(INVALIDATE, self.invalidate)

    def start(self) -> None:
        self.load_settings()
        with self.lock:
            # Several processes write this file: wait for another's write rather than fail.
            self.db = sqlite3.connect(self.db_path, timeout=10, check_same_thread=False)
            with self.db:
                self.db.execute("CREATE TABLE IF NOT EXISTS products (name TEXT PRIMARY KEY, price REAL NOT NULL)")

    def stop(self) -> None:
        with self.lock:
            if self.db is not None:
                self.db.close()
                self.db = None
            self.cache.clear()

    # After the HTTP server's stop (50), which lets requests in progress finish.
    stop.priority = 60  # type: ignore[attr-defined]

    def graceful(self) -> None:
        """Reload the settings; on whichever worker it was asked of, and on every other."""
        self.load_settings()
        with self.lock:
            self.graceful_count += 1
        self.bus.log(f"graceful: settings {self.settings}")

    def load_settings(self) -> None:
        """Read the settings file; a missing or broken one keeps what was there (and says so)."""
        try:
            with open(self.settings_path, encoding="utf-8") as file:
                loaded = json.load(file)
            if not isinstance(loaded, dict):
                raise ValueError("the settings must be a JSON object")
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            self.bus.log(f"settings not reloaded from {self.settings_path}: {exc}", level=30)
            return
        self.settings = {**DEFAULT_SETTINGS, **loaded}

    def invalidate(self, name: str) -> None:
        with self.lock:
            self.cache.pop(name, None)

    def price(self, name: str) -> tuple[float | None, bool]:
        """The price of *name* (None if unknown) and whether it came from the cache."""
        # One lock over the look-up, the read and the caching: an invalidation cannot land
        # between reading the old price and caching it, which would keep it for good.
        with self.lock:
            if name in self.cache:
                return self.cache[name], True
            if self.db is None:
                raise cherrypy.HTTPError(503, "the catalogue is not running")
            row = self.db.execute("SELECT price FROM products WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None, False
            self.cache[name] = row[0]
            return row[0], False

    def set_price(self, name: str, price: float) -> None:
        """Store the price, then tell every worker (this one included) to drop its cached one."""
        with self.lock:
            if self.db is None:
                raise cherrypy.HTTPError(503, "the catalogue is not running")
            with self.db:
                self.db.execute(
                    "INSERT INTO products (name, price) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET price = excluded.price",
                    (name, price),
                )
        # Published after the commit, so that a worker dropping the name reads the new price.
        self.bus.publish(INVALIDATE, name)

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {"graceful": self.graceful_count, "settings": self.settings, "cached": sorted(self.cache)}


def json_error_page(status: str, message: str, traceback: str, version: str) -> str:
    """Every error as ``{"error": message}``, never a traceback."""
    import html

    cherrypy.serving.response.headers["Content-Type"] = "application/json"
    return json.dumps({"error": html.unescape(message)})


def allow(*methods: str) -> None:
    if cherrypy.request.method not in methods:
        cherrypy.response.headers["Allow"] = ", ".join(methods)
        raise cherrypy.HTTPError(405, f"use {' or '.join(methods)}")


class Worker:
    """The HTTP face of one worker."""

    def __init__(self, catalogue: Catalogue, bridge: Any, port: int) -> None:
        self.catalogue = catalogue
        self.bridge = bridge
        self.port = port

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def products(self, name: str = "", **params: Any) -> Any:
        """``GET /products/NAME``: its price. ``PUT /products/NAME`` ``{"price": p}``: set it."""
        allow("GET", "HEAD", "PUT")
        if params:
            raise cherrypy.HTTPError(400, f"unexpected parameter {min(params)!r}")
        if not NAME.fullmatch(name):
            raise cherrypy.HTTPError(404, "a product's name is 1 to 64 letters, digits, '-' or '_'")
        if cherrypy.request.method == "PUT":
            price = self._read_price()
            self.catalogue.set_price(name, price)
            return {"name": name, "price": price, "worker": self.port}
        price, cached = self.catalogue.price(name)
        if price is None:
            raise cherrypy.HTTPError(404, f"no product named {name!r}")
        currency = self.catalogue.settings["currency"]
        return {"name": name, "price": price, "currency": currency, "worker": self.port, "cached": cached}

    @staticmethod
    def _read_price() -> float:
        content_type = cherrypy.request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise cherrypy.HTTPError(415, "send the price as application/json")
        try:
            data = json.loads(cherrypy.request.body.read(4096))
        except ValueError:
            raise cherrypy.HTTPError(400, 'the body must be JSON: {"price": number}') from None
        price = data.get("price") if isinstance(data, dict) else None
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 <= price <= MAX_PRICE:
            raise cherrypy.HTTPError(400, f"'price' must be a number from 0 to {MAX_PRICE:,}")
        return float(price)

    @cherrypy.expose
    @cherrypy.tools.json_out()
    @cherrypy.config(**{"request.process_request_body": False})  # a bare POST, no body to read
    def graceful(self) -> Any:
        """``POST /graceful``: graceful here, and through the bridge on every other worker."""
        allow("POST")
        cherrypy.engine.graceful()
        return {"graceful": self.catalogue.status()["graceful"], "worker": self.port}

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def status(self) -> Any:
        """This worker: its process and bus state, graceful count, settings, cached names, bridge stats.

        The HTTP server answers as soon as it listens, which is before the bus has finished
        starting: ``"state": "STARTED"`` says that the worker is fully up.
        """
        allow("GET", "HEAD")
        return {
            "worker": self.port,
            "pid": os.getpid(),
            "state": cherrypy.engine.state.name,
            **self.catalogue.status(),
            "bridge": self.bridge.stats(),
        }


def serve(args: argparse.Namespace) -> None:
    """Run one worker on ``args.port`` until SIGTERM (or Ctrl-C)."""
    engine = cherrypy.engine
    cherrypy.config.update({
        "server.socket_host": "127.0.0.1",
        "server.socket_port": args.port,
        "engine.autoreload.on": False,
        "log.screen": True,
    })
    catalogue = Catalogue(engine, os.path.abspath(args.db), os.path.abspath(args.settings))
    catalogue.subscribe()
    bridge = fastbus.bridge.RedisBridge(
        engine, args.redis, channels=BRIDGED, durable=args.mode == "durable", name=args.name or f"worker-{args.port}"
    )
    bridge.subscribe()
    SignalHandler(engine).subscribe()
    cherrypy.tree.mount(Worker(catalogue, bridge, args.port), "/", {"/": {
        "request.show_tracebacks": False,
        "error_page.default": json_error_page,
    }})
    engine.start()
    engine.block()


def launch(args: argparse.Namespace) -> int:
    """Start one worker process per port of ``args.ports``; stop them all on SIGTERM or Ctrl-C.

    A worker that ends on its own stops the others too: this launcher is a demonstration,
    not a supervisor (run each ``--port`` under systemd, supervisord or the like for that).
    """
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    common = ["--redis", args.redis, "--db", args.db, "--settings", args.settings, "--mode", args.mode]
    workers = [subprocess.Popen([sys.executable, os.path.abspath(__file__), *common, "--port", str(port)])
               for port in args.ports]
    try:
        while not stop.wait(0.2) and all(worker.poll() is None for worker in workers):
            pass
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()  # SIGTERM: the worker's SignalHandler exits its bus
        codes = [worker.wait() for worker in workers]
    return 0 if stop.is_set() and not any(codes) else 1


def _ports(text: str) -> list[int]:
    try:
        ports = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"ports are numbers separated by commas, not {text!r}") from None
    if not ports or any(not 0 < port < 65536 for port in ports) or len(set(ports)) != len(ports):
        raise argparse.ArgumentTypeError(f"ports must be distinct, from 1 to 65535: {text!r}")
    return ports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CherryPy workers sharing one bus through Redis.")
    parser.add_argument("--redis", default=os.environ.get("CLUSTER_REDIS", "redis://127.0.0.1:6379/0"),
                        help="the Redis server's URL (default: $CLUSTER_REDIS or redis://127.0.0.1:6379/0)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="run one worker on this port")
    where.add_argument("--ports", type=_ports, metavar="P,P,...", help="start one worker process per port")
    parser.add_argument("--db", default="cluster.sqlite3", help="the SQLite file of prices, shared by the workers")
    parser.add_argument("--settings", default="cluster-settings.json", help="re-read on graceful")
    parser.add_argument("--mode", choices=("durable", "pubsub"), default="durable", help="the bridge's mode")
    parser.add_argument("--name", help="the worker's bridge name (default: worker-PORT); with --port only")
    args = parser.parse_args(argv)
    if args.ports is not None:
        if args.name:
            parser.error("--name goes with --port: each worker needs its own")
        return launch(args)
    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
