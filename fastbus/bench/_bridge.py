"""``python -m fastbus.bench --bridge``: fastbus.bridge end to end, against raw redis-py.

Two processes and a redis-server that the benchmark starts itself (:mod:`._server`): this
process receives, and a child (this module run as ``python -m fastbus.bench._bridge``) sends.
Each *case* moves the same JSON messages from the child to this process:

- ``redis-py PUBLISH``: one ``PUBLISH`` per message, received with redis-py's ``PubSub``;
- ``redis-py PUBLISH ×100``: the same, 100 ``PUBLISH`` commands per pipeline;
- ``redis-py XADD`` and ``redis-py XADD ×100``: a Redis stream, one entry per message
  (``XADD``, one per round trip or 100 per pipeline), read with ``XREAD BLOCK``;
- ``bridge pub/sub`` and ``bridge durable``: a :class:`fastbus.Bus` in each process joined by
  a :class:`fastbus.bridge.RedisBridge` (``durable=False`` then ``True``); the child publishes
  on its bus and a listener on this process's bus receives.

A message is the arguments ``(phase, seq, sent_ns, payload)``, where *payload* is a small
JSON object like a cache invalidation and *sent_ns* is ``time.monotonic_ns()`` just before
the publish (CLOCK_MONOTONIC is one clock for every process of a machine, so the receiver's
``monotonic_ns()`` minus it is the one-way latency, queueing, encoding and decoding
included). The raw cases send ``json.dumps([phase, seq, sent_ns, payload])``.

Each case runs two phases per round, after probe messages have shown that both ends are
connected: a *burst* of ``messages`` sent as fast as the sender can (messages per second
from the first send to the last arrival; latencies then include queueing), and a *paced*
run of ``paced`` messages at ``rate`` per second, whose latencies are the transport's at a
low rate. The pipelined raw cases have no paced run: at a low rate a batch of 100 waits for
its hundredth message, and that wait, not the transport, would be measured. Cases run in a
fresh order each round, on a fresh key or channel each time, so no case inherits another's
backlog; the best rate over the rounds is reported beside the median, and the latency
percentiles pool every round's messages.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from typing import IO, Any

from ._contenders import Unavailable, pip_hint
from ._measure import Progress

__all__ = ("CASES", "FULL", "QUICK", "Case", "Settings", "run")

PAYLOAD = {"op": "invalidate", "key": "product:1234", "fields": ["price", "stock"], "by": "worker-8081"}
CHANNEL = "bench"
PROBE = -1  # the phase number of the messages that show both ends are connected
PROBE_WAIT = 0.05  # seconds to wait for a probe to arrive before sending another
DEADLINE = 120.0  # seconds a phase may take before the messages still missing count as lost
REPLY_DEADLINE = 180.0  # seconds the child may take to answer a command
POLL_MS = 50  # how long a raw receiver blocks before looking whether it is to stop


class Settings:
    """How much to send: *rounds* of a burst of *messages*, then *paced* at *rate* per second."""

    __slots__ = ("name", "rounds", "messages", "paced", "rate")

    def __init__(self, name: str, rounds: int, messages: int, paced: int, rate: int) -> None:
        self.name = name
        self.rounds = rounds
        self.messages = messages
        self.paced = paced
        self.rate = rate


QUICK = Settings("quick", rounds=1, messages=3_000, paced=200, rate=500)
FULL = Settings("full", rounds=3, messages=30_000, paced=1_000, rate=500)


def _redis() -> Any:
    try:
        return importlib.import_module("redis")
    except ImportError as exc:
        raise Unavailable(f"redis-py is not importable ({exc}); {pip_hint('redis')}") from None


def _bridge_module() -> Any:
    try:
        return importlib.import_module("fastbus.bridge")
    except ImportError as exc:
        raise Unavailable(f"fastbus.bridge is not importable ({exc})") from None


class Case:
    """One way of carrying the messages; the sending half runs in the child (see :func:`child`)."""

    def __init__(self, name: str, transport: str, via: str, batch: int | None, summary: str) -> None:
        self.name = name
        self.transport = transport  # "pub/sub" or "streams"
        self.via = via  # "redis-py" or "bridge"
        self.batch = batch  # messages per round trip; None: the bridge decides (it coalesces)
        self.summary = summary

    @property
    def paced(self) -> bool:
        """Whether a paced run means anything (see the module docstring)."""
        return self.batch in (None, 1)

    def load(self) -> None:
        """Raise :class:`Unavailable` if this case cannot run here."""
        _redis()
        if self.via == "bridge":
            _bridge_module()


CASES = {
    case.name: case
    for case in (
        Case("redis-py PUBLISH", "pub/sub", "redis-py", 1, "one PUBLISH per message; PubSub.get_message"),
        Case("redis-py PUBLISH ×100", "pub/sub", "redis-py", 100,
             "PUBLISH in pipelines of 100 (transaction=False); PubSub.get_message"),
        Case("redis-py XADD", "streams", "redis-py", 1, "one XADD per message; XREAD BLOCK"),
        Case("redis-py XADD ×100", "streams", "redis-py", 100, "XADD in pipelines of 100; XREAD BLOCK"),
        Case("bridge pub/sub", "pub/sub", "bridge", None,
             "fastbus.bridge.RedisBridge(durable=False): bus.publish in one process, a listener in the other"),
        Case("bridge durable", "streams", "bridge", None,
             "fastbus.bridge.RedisBridge(durable=True): bus.publish in one process, a listener in the other"),
    )
}


def _percentile(ordered: Sequence[int], fraction: float) -> int:
    # Nearest rank: a latency that a message really had, never an interpolation.
    rank = math.ceil(fraction * len(ordered))
    return ordered[min(len(ordered), max(rank, 1)) - 1]


def latency_summary(samples: Sequence[int]) -> dict[str, Any]:
    """p50, p99 and the maximum of *samples* (ns), and how many there were."""
    if not samples:
        return {"p50_ns": None, "p99_ns": None, "max_ns": None, "count": 0}
    ordered = sorted(samples)
    return {
        "p50_ns": _percentile(ordered, 0.50),
        "p99_ns": _percentile(ordered, 0.99),
        "max_ns": ordered[-1],
        "count": len(ordered),
    }


# -- the receiving half (this process) -------------------------------------------------------


class _Arrivals:
    """What a receiver hands each message to: the latencies of the current phase."""

    def __init__(self) -> None:
        self.phase = PROBE
        self.expected = 0
        self.latencies: list[int] = []
        self.last_ns = 0
        self.done = threading.Event()
        self.probed = threading.Event()

    def expect(self, phase: int, count: int) -> None:
        self.latencies = []
        self.expected = count
        self.last_ns = 0
        self.done.clear()
        self.phase = phase

    def arrive(self, phase: int, seq: int, sent_ns: int, payload: Any) -> None:
        now = time.monotonic_ns()
        if phase == PROBE:
            self.probed.set()
        elif phase == self.phase:
            self.latencies.append(now - sent_ns)
            if len(self.latencies) >= self.expected:
                self.last_ns = now
                self.done.set()


class _RawReceiver:
    """redis-py reading a channel (SUBSCRIBE) or a stream (XREAD BLOCK) on its own thread."""

    def __init__(self, case: Case, url: str, key: str, arrivals: _Arrivals) -> None:
        self.streams = case.transport == "streams"
        self.key = key
        self.arrivals = arrivals
        self.client = _redis().Redis.from_url(url)
        self.stopping = False
        if not self.streams:
            self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            self.pubsub.subscribe(key)
        self.thread = threading.Thread(target=self._run, name="bench-receiver", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        arrive = self.arrivals.arrive
        loads = json.loads
        if self.streams:
            last = "0-0"  # the key is new: everything on it is ours
            while not self.stopping:
                for _key, entries in self.client.xread({self.key: last}, count=1000, block=POLL_MS) or ():
                    for _id, fields in entries:
                        arrive(*loads(fields[b"m"]))
                    last = entries[-1][0]
        else:
            get = self.pubsub.get_message
            while not self.stopping:
                message = get(timeout=POLL_MS / 1000)
                if message is not None:
                    arrive(*loads(message["data"]))

    def close(self) -> None:
        self.stopping = True
        self.thread.join(10)
        if not self.streams:
            self.pubsub.close()
        else:
            self.client.delete(self.key)
        self.client.close()


class _BridgeReceiver:
    """A bus with a bridge and one listener, as an application would receive."""

    def __init__(self, case: Case, url: str, key: str, arrivals: _Arrivals) -> None:
        import fastbus

        self.bus = fastbus.Bus()
        self.bus.subscribe(CHANNEL, arrivals.arrive)
        self.bridge = _bridge_module().RedisBridge(
            self.bus, url, channels=(CHANNEL,), durable=case.transport == "streams",
            name=f"{key}-receiver", prefix=key,
        )
        self.bridge.subscribe()
        self.bus.start()

    def stats(self) -> dict[str, Any]:
        return dict(self.bridge.stats())

    def close(self) -> None:
        self.bus.exit()


# -- the sending half (the child) ------------------------------------------------------------


class _RawSender:
    def __init__(self, case: Case, url: str, key: str) -> None:
        self.streams = case.transport == "streams"
        self.batch = case.batch or 1
        self.key = key
        self.client = _redis().Redis.from_url(url)
        self.client.ping()

    def send(self, phase: int, count: int, rate: float | None) -> None:
        key, batch, dumps, clock = self.key, self.batch, json.dumps, time.monotonic_ns
        target = self.client.pipeline(transaction=False) if batch > 1 else self.client
        command = target.xadd if self.streams else target.publish
        pace = _Pace(rate)
        for seq in range(count):
            pace.wait(seq)
            message = dumps([phase, seq, clock(), PAYLOAD])
            command(key, {"m": message}) if self.streams else command(key, message)
            if batch > 1 and (seq + 1) % batch == 0:
                target.execute()
        if batch > 1:
            target.execute()

    def close(self) -> None:
        self.client.close()


class _BridgeSender:
    def __init__(self, case: Case, url: str, key: str) -> None:
        import fastbus

        self.bus = fastbus.Bus()
        self.bridge = _bridge_module().RedisBridge(
            self.bus, url, channels=(CHANNEL,), durable=case.transport == "streams",
            name=f"{key}-sender", prefix=key,
        )
        self.bridge.subscribe()
        self.bus.start()

    def send(self, phase: int, count: int, rate: float | None) -> None:
        publish, clock = self.bus.publish, time.monotonic_ns
        pace = _Pace(rate)
        for seq in range(count):
            pace.wait(seq)
            publish(CHANNEL, phase, seq, clock(), PAYLOAD)
        self.bridge.flush(DEADLINE)

    def close(self) -> None:
        self.bus.exit()


class _Pace:
    """Sleeps so that message *seq* leaves no earlier than ``seq / rate`` after the first."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.start = time.monotonic()

    def wait(self, seq: int) -> None:
        if self.interval:
            delay = self.start + seq * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def child(stdin: IO[str], stdout: IO[str]) -> int:
    """The sending process: one JSON command a line on *stdin*, one JSON answer a line back.

    Commands: ``open`` (case, url, key), ``send`` (phase, count, rate), ``close``, ``quit``.
    A failure is answered ``{"error": ...}`` and the child carries on.
    """
    import fastbus

    def answer(**fields: Any) -> None:
        stdout.write(json.dumps(fields) + "\n")
        stdout.flush()

    answer(ready=True, core="compiled" if fastbus.COMPILED else "pure", pid=os.getpid())
    sender: Any = None
    for line in stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "quit":
                break
            if op == "open":
                case = CASES[command["case"]]
                opener = _BridgeSender if case.via == "bridge" else _RawSender
                sender = opener(case, command["url"], command["key"])
                answer(ok=True)
            elif op == "send":
                first = time.monotonic_ns()
                sender.send(command["phase"], command["count"], command["rate"])
                answer(first_ns=first, sent_ns=time.monotonic_ns())
            elif op == "close":
                if sender is not None:
                    sender.close()
                sender = None
                answer(ok=True)
            else:
                answer(error=f"unknown command {op!r}")
        except Exception as exc:  # reported to the parent, which stops the run with it
            answer(error="".join(traceback.format_exception_only(type(exc), exc)).strip())
    if sender is not None:
        sender.close()
    return 0


