"""``python -m fastbus.bench`` (or ``fastbus-bench``): fastbus against its peers and the floor.

It times publishing to 0 … 10,000 no-op subscribers with one positional argument, one keyword
argument and none, and subscribing then unsubscribing one more callback, for fastbus on each
core, ``cherrypy.process.wspbus``, blinker, psygnal, pyee, zope.event and the floor (a
compiled loop that only calls the callbacks and collects their results); then memory per
subscriber with tracemalloc. Contenders that are not importable are reported as skipped.
All contenders at one size are timed in the same rounds, interleaved (see
:mod:`fastbus.bench._measure`), and each says what it does not do that fastbus does.

``--async`` measures publishing from a coroutine instead: ``apublish`` with plain and with
``async def`` listeners beside ``publish``, blinker's ``send_async`` and pyee's asyncio emitter;
how it drives them and its JSON schema are in :mod:`fastbus.bench._async`.

JSON schema (``--json FILE``), version 1; ``ns`` figures are nanoseconds per call::

    {
      "schema": 1,
      "fastbus": "0.1.0",                 # fastbus.__version__
      "active_core": "compiled" | "pure", # what ``fastbus.Bus`` would use
      "machine": {"python", "implementation", "platform", "cpu", "cpu_count",
                  "loadavg": [[1, 5, 15 min] before, [...] after] (null where unknown)},
      "started": "2026-01-01T00:00:00+00:00", "seconds": 61.2,
      "settings": {"mode": "quick" | "full", "rounds": int, "batch_ns": int,
                   "statistic": "min", "sizes": [int, ...],
                   "shapes": {"positional" | "keyword" | "none": description}},
      "contenders": [{"name", "summary", "gaps": [str], "status": "ran" | "skipped",
                      "reason": str | null, "version": str | null,
                      "shapes": [shape, ...]}],       # the shapes it could run
      "publish": [{"contender", "shape", "subscribers", "ns", "median_ns", "loops",
                   "rounds"}],
      "subscribe_unsubscribe": [{"contender", "subscribers", "ns", "median_ns", "loops",
                                 "rounds"}],          # contenders with a registry only
      "memory": [{"contender", "subscribers", "bytes_per_subscriber"}],  # sizes above 0
      "ratios": [{"contender", "shape", "subscribers",
                  "vs_floor": float | null,      # ns ÷ the floor's ns
                  "wspbus_over": float | null}]  # wspbus ns ÷ ns: times faster than wspbus
    }

``--bridge`` measures something else: fastbus.bridge carrying messages from one process to
another through a redis-server the bench starts itself, beside raw redis-py doing the same job
(see :mod:`fastbus.bench._bridge` for the method). Its JSON, also schema version 1::

    {
      "schema": 1, "benchmark": "bridge",
      "fastbus", "active_core", "machine", "started", "seconds": as above,
      "sender_core": "compiled" | "pure",          # the sending child's
      "redis": {"server": "7.0.15", "redis_py": "8.1.0", "hiredis": "3.5.0" | null},
      "settings": {"mode": "quick" | "full", "rounds": int,
                   "messages": int,                # per burst
                   "paced": int, "rate": int,      # messages of the paced run, and per second
                   "payload": {...}},              # the JSON object every message carries
      "cases": [{"case", "summary", "status": "ran" | "skipped", "reason": str | null}],
      "results": [{"case", "transport": "pub/sub" | "streams", "via": "redis-py" | "bridge",
                   "batch": int | null,            # messages per round trip; null: coalesced
                   "rate": float | null,           # messages/s, first send to last arrival, best round
                   "rate_median": float | null, "rates": [float],
                   "send_rate": float | null,      # messages/s the sender handed over, best round
                   "burst_latency": {"p50_ns", "p99_ns", "max_ns", "count"},
                   "paced_latency": {...} | null,  # null: no paced run (pipelined cases)
                   "lost": int,                    # messages that never arrived
                   "bridge_stats": [{...}] | null}],  # the receiving bridge's stats() per round
      "targets": [{"target", "ratio": float | null, "bound", "sense": "at least" | "at most",
                   "met": bool | null}]            # reported, never asserted
    }
"""

from ._cli import main

__all__ = ("main",)
