"""Timing and memory: interleaved rounds of calibrated batches, and tracemalloc.

Every cell (contender × subscriber count × call shape, and each subscribe+unsubscribe) is
timed once per round, in an order shuffled afresh each round; so a neighbour's burst of CPU
on this shared machine, or a slow drift, lands on all of them alike instead of on whichever
happened to run then, and the sizes stay comparable with each other too. Each batch runs the
contender's statement ``loops`` times in a loop compiled for it (the loop costs the same for
everyone and no wrapper sits between the loop and the API), with the collector off. A cell's
figure is the minimum over rounds of the per-call time, the least disturbed by others; the
median is kept too.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
import tracemalloc
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Callable, TextIO

from ._contenders import Built, Contender, make_callbacks

__all__ = ("FULL", "QUICK", "Progress", "Settings", "run")


class Settings:
    """How hard to measure: *rounds* interleaved rounds of batches lasting about *batch_ns*."""

    __slots__ = ("name", "rounds", "batch_ns")

    def __init__(self, name: str, rounds: int, batch_ns: int) -> None:
        self.name = name
        self.rounds = rounds
        self.batch_ns = batch_ns


QUICK = Settings("quick", rounds=3, batch_ns=1_000_000)
FULL = Settings("full", rounds=40, batch_ns=8_000_000)

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
    __slots__ = ("loop", "activate", "loops", "samples", "fields")

    def __init__(
        self, built: Built, stmt: str, env: dict[str, Any], **fields: Any
    ) -> None:
        self.loop = compile_loop(stmt, env)
        self.activate = built.activate
        self.loops = 0
        self.samples: list[float] = []
        self.fields = fields

    def batch(self) -> float:
        if self.activate is not None:
            self.activate()
        return self.loop(self.loops) / self.loops

    def record(self) -> dict[str, Any]:
        return dict(
            self.fields,
            ns=min(self.samples),
            median_ns=statistics.median(self.samples),
            loops=self.loops,
            rounds=len(self.samples),
        )


def interleave(cells: list[_Cell], settings: Settings, progress: Progress) -> None:
    """Calibrate each cell, then time one batch of each per round, in a fresh order each."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        progress.step(f"calibrating {len(cells)} cells")
        for cell in cells:
            if cell.activate is not None:
                cell.activate()
            cell.loops = calibrate(cell.loop, settings.batch_ns)
        order = list(cells)
        shuffle = random.Random(0).shuffle  # the same sequence of orders on every run
        for round_ in range(settings.rounds):
            progress.step(f"round {round_ + 1} of {settings.rounds}")
            shuffle(order)
            for cell in order:
                cell.samples.append(cell.batch())
    finally:
        if was_enabled:
            gc.enable()


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
    memory: list[dict[str, Any]] = []
    try:
        progress.step("subscribing")
        publish: list[_Cell] = []
        churn: list[_Cell] = []
        for size in sizes:
            for contender in contenders:
                built = contender.build(callbacks[:size])
                fields = dict(contender=contender.name, subscribers=size)
                publish += [
                    _Cell(built, stmt, built.env, shape=shape, **fields)
                    for shape, stmt in built.publish.items()
                ]
                if built.churn is not None:
                    churn.append(_Cell(built, built.churn, dict(built.env, extra=extra), **fields))
        interleave(publish + churn, settings, progress)
        # Memory last: tracemalloc slows every allocation, so it must not overlap the timings.
        for contender in contenders:
            progress.step(f"memory, {contender.name}")
            empty = _traced_bytes(lambda: contender.build(()))  # noqa: B023
            for size in sizes:
                if size:
                    full = _traced_bytes(lambda: contender.build(callbacks[:size]))  # noqa: B023
                    per = (full - empty) / size
                    memory.append(
                        dict(contender=contender.name, subscribers=size, bytes_per_subscriber=per)
                    )
    finally:
        for contender in contenders:
            contender.restore()
        progress.close()
    return {
        "publish": [cell.record() for cell in publish],
        "subscribe_unsubscribe": [cell.record() for cell in churn],
        "memory": memory,
    }


def steps(contenders: Sequence[Contender], settings: Settings) -> int:
    """How many progress steps :func:`run` takes."""
    return 2 + settings.rounds + len(contenders)
