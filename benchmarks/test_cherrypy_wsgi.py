"""What fastbus buys a real CherryPy application: hello world through its WSGI callable.

Each request goes through ``cherrypy.tree`` in-process (no sockets, no HTTP server), which is
everything CherryPy does per request, including the three publishes on the engine
(``acquire_thread``, ``before_request``, ``after_request``).

``fastbus.install()`` must precede ``import cherrypy``, so stock wspbus and fastbus cannot
share one interpreter: each variant (stock, fastbus compiled, fastbus pure) lives in its own
child process, started once per module and driven over a pipe. One benchmark round asks the
child for a batch of ``BATCH`` requests, so the pipe's round trip is spread over the batch
(about 0.05 µs per request, the same for every variant), and with ``BATCH = 1000`` the mean
that pytest-benchmark prints in milliseconds is the time per request in microseconds.

``extra_info`` says where the time goes: a separate, instrumented pass wraps
``engine.publish`` with a timer and reports the µs per request spent inside it (dispatch plus
CherryPy's own ``acquire_thread`` listener) and that time's share of the uninstrumented
request; the timed rounds themselves carry no instrumentation.

Run: ``pytest benchmarks/test_cherrypy_wsgi.py`` (``--benchmark-group-by=group`` puts the
three variants in one table; ``-m "not c_extension"`` leaves out the compiled core).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BATCH = 1000  # requests per benchmark round
PROFILE_REQUESTS = 20000  # requests in the instrumented pass
ROUNDS = 30
STARTUP_TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parent.parent

# The child: one variant of CherryPy serving hello world, driven by one-line commands on
# stdin ("run N", "profile N", "quit"), answering one line of JSON each.
CHILD = r"""
import io, json, sys, time
variant = sys.argv[1]
if variant != "stock":
    import fastbus
    fastbus.install()
import cherrypy

class Root:
    @cherrypy.expose
    def index(self):
        return "Hello world!"

cherrypy.config.update({
    "environment": "embedded",  # no autoreloader, no signal handlers, no server checks
    "log.screen": False,
    "log.access_file": "",
    "log.error_file": "",
})
cherrypy.server.unsubscribe()  # no HTTP server: requests come through the WSGI callable
cherrypy.tree.mount(Root(), "/")
cherrypy.engine.start()
app = cherrypy.tree

ENVIRON = {
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "QUERY_STRING": "",
    "SERVER_NAME": "localhost", "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "localhost:8080",
    "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
    "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
}
status_seen = []

def start_response(status, headers, exc_info=None):
    status_seen.append(status)

def request():
    environ = dict(ENVIRON)
    environ["wsgi.input"] = io.BytesIO(b"")
    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return body

def run(n):
    for _ in range(n):
        request()

def profile(n):
    # Wrap the engine's publish: count per channel and time spent inside it.
    engine = cherrypy.engine
    original = engine.publish
    spent = [0]
    per_channel = {}
    clock = time.perf_counter_ns
    def timed_publish(channel, *args, **kwargs):
        started = clock()
        try:
            return original(channel, *args, **kwargs)
        finally:
            spent[0] += clock() - started
            per_channel[channel] = per_channel.get(channel, 0) + 1
    engine.publish = timed_publish
    try:
        run(n)
    finally:
        del engine.publish
    started = clock()
    run(n)
    plain_ns = clock() - started
    return {
        "publish_us_per_request": spent[0] / n / 1000,
        "plain_us_per_request": plain_ns / n / 1000,
        "publishes_per_request": {c: k / n for c, k in sorted(per_channel.items(), key=str)},
    }

body = request()
facts = {
    "variant": variant,
    "body": body.decode(),
    "status": status_seen[-1],
    "engine": type(cherrypy.engine).__module__ + "." + type(cherrypy.engine).__name__,
    "cherrypy": cherrypy.__version__,
}
if variant != "stock":
    facts["installed"] = fastbus.installed()
    facts["compiled"] = fastbus.COMPILED
print(json.dumps(facts), flush=True)
for line in sys.stdin:
    command, _, argument = line.partition(" ")
    if command == "quit":
        break
    if command == "run":
        run(int(argument))
        print("{}", flush=True)
    elif command == "profile":
        print(json.dumps(profile(int(argument))), flush=True)
cherrypy.engine.exit()
"""


class Child:
    """One variant's child process, answering commands over its pipes."""

    def __init__(self, variant: str) -> None:
        env = dict(os.environ)
        env.pop("FASTBUS_NO_EXTENSIONS", None)
        if variant == "pure":
            env["FASTBUS_NO_EXTENSIONS"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, variant],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )
        self.facts = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=STARTUP_TIMEOUT)
            raise RuntimeError(f"benchmark child exited with status {self.process.returncode}")
        return json.loads(line)

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        try:
            if self.process.stdin is not None:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            self.process.wait(timeout=STARTUP_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(
    scope="module",
    params=["stock", pytest.param("compiled", marks=pytest.mark.c_extension), "pure"],
)
def child(request: pytest.FixtureRequest) -> Iterator[Child]:
    served = Child(request.param)
    try:
        yield served
    finally:
        served.close()


def test_hello_world(benchmark: Any, child: Child) -> None:
    facts = child.facts
    variant = facts["variant"]
    # The variant really is what it claims, and the app really serves hello world.
    assert facts["status"] == "200 OK" and facts["body"] == "Hello world!"
    if variant == "stock":
        assert facts["engine"] == "cherrypy.process.wspbus.Bus"
    else:
        assert facts["installed"] is True
        assert facts["compiled"] is (variant == "compiled")

    child.ask(f"run {BATCH}")  # warm up
    profile = child.ask(f"profile {PROFILE_REQUESTS}")
    assert profile["publishes_per_request"] == {
        "acquire_thread": 1.0,
        "after_request": 1.0,
        "before_request": 1.0,
    }

    benchmark.group = "cherrypy-wsgi hello world (mean in ms = µs per request)"
    benchmark.extra_info.update(
        {
            "variant": variant,
            "engine": facts["engine"],
            "cherrypy": facts["cherrypy"],
            "requests_per_round": BATCH,
            "publish_us_per_request": round(profile["publish_us_per_request"], 3),
            "plain_us_per_request": round(profile["plain_us_per_request"], 2),
            "bus_share": round(profile["publish_us_per_request"] / profile["plain_us_per_request"], 4),
        }
    )
    benchmark.pedantic(child.ask, args=(f"run {BATCH}",), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    stats = benchmark.stats.stats if benchmark.stats is not None else None
    if stats is not None:
        benchmark.extra_info["us_per_request"] = round(stats.median / BATCH * 1e6, 2)
