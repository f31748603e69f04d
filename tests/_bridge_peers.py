"""Real processes for the bridge tests: each peer is a child Python with its own bus and bridges.

The test drives a peer through a pipe: one JSON command a line on its stdin, one JSON answer a
line on its stdout (so every wait is for an answer, with a deadline, never a sleep). The child
runs this very file (``python _bridge_peers.py CONFIG``), on the core under test, and imports
nothing of pytest; the test side is :class:`Peers` and :class:`Peer`. A child whose stdin
closes exits its bus, so none outlives its test.

Commands (``peer.ask(op, ...)``): ``publish`` (channel, args, kwargs) answers ``ok`` or the
failures inside ChannelFailures; ``publish_range`` publishes ``(i,)`` for i in [start, stop),
in the background if asked (``join`` then waits for it); ``count``, ``last`` and ``received``
report what the recording listeners got (args, kwargs and ``current_message()``); ``stats``
and ``flush`` ask the bridges; ``start``, ``stop`` and ``exit`` drive the bus.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

DEADLINE = 30.0
"""Seconds a test waits for a peer's answer before it fails."""


# -- the child -----------------------------------------------------------------------------------


def child_main(config: dict[str, Any]) -> None:
    import fastbus
    from fastbus.bridge import RedisBridge, current_message

    def answer(value: Any) -> None:
        sys.stdout.write(json.dumps(value, default=repr) + "\n")  # a set recorded locally, say
        sys.stdout.flush()

    if fastbus.COMPILED is not (config["core"] == "compiled"):
        answer({"error": f"wrong core: COMPILED={fastbus.COMPILED}"})
        sys.exit(3)
    log = open(config["log"], "a", buffering=1)  # noqa: SIM115 - open for the child's life
    bus = fastbus.Bus()
    bus.subscribe("log", lambda msg, level=20: log.write(json.dumps([level, msg]) + "\n"))
    bridges = [RedisBridge(bus, spec["url"], spec["channels"], **spec.get("options", {})) for spec in config["bridges"]]
    for bridge in bridges:
        bridge.subscribe()
    lock = threading.Lock()
    received: dict[str, list[Any]] = {}

    hang_on = config.get("hang_on")
    stuck = threading.Event()

    def recorder(channel: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> None:
            info = current_message()
            with lock:
                received.setdefault(channel, []).append([list(args), kwargs, None if info is None else list(info)])
            if hang_on is not None and list(args) == hang_on:
                stuck.wait()  # a listener that never returns: the process is killed in it

        return record

    for channel in config.get("record", ()):
        bus.subscribe(channel, recorder(channel))

    def publish(channel: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            bus.publish(channel, *unmark(args), **unmark(kwargs))
        except fastbus.ChannelFailures as failures:
            return {"errors": [[type(exc).__name__, str(exc)] for exc in failures.get_instances()]}
        return {"ok": True}

    def publish_range(channel: str, start: int, stop: int, pace: int = 0) -> dict[str, Any]:
        # With *pace*, wait for Redis after every *pace* messages, so the stream flows for a
        # while rather than being queued at once; a flush that times out (the server is
        # gone) ends the pacing.
        for i in range(start, stop):
            result = publish(channel, [i], {})
            if "errors" in result:
                return {"published": i - start, "errors": result["errors"]}
            if pace and (i - start) % pace == pace - 1 and not all(bridge.flush(0.5) for bridge in bridges):
                pace = 0
        return {"published": stop - start}

    background: list[Any] = []
    bus.start()
    answer({"ready": True, "origins": [bridge.origin for bridge in bridges]})
    for line in sys.stdin:
        command = json.loads(line)
        op = command.pop("op")
        if op == "publish":
            answer(publish(command["channel"], command.get("args", []), command.get("kwargs", {})))
        elif op == "publish_range":
            if command.pop("background", False):
                worker = threading.Thread(target=lambda c=command: background.append(publish_range(**c)))
                worker.start()
                background.append(worker)
                answer({"started": True})
            else:
                answer(publish_range(**command))
        elif op == "join":
            worker = background.pop(0)
            worker.join()
            answer(background.pop(0))
        elif op == "count":
            with lock:
                answer(len(received.get(command["channel"], ())))
        elif op == "last":
            with lock:
                records = received.get(command["channel"])
                answer(records[-1] if records else None)
        elif op == "received":
            with lock:
                answer(received.get(command["channel"], []))
        elif op == "stats":
            answer([bridge.stats() for bridge in bridges])
        elif op == "flush":
            answer([bridge.flush(command["timeout"]) for bridge in bridges])
        elif op in ("start", "stop"):
            getattr(bus, op)()
            answer({"ok": True})
        elif op == "exit":
            bus.exit()
            answer({"ok": True})
            return
        else:
            answer({"error": f"unknown op {op!r}"})
    bus.exit()  # the test is gone


def unmark(value: Any) -> Any:
    """What JSON cannot carry to the child, made from markers: ``{"__set__": [...]}`` a set,
    ``{"__nan__": true}`` NaN, ``{"__int_key__": v}`` the dict ``{1: v}``."""
    if isinstance(value, list):
        return [unmark(item) for item in value]
    if isinstance(value, dict):
        if "__set__" in value:
            return set(value["__set__"])
        if "__nan__" in value:
            return float("nan")
        if "__int_key__" in value:
            return {1: unmark(value["__int_key__"])}
        return {key: unmark(item) for key, item in value.items()}
    return value


# -- the test side --------------------------------------------------------------------------------


class Peer:
    """One child process with a bus and its bridges; ``ask`` sends a command and returns the answer."""

    def __init__(self, peers: Peers, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.log_path = peers.directory / f"{name}.log"
        self.stderr_path = peers.directory / f"{name}.stderr"
        config = dict(config, core=peers.core_name, log=str(self.log_path))
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [peers.python, __file__, json.dumps(config)],
                env=peers.env, cwd=peers.directory, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
            )
        self._answers: queue.Queue[Any] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ready: Any = None

    def wait_ready(self) -> Any:
        """The peer's first line once its bus has started (None if it ended instead)."""
        self.ready = self._next("start")
        return self.ready

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(json.loads(line))
        self._answers.put(EOFError)

    def _next(self, what: str) -> Any:
        import pytest

        try:
            answer = self._answers.get(timeout=DEADLINE)
        except queue.Empty:
            pytest.fail(f"peer {self.name}: no answer to {what} within {DEADLINE} s; stderr: {self.stderr()[-2000:]}")
        if answer is EOFError:
            self._answers.put(EOFError)  # every later question finds the end too
            return None
        return answer

    def ask(self, op: str, **arguments: Any) -> Any:
        """Send one command and return its answer; fail the test if the peer died or hangs."""
        import pytest

        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(dict(arguments, op=op)) + "\n").encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        answer = self._next(op)
        if answer is None:
            pytest.fail(f"peer {self.name} ended (code {self.process.wait(DEADLINE)}) before answering {op}; "
                        f"stderr: {self.stderr()[-2000:]}")
        return answer

    def wait_exit(self) -> int:
        """Wait for the process to end by itself and return its exit code."""
        return self.process.wait(timeout=DEADLINE)

    def stats(self, index: int = 0) -> dict[str, Any]:
        return self.ask("stats")[index]  # type: ignore[no-any-return]

    def logs(self) -> list[tuple[int, str]]:
        if not self.log_path.exists():
            return []
        return [tuple(json.loads(line)) for line in self.log_path.read_text().splitlines()]  # type: ignore[misc]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no stop, no exit, no cursor saved; the way a crash ends a process."""
        self.process.kill()
        self.process.wait(timeout=DEADLINE)

    def pause(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def begin_close(self) -> None:
        """Ask the peer to end: its bus exits when its stdin closes."""
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGCONT)  # a paused peer could not end
            except OSError:
                pass
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def close(self) -> None:
        """End the peer, killing it if it does not end by itself in time."""
        self.begin_close()
        try:
            self.process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=DEADLINE)
        self._reader.join(timeout=DEADLINE)
        if self.process.stdout is not None:
            self.process.stdout.close()


class Peers:
    """Starts peers for one test on the core under test, and ends every one at its end."""

    def __init__(self, directory: Path, python: str, core_name: str, env: dict[str, str]) -> None:
        self.directory, self.python, self.core_name, self.env = directory, python, core_name, env
        self.started: list[Peer] = []

    def __call__(
        self,
        bridges: list[dict[str, Any]],
        record: list[str] = (),  # type: ignore[assignment]
        name: str | None = None,
        hang_on: list[Any] | None = None,
    ) -> Peer:
        """Start a peer with these bridges (url, channels, options) and recording listeners.

        *hang_on*: the recording listener blocks for good on a message with these arguments.
        """
        config = {"bridges": bridges, "record": list(record), "hang_on": hang_on}
        peer = Peer(self, name or f"peer{len(self.started)}", config)
        self.started.append(peer)
        peer.wait_ready()
        return peer

    def close_all(self) -> None:
        for peer in self.started:  # all at once: each takes a moment to stop its bridges
            peer.begin_close()
        for peer in self.started:
            peer.close()


if __name__ == "__main__":
    child_main(json.loads(sys.argv[1]))
