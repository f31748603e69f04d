"""``python -m fastbus.bench --async``: publishing from a coroutine, against the async peers.

It times ``await bus.apublish('ch', 1)`` to 0 … 10,000 no-op listeners, once with plain
(``def``) listeners and once with ``async def`` ones, on each core, beside fastbus's own
``bus.publish('ch', 1)`` to the plain listeners (the baseline: apublish with sync listeners
should cost at most 1.3× publish), the floor's compiled loop, blinker's ``Signal.send_async``
and pyee's ``AsyncIOEventEmitter``. One positional argument throughout; the same distinct
callback objects for everyone. The two targets are reported, never asserted.

How each publish is driven, the same for every contender: each cell (contender × API ×
listener kind × subscribers) gets a coroutine compiled for its statement::

    async def loop(loops, ...):
        t0 = perf_counter_ns()
        for _ in repeat(None, loops):
            await apublish('ch', 1)      # or: publish('ch', 1), await send_async(1), ...
        return perf_counter_ns() - t0

run to its end by ``run_until_complete`` on one asyncio event loop that the whole run shares
(a new loop of the platform's default kind). The clock runs inside the coroutine, so starting
a batch on the loop is not counted; a publish that never suspends (fastbus's, and blinker's,
to no-op listeners) never touches the loop, and one that needs the loop pays for the loop
iterations it needs. The rounds, their interleaving and calibration are those of
:mod:`fastbus.bench._measure`.

pyee does not await: ``emit`` calls the sync listeners and schedules each coroutine as a task,
then returns. So that it does the same work as the others (every listener has finished when
the statement ends), it is timed as ``emit('ch', 1)`` followed by running the loop
(``await asyncio.sleep(0)``) until ``emitter.complete``; that is cheaper than its own
``await emitter.wait_for_complete()``, which builds an ``asyncio.wait`` on top.

The pytest-benchmark suite (``benchmarks/test_bench_async.py``) uses the same statements,
driven without a loop (see :func:`compile_pump`); pyee cannot run there.

JSON schema (``--async --json FILE``), version 1; ``ns`` figures are nanoseconds per publish::

    {
      "schema": 1, "benchmark": "async",
      "fastbus", "active_core", "machine", "started", "seconds": as in fastbus.bench's schema,
      "settings": {"mode", "rounds", "batch_ns", "statistic": "min", "sizes",
                   "argument": "one positional argument",
                   "listeners": {"sync" | "async": description},
                   "driver": str},                  # the paragraph above, in a sentence
      "contenders": [{"name", "summary", "gaps": [str], "status": "ran" | "skipped",
                      "reason": str | null, "version": str | null,
                      "apis": {"sync" | "async": [api, ...]}}],  # what it ran, per kind
      "publish": [{"contender", "api", "listeners": "sync" | "async", "subscribers",
                   "ns", "median_ns", "loops", "rounds"}],
      "ratios": [{"ratio": "apublish/publish" | "blinker/apublish" | "pyee/apublish",
                  "contender",                      # the fastbus core: fastbus-c or fastbus-py
                  "subscribers", "value": float | null,
                  "target": "≤ 1.3" | "≥ 3" | null, # where a target applies
                  "met": bool | null}]
    }

``apublish/publish`` is apublish's time with sync listeners over publish's, on the same core;
``blinker/apublish`` and ``pyee/apublish`` are the peer's time with async listeners over
apublish's (times faster than the peer).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import textwrap
import time
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Callable, ClassVar

from . import _measure, _report
from ._contenders import CHANNEL, CONTENDERS, Contender, Unavailable, make_callbacks

__all__ = (
    "KINDS",
    "Case",
    "compile_pump",
    "load",
    "main",
    "make_async_callbacks",
    "run",
)

KINDS = {"sync": "plain (def) no-op listeners", "async": "async def no-op listeners"}
ARGUMENT = "one positional argument"
DRIVER = (
    "each cell's statement runs in a coroutine compiled for it, timed inside the coroutine and "
    "run by run_until_complete on one asyncio event loop shared by all cells"
)
# The targets of issue 9, reported and never asserted.
APUBLISH_OVER_PUBLISH = 1.3  # at most, with sync listeners, at every size
BLINKER_OVER_APUBLISH = 3.0  # at least, with async listeners, at BLINKER_TARGET_SIZE
BLINKER_TARGET_SIZE = 10


def make_async_callbacks(count: int) -> list[Callable[..., Any]]:
    """Return *count* distinct ``async def`` no-op functions, the twins of make_callbacks'."""

    def make() -> Callable[..., Any]:
        async def noop(arg: Any = None, key: Any = None) -> None:
            return None

        return noop

    return [make() for _ in range(count)]


