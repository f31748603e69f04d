"""The engine-bus page's hello world, with and without the HTTP server.

``python examples/hello.py`` serves "hello world" (on ``--port``, default 8080).
``python examples/hello.py --no-server`` unsubscribes the HTTP server from the bus first: the
engine starts, runs and stops as before, but nothing serves; that is how an application
runs under another (WSGI) server. Compare the logs: the second has no "Serving on" line.
"""

from __future__ import annotations

import argparse
import os

import fastbus

fastbus.install()  # before CherryPy is imported, so that cherrypy.engine is a fastbus.Bus

import cherrypy  # noqa: E402

from fastbus.plugins import SignalHandler  # noqa: E402


class Root:
    @cherrypy.expose
    def index(self) -> str:
        return "hello world"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="hello world, with or without the HTTP server")
    parser.add_argument("--port", type=int, default=int(os.environ.get("HELLO_PORT", "8080")))
    parser.add_argument("--no-server", action="store_true", help="unsubscribe the HTTP server")
    args = parser.parse_args(argv)

    cherrypy.config.update({
        "server.socket_host": "127.0.0.1",
        "server.socket_port": args.port,
        "engine.autoreload.on": False,
        "log.screen": True,
    })
    if args.no_server:
        cherrypy.server.unsubscribe()
    SignalHandler(cherrypy.engine).subscribe()
    cherrypy.tree.mount(Root(), "/", {"/": {"request.show_tracebacks": False}})
    cherrypy.engine.start()
    cherrypy.engine.block()


if __name__ == "__main__":
    main()
