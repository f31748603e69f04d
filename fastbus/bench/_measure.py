"""Timing and memory: interleaved rounds of calibrated batches, and tracemalloc.

Every contender at one subscriber count and call shape is timed in the same round, one batch
each, in an order rotated from round to round; so a neighbour's burst of CPU on this shared
machine lands on all of them instead of on whichever happened to run then. Each batch runs
the contender's statement ``loops`` times in a loop compiled for it (so the loop costs the same
for everyone and no wrapper sits between the loop and the API), with the collector off.
A cell's figure is the minimum over rounds of the per-call time (least disturbed by others);
the median is kept too.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from itertools import repeat
from typing import Any, Callable, Sequence, TextIO

from ._contenders import SHAPES, Built, Contender, make_callbacks

__all__ = ("FULL", "QUICK", "Progress", "Settings", "run")


class Settings:
    """How hard to measure: *rounds* interleaved rounds of batches lasting about *batch_ns*."""

    __slots__ = ("name", "rounds", "batch_ns")

    def __init__(self, name: str, rounds: int, batch_ns: int) -> None:
        self.name = name
        self.rounds = rounds
        self.batch_ns = batch_ns


QUICK = Settings("quick", rounds=3, batch_ns=1_000_000)
FULL = Settings("full", rounds=20, batch_ns=15_000_000)

_LOOP = """\
def loop(loops, {params}):
    t0 = perf_counter_ns()
    for _ in repeat(None, loops):
        {stmt}
    return perf_counter_ns() - t0
"""


def compile_loop(stmt: str, env: dict[str, Any]) -> Callable[[int], int]:
    """Return ``loop(loops) -> ns`` running *stmt* *loops* times with *env*'s names as locals."""
    namespace = dict(env, perf_counter_ns=time.perf_counter_ns, repeat=repeat)
    params = ", ".join(f"{name}={name}" for name in env)
    exec(_LOOP.format(params=params, stmt=stmt), namespace)
    return namespace["loop"]  # type: ignore[no-any-return]


def compile_function(stmt: str, env: dict[str, Any]) -> Callable[[], Any]:
    """Return ``run()`` executing *stmt* once, for harnesses that bring their own loop."""
    namespace = dict(env)
    params = ", ".join(f"{name}={name}" for name in env)
    exec(f"def run({params}):\n    {stmt}\n", namespace)
    return namespace["run"]  # type: ignore[no-any-return]


def calibrate(loop: Callable[[int], int], batch_ns: int) -> int:
    """Return how many loops make a batch of about *batch_ns* (the first runs warm it up)."""
    loops = 1
    while True:
        elapsed = loop(loops)
        if elapsed >= batch_ns // 8 or loops >= 1 << 24:
            break
        loops *= 8 if elapsed < batch_ns // 64 else 2
    return max(1, round(loops * batch_ns / max(elapsed, 1)))


class _Cell:
    __slots__ = ("name", "loop", "activate", "loops", "samples")

    def __init__(
        self, name: str, loop: Callable[[int], int], activate: Callable[[], None] | None
    ) -> None:
        self.name = name
        self.loop = loop
        self.activate = activate
        self.loops = 0
        self.samples: list[float] = []


def interleave(cells: list[_Cell], settings: Settings) -> None:
    """Calibrate each cell, then time one batch of each per round, rotating the order."""
    if not cells:
        return
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for cell in cells:
            if cell.activate is not None:
                cell.activate()
            cell.loops = calibrate(cell.loop, settings.batch_ns)
        for round_ in range(settings.rounds):
            shift = round_ % len(cells)
            for cell in cells[shift:] + cells[:shift]:
                if cell.activate is not None:
                    cell.activate()
                cell.samples.append(cell.loop(cell.loops) / cell.loops)
    finally:
        if was_enabled:
            gc.enable()


def _record(cell: _Cell, **fields: Any) -> dict[str, Any]:
    return dict(
        contender=cell.name,
        **fields,
        ns=min(cell.samples),
        median_ns=statistics.median(cell.samples),
        loops=cell.loops,
        rounds=len(cell.samples),
    )


def _traced_bytes(build: Callable[[], Built]) -> int:
    # What building keeps allocated, as tracemalloc sees it (Python's allocators only).
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del built
    return after - before


class Progress:
    """A one-line progress indicator on *stream*: rewritten in place on a terminal."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def step(self, label: str) -> None:
        if self.stream is None:
            return
        self.done += 1
        elapsed = time.monotonic() - self.started
        line = f"[{self.done:>3}/{self.total}] {elapsed:5.1f}s  {label}"
        if self.tty:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _subscribers(count: int) -> str:
    return f"{count:,} subscriber{'' if count == 1 else 's'}"


def run(
    contenders: Sequence[Contender],
    sizes: Sequence[int],
    settings: Settings,
    progress: Progress | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Measure publish, subscribe+unsubscribe and memory for *contenders* at each size.

    Returns the ``publish``, ``subscribe_unsubscribe`` and ``memory`` record lists of the
    JSON schema (see :mod:`fastbus.bench`).
    """
    progress = progress or Progress(0)
    callbacks = make_callbacks(max(sizes))
    (extra,) = make_callbacks(1)
    publish: list[dict[str, Any]] = []
    churn: list[dict[str, Any]] = []
    memory: list[dict[str, Any]] = []
    try:
        for size in sizes:
            built = {c.name: c.build(callbacks[:size]) for c in contenders}
            for shape in SHAPES:
                progress.step(f"publish, {_subscribers(size)}, {SHAPES[shape][1]}")
                cells = [
                    _Cell(name, compile_loop(b.publish[shape], b.env), b.activate)
                    for name, b in built.items()
                    if shape in b.publish
                ]
                interleave(cells, settings)
                publish += [_record(cell, shape=shape, subscribers=size) for cell in cells]
            progress.step(f"subscribe+unsubscribe, {_subscribers(size)}")
            cells = [
                _Cell(name, compile_loop(b.churn, dict(b.env, extra=extra)), b.activate)
                for name, b in built.items()
                if b.churn is not None
            ]
            interleave(cells, settings)
            churn += [_record(cell, subscribers=size) for cell in cells]
            del built, cells
        # Memory last: tracemalloc slows every allocation, so it must not overlap the timings.
        for contender in contenders:
            progress.step(f"memory, {contender.name}")
            empty = _traced_bytes(lambda: contender.build(()))
            for size in sizes:
                if size:
                    full = _traced_bytes(lambda: contender.build(callbacks[:size]))
                    per = (full - empty) / size
                    memory.append(
                        dict(contender=contender.name, subscribers=size, bytes_per_subscriber=per)
                    )
    finally:
        for contender in contenders:
            contender.restore()
        progress.close()
    return {"publish": publish, "subscribe_unsubscribe": churn, "memory": memory}


def steps(contenders: Sequence[Contender], sizes: Sequence[int]) -> int:
    """How many progress steps :func:`run` takes."""
    return len(sizes) * (len(SHAPES) + 1) + len(contenders)