class Case:
    """One API of one contender, holding one kind of listeners, ready to be timed.

    *stmt* is the source of one publish as a coroutine runs it (``await`` included where the
    API is a coroutine function); *env* names what it uses. *needs_loop* says it only
    completes with an event loop running (pyee's scheduled tasks).
    """

    __slots__ = ("contender", "api", "kind", "stmt", "env", "needs_loop", "keep")

    def __init__(self, contender: str, api: str, kind: str, stmt: str, env: dict[str, Any],
                 keep: Any, needs_loop: bool = False) -> None:
        self.contender = contender
        self.api = api
        self.kind = kind
        self.stmt = stmt
        self.env = env
        self.needs_loop = needs_loop
        self.keep = keep  # whatever must stay alive while the statement runs


class _Side:
    """How one contender publishes from a coroutine: its APIs per listener kind."""

    summary = ""
    gaps: tuple[str, ...] = ()
    apis: ClassVar[dict[str, tuple[str, ...]]] = {}  # listener kind: the APIs it is timed with

    def load(self, contender: Contender) -> None:
        """Import what the async APIs need beyond *contender*'s own load."""

    def cases(self, contender: Contender, kind: str, callbacks: Sequence[Callable[..., Any]]) -> list[Case]:
        raise NotImplementedError


class _FloorSide(_Side):
    summary = "fastbus._floor.Floor.call, the publish benchmark's compiled loop: sync listeners only"
    gaps = ("calls and collects, nothing more; cannot await, so it has no async row",)
    apis: ClassVar[dict[str, tuple[str, ...]]] = {"sync": ("call",)}

    def cases(self, contender: Contender, kind: str, callbacks: Sequence[Callable[..., Any]]) -> list[Case]:
        built = contender.build(callbacks)
        return [Case(contender.name, "call", kind, "call(1)", built.env, built.keep)]


class _FastbusSide(_Side):
    gaps = ()
    apis: ClassVar[dict[str, tuple[str, ...]]] = {"sync": ("publish", "apublish"), "async": ("apublish",)}

    def __init__(self, core: str) -> None:
        self.summary = (
            f"fastbus.Bus on the {core} core: publish (sync listeners only) and apublish, which "
            "calls the listeners in priority order and awaits each awaitable before the next"
        )

    def cases(self, contender: Contender, kind: str, callbacks: Sequence[Callable[..., Any]]) -> list[Case]:
        bus = contender.build(callbacks).keep  # a declared channel, as in the publish benchmark
        channel = repr(CHANNEL)
        cases = []
        if kind == "sync":
            cases.append(Case(contender.name, "publish", kind, f"publish({channel}, 1)",
                              {"publish": bus.publish}, bus))
        cases.append(Case(contender.name, "apublish", kind, f"await apublish({channel}, 1)",
                          {"apublish": bus.apublish}, bus))
        return cases


def _blinker_sync_wrapper(receiver: Callable[..., Any]) -> Callable[..., Any]:
    # What send_async's _sync_wrapper must give: a coroutine function calling the receiver.
    async def call(*args: Any, **kwargs: Any) -> Any:
        return receiver(*args, **kwargs)

    return call