class _Child:
    """The sending process, seen from here."""

    def __init__(self) -> None:
        import fastbus

        # The child must import the fastbus that this process did (a checkout, say).
        home = os.path.dirname(os.path.dirname(os.path.abspath(fastbus.__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastbus.bench._bridge"], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
        )
        self.hello = self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the sending process ended ({self.proc.wait(REPLY_DEADLINE)})")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the sending process failed: {reply['error']}")
        return reply

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(dict(fields, op=op)) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- the run -------------------------------------------------------------------------------


def _phase(child: _Child, arrivals: _Arrivals, phase: int, count: int, rate: float | None) -> dict[str, Any]:
    arrivals.expect(phase, count)
    sent = child.ask("send", phase=phase, count=count, rate=rate)
    arrived = arrivals.done.wait(DEADLINE)
    latencies = list(arrivals.latencies)
    got = len(latencies)
    end = arrivals.last_ns if arrived else time.monotonic_ns()
    seconds = (end - sent["first_ns"]) / 1e9
    sending = (sent["sent_ns"] - sent["first_ns"]) / 1e9
    return {
        "rate": got / seconds if arrived and seconds > 0 else None,
        # How fast the sender handed the messages over (for the bridge: until Redis had them
        # all); beside the rate, it tells which end held the run back.
        "send_rate": count / sending if sending > 0 else None,
        "latencies": latencies,
        "lost": max(0, count - got),
    }


def _one(case: Case, url: str, key: str, settings: Settings, child: _Child, phase: int) -> dict[str, Any]:
    """One round of *case*: open both ends, probe until connected, burst, paced run, close."""
    arrivals = _Arrivals()
    receiver: Any = (_BridgeReceiver if case.via == "bridge" else _RawReceiver)(case, url, key, arrivals)
    try:
        child.ask("open", case=case.name, url=url, key=key)
        try:
            end = time.monotonic() + DEADLINE
            while not arrivals.probed.is_set():
                if time.monotonic() > end:
                    raise RuntimeError(f"{case.name}: no probe message arrived within {DEADLINE:g} s")
                child.ask("send", phase=PROBE, count=1, rate=None)
                arrivals.probed.wait(PROBE_WAIT)
            burst = _phase(child, arrivals, phase, settings.messages, None)
            paced = _phase(child, arrivals, phase + 1, settings.paced, settings.rate) if case.paced else None
        finally:
            child.ask("close")
        stats = receiver.stats() if isinstance(receiver, _BridgeReceiver) else None
    finally:
        receiver.close()
    return {"burst": burst, "paced": paced, "stats": stats}


def run(
    cases: Sequence[Case], url: str, settings: Settings, progress: Progress | None = None
) -> dict[str, Any]:
    """Run every case for ``settings.rounds`` rounds against the server at *url*.

    Returns ``{"sender": {"core", "pid"}, "results": [...]}``, one result per case in the
    order of *cases* (see the JSON schema in :mod:`fastbus.bench`).
    """
    progress = progress or Progress(0)
    rounds: dict[str, list[dict[str, Any]]] = {case.name: [] for case in cases}
    child = _Child()
    try:
        order = list(cases)
        shuffle = random.Random(0).shuffle
        phase = 0
        for round_ in range(settings.rounds):
            shuffle(order)
            for case in order:
                progress.step(f"round {round_ + 1} of {settings.rounds}: {case.name}")
                key = f"fastbus-bench-{os.getpid()}-{phase}"
                rounds[case.name].append(_one(case, url, key, settings, child, phase))
                phase += 2
        sender = {"core": child.hello.get("core"), "pid": child.hello.get("pid")}
    finally:
        child.close()
        progress.close()
    results = []
    for case in cases:
        done = rounds[case.name]
        rates = [r["burst"]["rate"] for r in done if r["burst"]["rate"] is not None]
        send_rates = [r["burst"]["send_rate"] for r in done if r["burst"]["send_rate"] is not None]
        paced = [r["paced"] for r in done if r["paced"] is not None]
        results.append({
            "case": case.name,
            "transport": case.transport,
            "via": case.via,
            "batch": case.batch,
            "rate": max(rates) if rates else None,
            "rate_median": statistics.median(rates) if rates else None,
            "rates": rates,
            "send_rate": max(send_rates) if send_rates else None,
            "burst_latency": latency_summary([ns for r in done for ns in r["burst"]["latencies"]]),
            "paced_latency": latency_summary([ns for p in paced for ns in p["latencies"]]) if paced else None,
            "lost": sum(r["burst"]["lost"] + (r["paced"]["lost"] if r["paced"] else 0) for r in done),
            "bridge_stats": [r["stats"] for r in done] if case.via == "bridge" else None,
        })
    return {"sender": sender, "results": results}


def steps(cases: Sequence[Case], settings: Settings) -> int:
    """How many progress steps :func:`run` takes."""
    return len(cases) * settings.rounds


TARGETS = (
    # (what, numerator case and field, denominator case and field, bound, "at least"/"at most")
    ("bridge pub/sub rate ÷ redis-py PUBLISH ×100 rate", ("bridge pub/sub", "rate"),
     ("redis-py PUBLISH ×100", "rate"), 2.0, "at least"),
    ("bridge pub/sub p50 ÷ redis-py PUBLISH p50, paced", ("bridge pub/sub", "paced_p50"),
     ("redis-py PUBLISH", "paced_p50"), 1.5, "at most"),
    ("bridge durable rate ÷ bridge pub/sub rate", ("bridge durable", "rate"),
     ("bridge pub/sub", "rate"), 0.5, "at least"),
)


def targets(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets against this run's figures: reported, never asserted."""
    by_case = {r["case"]: r for r in results}

    def value(case: str, field: str) -> float | None:
        result = by_case.get(case)
        if result is None:
            return None
        if field == "paced_p50":
            paced = result["paced_latency"]
            return paced["p50_ns"] if paced else None
        return result[field]  # type: ignore[no-any-return]

    out = []
    for what, (top_case, top_field), (bottom_case, bottom_field), bound, sense in TARGETS:
        top, bottom = value(top_case, top_field), value(bottom_case, bottom_field)
        ratio = top / bottom if top is not None and bottom else None
        met = None if ratio is None else (ratio >= bound if sense == "at least" else ratio <= bound)
        out.append({"target": what, "ratio": ratio, "bound": bound, "sense": sense, "met": met})
    return out


def versions(server: str) -> dict[str, Any]:
    """redis-server's, redis-py's and hiredis's versions (None where absent)."""
    redis = _redis()
    try:
        hiredis: str | None = importlib.import_module("hiredis").__version__
    except ImportError:
        hiredis = None
    return {"server": server, "redis_py": redis.__version__, "hiredis": hiredis}


if __name__ == "__main__":
    sys.exit(child(sys.stdin, sys.stdout))