class _BlinkerSide(_Side):
    summary = "blinker.Signal.send_async(sender): awaits each receiver in turn"
    gaps = (
        "sync receivers only through its _sync_wrapper argument, here a function returning an "
        "async def that calls the receiver: a closure and a coroutine per receiver per send",
        "no priorities; stops at the first failing receiver; returns (receiver, result) pairs; "
        "receivers held strongly here (weak=False)",
    )
    apis: ClassVar[dict[str, tuple[str, ...]]] = {"sync": ("send_async",), "async": ("send_async",)}

    def cases(self, contender: Contender, kind: str, callbacks: Sequence[Callable[..., Any]]) -> list[Case]:
        signal = contender.module.Signal()  # type: ignore[attr-defined]
        for callback in callbacks:
            signal.connect(callback, weak=False)
        env: dict[str, Any] = {"send_async": signal.send_async}
        if kind == "sync":
            env["wrap"] = _blinker_sync_wrapper
            stmt = "await send_async(1, _sync_wrapper=wrap)"
        else:
            stmt = "await send_async(1)"
        return [Case(contender.name, "send_async", kind, stmt, env, signal)]


class _PyeeSide(_Side):
    summary = (
        "pyee.asyncio.AsyncIOEventEmitter.emit: calls the sync listeners and schedules each "
        "coroutine as a task, returning before they run"
    )
    gaps = (
        "does not await: timed as emit plus running the event loop until emitter.complete, so "
        "that every listener has finished, as with the others",
        "no priorities and no results; coroutines run after emit returns, after every sync "
        "listener; a failing listener's error goes to its 'error' event",
    )
    apis: ClassVar[dict[str, tuple[str, ...]]] = {"sync": ("emit",), "async": ("emit",)}

    def load(self, contender: Contender) -> None:
        self.module = contender._import("pyee.asyncio", "pyee without pyee.asyncio")

    def cases(self, contender: Contender, kind: str, callbacks: Sequence[Callable[..., Any]]) -> list[Case]:
        emitter = self.module.AsyncIOEventEmitter()
        for callback in callbacks:
            emitter.add_listener(CHANNEL, callback)
        stmt = f"emit({CHANNEL!r}, 1)\nwhile not emitter.complete:\n    await sleep(0)"
        env = {"emit": emitter.emit, "emitter": emitter, "sleep": asyncio.sleep}
        return [Case(contender.name, "emit", kind, stmt, env, emitter, needs_loop=True)]


SIDES: dict[str, Callable[[], _Side]] = {
    "floor": _FloorSide,
    "fastbus-c": lambda: _FastbusSide("compiled"),
    "fastbus-py": lambda: _FastbusSide("pure-Python"),
    "blinker": _BlinkerSide,
    "pyee": _PyeeSide,
}
"""The contenders that can take part, by their name in the publish benchmark."""

NO_ASYNC = {
    "wspbus": "no async publish: an async def listener's coroutine is returned, never awaited",
    "psygnal": "not comparable: it queues async callbacks to a global backend task "
    "(psygnal.set_async_backend), which awaits them after emit returns",
    "zope.event": "no async publish",
}
"""Why the other contenders do not take part."""


def load(names: Sequence[str]) -> tuple[list[tuple[Contender, _Side]], list[dict[str, Any]]]:
    """Load the chosen contenders that can publish from a coroutine; describe all of them."""
    loaded, described = [], []
    for name in names:
        contender = CONTENDERS[name]()
        entry: dict[str, Any] = dict(name=name, summary=contender.summary, gaps=[], version=None, apis={})
        make = SIDES.get(name)
        if make is None:
            entry.update(status="skipped", reason=NO_ASYNC[name])
            described.append(entry)
            continue
        side = make()
        entry.update(summary=side.summary, gaps=list(side.gaps))
        try:
            contender.load()
            side.load(contender)
        except Unavailable as exc:
            entry.update(status="skipped", reason=str(exc))
        else:
            loaded.append((contender, side))
            entry.update(status="ran", reason=None, version=contender.version(),
                         apis={kind: list(apis) for kind, apis in side.apis.items()})
        described.append(entry)
    return loaded, described


_LOOP = """\
async def loop(loops, {params}):
    t0 = perf_counter_ns()
    for _ in repeat(None, loops):
{stmt}
    return perf_counter_ns() - t0
"""

_PUMP = """\
async def pump({params}):
    while True:
{stmt}
        await suspend()
"""


def _source(template: str, stmt: str, env: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    params = ", ".join(f"{name}={name}" for name in env)
    return template.format(params=params, stmt=textwrap.indent(stmt, " " * 8)), dict(env)


def compile_async_loop(stmt: str, env: dict[str, Any]) -> Callable[[int], Any]:
    """Return ``loop(loops)``: a coroutine running *stmt* *loops* times, returning the ns."""
    source, namespace = _source(_LOOP, stmt, env)
    namespace.update(perf_counter_ns=time.perf_counter_ns, repeat=repeat)
    exec(source, namespace)
    return namespace["loop"]  # type: ignore[no-any-return]


class _Suspend:
    """Awaiting it suspends the coroutine once, back to whoever called ``send``."""

    __slots__ = ()

    def __await__(self) -> Any:
        yield None


def compile_pump(stmt: str, env: dict[str, Any]) -> Callable[[Any], Any]:
    """Return the ``send`` of a coroutine that runs *stmt* once per ``send(None)``.

    For harnesses that bring their own loop and no event loop (pytest-benchmark): each call
    resumes the coroutine, which runs the statement, awaiting as a coroutine does, then
    suspends at a bare ``yield``. No exception ends a call, so the driving costs the same,
    and little, whether the statement awaits or not. The statement must not need an event
    loop (see :attr:`Case.needs_loop`). Close the coroutine through the returned method's
    ``__self__`` when done.
    """
    source, namespace = _source(_PUMP, stmt, env)
    namespace.update(suspend=_Suspend)
    exec(source, namespace)
    coroutine = namespace["pump"]()
    coroutine.send(None)  # up to the first suspension: one publish has run
    return coroutine.send  # type: ignore[no-any-return]


class _AsyncCell(_measure._Cell):
    """A cell of :func:`fastbus.bench._measure.interleave` whose batch runs on an event loop."""

    __slots__ = ()

    def __init__(self, event_loop: asyncio.AbstractEventLoop, case: Case, **fields: Any) -> None:
        coroutine_loop = compile_async_loop(case.stmt, case.env)

        def timed(loops: int) -> int:
            return event_loop.run_until_complete(coroutine_loop(loops))  # type: ignore[no-any-return]

        self.loop = timed
        self.activate = None
        self.loops = 0
        self.samples = []
        self.fields = fields


def run(
    sides: Sequence[tuple[Contender, _Side]],
    sizes: Sequence[int],
    settings: _measure.Settings,
    progress: _measure.Progress | None = None,
) -> list[dict[str, Any]]:
    """Time every case of *sides* at each size; return the ``publish`` records of the schema."""
    progress = progress or _measure.Progress(0)
    callbacks = {"sync": make_callbacks(max(sizes)), "async": make_async_callbacks(max(sizes))}
    event_loop = asyncio.new_event_loop()
    cells: list[_measure._Cell] = []
    try:
        progress.step("subscribing")
        for kind in KINDS:
            for size in sizes:
                for contender, side in sides:
                    if kind not in side.apis:
                        continue
                    for case in side.cases(contender, kind, callbacks[kind][:size]):
                        fields = dict(contender=case.contender, api=case.api, listeners=kind, subscribers=size)
                        cells.append(_AsyncCell(event_loop, case, **fields))
        _measure.interleave(cells, settings, progress)
    finally:
        for contender, _ in sides:
            contender.restore()
        try:
            event_loop.run_until_complete(event_loop.shutdown_asyncgens())
        finally:
            event_loop.close()
        progress.close()
    return [cell.record() for cell in cells]


def steps(settings: _measure.Settings) -> int:
    """How many progress steps :func:`run` takes."""
    return 2 + settings.rounds


# -- the report ------------------------------------------------------------------------------


def _cost(records: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str, int], float]:
    return {(r["contender"], r["api"], r["listeners"], r["subscribers"]): r["ns"] for r in records}


def ratios(records: Sequence[dict[str, Any]], sizes: Sequence[int]) -> list[dict[str, Any]]:
    """The ratios the targets speak of, per fastbus core and size (see the schema)."""
    cost = _cost(records)
    cores = [name for name in ("fastbus-c", "fastbus-py") if any(key[0] == name for key in cost)]
    out = []

    def add(ratio: str, core: str, size: int, top: float | None, bottom: float | None,
            limit: float | None, at_most: bool) -> None:
        value = top / bottom if top is not None and bottom else None
        target = None if limit is None else f"{'≤' if at_most else '≥'} {limit:g}"
        met = None
        if value is not None and limit is not None:
            met = value <= limit if at_most else value >= limit
        out.append(dict(ratio=ratio, contender=core, subscribers=size, value=value, target=target, met=met))

    for core in cores:
        for size in sizes:
            apublish = cost.get((core, "apublish", "sync", size))
            add("apublish/publish", core, size, apublish, cost.get((core, "publish", "sync", size)),
                APUBLISH_OVER_PUBLISH, True)
        for peer, api in (("blinker", "send_async"), ("pyee", "emit")):
            if not any(key[0] == peer for key in cost):
                continue
            for size in sizes:
                limit = BLINKER_OVER_APUBLISH if peer == "blinker" and size == BLINKER_TARGET_SIZE else None
                add(f"{peer}/apublish", core, size, cost.get((peer, api, "async", size)),
                    cost.get((core, "apublish", "async", size)), limit, False)
    return out


def _rows(result: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    # (contender, api) in the order the contenders were chosen, then the order of their APIs.
    return [(c["name"], api) for c in result["contenders"] if c["status"] == "ran" for api in c["apis"].get(kind, ())]


def render(result: dict[str, Any]) -> str:
    """The human report: a cost table per listener kind, the ratio tables, the targets, notes."""
    settings = result["settings"]
    sizes: list[int] = settings["sizes"]
    head = ["subscribers"] + [f"{n:,}" for n in sizes]
    out = [
        f"Publishing from a coroutine, {ARGUMENT}: ns per publish, the minimum over "
        f"{settings['rounds']} interleaved rounds of batches of about {settings['batch_ns'] / 1e6:g} ms "
        f"each (medians in --json); {settings['driver']}."
    ]
    cost = _cost(result["publish"])
    for kind, words in KINDS.items():
        rows = [
            (f"{name} {api}", ["n/a" if cost.get((name, api, kind, n)) is None
                               else _report._ns(cost[name, api, kind, n]) for n in sizes])
            for name, api in _rows(result, kind)
        ]
        if rows:
            out.append(_report._table(f"With {words}, ns per publish", head, rows))

    by = {(r["ratio"], r["contender"], r["subscribers"]): r for r in result["ratios"]}
    titles = {
        "apublish/publish": f"apublish ÷ publish, sync listeners, same core (target ≤ {APUBLISH_OVER_PUBLISH:g})",
        "blinker/apublish": "Times faster than blinker's send_async, async listeners (blinker ns ÷ apublish "
        f"ns; target ≥ {BLINKER_OVER_APUBLISH:g} at {BLINKER_TARGET_SIZE})",
        "pyee/apublish": "Times faster than pyee's emit until complete, async listeners (pyee ns ÷ apublish ns)",
    }
    for ratio, title in titles.items():
        cores = sorted({r["contender"] for r in result["ratios"] if r["ratio"] == ratio})
        if not cores:
            continue
        rows = []
        for core in cores:
            values = [by.get((ratio, core, n), {}).get("value") for n in sizes]
            rows.append((core, ["n/a" if v is None else f"{v:.2f}" for v in values]))
        out.append(_report._table(title, head, rows))

    targets = ["Targets (reported, not asserted):"]
    for ratio, what in (
        ("apublish/publish", "apublish with sync listeners ÷ publish"),
        ("blinker/apublish", "blinker send_async ÷ apublish, async listeners"),
    ):
        for core in sorted({r["contender"] for r in result["ratios"] if r["ratio"] == ratio}):
            judged = [r for r in result["ratios"]
                      if r["ratio"] == ratio and r["contender"] == core and r["target"] and r["value"] is not None]
            if not judged:
                continue
            figures = ", ".join(f"{r['value']:.2f} at {r['subscribers']:,}" for r in judged)
            missed = [f"{r['subscribers']:,}" for r in judged if not r["met"]]
            verdict = "met" if not missed else f"not met at {', '.join(missed)}"
            targets.append(f"  {core}: {what} {judged[0]['target']}: {figures}: {verdict}")
    if len(targets) > 1:
        out.append("\n".join(targets))

    notes = ["What each contender does here, and what it does not do that fastbus does:"]
    for c in result["contenders"]:
        if c["status"] == "ran":
            version = f" {c['version']}" if c.get("version") else ""
            notes.append(f"  {c['name']}{version}: {c['summary']}")
            notes += [f"      - {gap}" for gap in c["gaps"]]
        else:
            notes.append(f"  {c['name']}: skipped: {c['reason']}")
    out.append("\n".join(notes))
    return "\n\n".join(out) + "\n"


def plot(result: dict[str, Any], path: str) -> None:
    """Save log-log charts of ns per publish against subscribers, one per listener kind.

    Zero subscribers has no place on a log axis, so that size is left out of the chart.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 4.8), layout="constrained")
    axes = figure.subplots(1, 2)
    every = dict.fromkeys(row for kind in KINDS for row in _rows(result, kind))
    colour = {row: f"C{i}" for i, row in enumerate(every)}  # a row has one colour in both panels
    for ax, (kind, words) in zip(axes, KINDS.items()):
        for row in _rows(result, kind):
            points = sorted(
                (r["subscribers"], r["ns"]) for r in result["publish"]
                if (r["contender"], r["api"]) == row and r["listeners"] == kind and r["subscribers"] > 0
            )
            if points:
                xs, ys = zip(*points)
                dashed = row[1] in ("publish", "call")  # the sync baselines
                ax.loglog(xs, ys, marker="o", markersize=4, label=" ".join(row), color=colour[row],
                          linestyle="--" if dashed else "-")
        ax.set_title(f"with {words}")
        ax.set_xlabel("subscribers")
        ax.set_ylabel("ns per publish")
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.12)
        ax.legend(fontsize="small")
    info = result["machine"]
    figure.suptitle(
        f"fastbus {result['fastbus']} · publishing from a coroutine · Python {info['python']} · "
        f"{info['cpu']} × {info['cpu_count']} · minimum of {result['settings']['rounds']} interleaved rounds",
        fontsize="medium",
    )
    figure.savefig(path, dpi=100)


# -- the command -----------------------------------------------------------------------------


def main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the async benchmark for the parsed *args* of ``python -m fastbus.bench --async``."""
    import fastbus

    stderr = sys.stderr
    sides, described = load(args.contenders)
    for entry in described:
        if entry["status"] == "skipped":
            print(f"{entry['name']}: skipped: {entry['reason']}", file=stderr)
    if not sides:
        print(f"{parser.prog}: error: none of the chosen contenders can publish from a coroutine here",
              file=stderr)
        return 1

    settings = _measure.QUICK if args.quick else _measure.FULL
    info = _report.machine()
    active = "compiled" if fastbus.COMPILED else "pure"
    print(
        f"fastbus {fastbus.__version__} (active core: {active}) on {info['implementation']} "
        f"{info['python']}, {info['platform']}, {info['cpu']} × {info['cpu_count']}"
    )
    load_before = _report.loadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    progress = _measure.Progress(steps(settings), stderr)
    try:
        records = run(sides, args.sizes, settings, progress)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=stderr)
        return 130
    result: dict[str, Any] = {
        "schema": 1,
        "benchmark": "async",
        "fastbus": fastbus.__version__,
        "active_core": active,
        "machine": dict(info, loadavg=[load_before, _report.loadavg()]),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - clock, 2),
        "settings": {
            "mode": settings.name,
            "rounds": settings.rounds,
            "batch_ns": settings.batch_ns,
            "statistic": "min",
            "sizes": args.sizes,
            "argument": ARGUMENT,
            "listeners": dict(KINDS),
            "driver": DRIVER,
        },
        "contenders": described,
        "publish": records,
        "ratios": ratios(records, args.sizes),
    }
    print(render(result), end="")
    print(f"({result['seconds']:.1f} s; load average before and after: {result['machine']['loadavg']})")

    status = 0
    if args.json:
        try:
            with open(args.json, "w") as file:
                json.dump(result, file, indent=1)
                file.write("\n")
        except OSError as exc:
            print(f"{parser.prog}: error: cannot write --json {args.json}: {exc}", file=stderr)
            status = 1
    if args.plot:
        try:
            plot(result, args.plot)
        except OSError as exc:
            print(f"{parser.prog}: error: cannot write --plot {args.plot}: {exc}", file=stderr)
            status = 1
    return status
