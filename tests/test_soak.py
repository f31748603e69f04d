"""A bounded soak: threads publish, edit and read the same channels while finalizers edit them too.

Two publisher threads publish two channels; two editor threads subscribe and unsubscribe
listeners of their own; a reader thread reads ``bus.listeners``; and cyclic garbage, made by
the editors and by listeners during publishes, carries finalizers that subscribe and
unsubscribe other listeners, from whichever thread the collector runs in. The collector is set
to run every few allocations and the interpreter to switch threads often, so finalizers and
other threads get in wherever the core allocates (up to Python 3.11; later versions run the
collector at the next bytecode boundary, in a listener).

Every edit is stamped with a shared clock before and after it (finalizers too, under a lock
that keeps a record of the edits in the order they were made), and so is every publish and
read. Afterwards each publish is checked against the record: a listener subscribed throughout
the publish was called exactly once; one unsubscribed before it began and not subscribed again
until it ended was not called; the calls are in priority order; the results are the calls'.
Finally the registry must hold exactly what the record says.

The soak is bounded by iterations, not time: a few runs of a fixed number of publishes.
``FASTBUS_SOAK_RUNS=N`` asks for N runs instead, for a longer soak on a developer's machine.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import math
import os
import random
import sys
import threading
import weakref
from fractions import Fraction
from typing import Any

from _registry import entries as registry_entries

CHANNELS = ("s0", "s1")
# Distinct priorities of every kind the cores order differently: ints, floats, Fractions and
# ints beyond what a double holds exactly.
PRIORITIES = sorted(
    [
        *(-(2**60), -7, -2.5, Fraction(-1, 3), 0, 0.25, 1, Fraction(4, 3), 2, 3.5, 10),
        *(2**53 + 1, 2**53 + 3, 2**62, 1e20),
    ]
)
STABLE = 3  # per channel: subscribed before the threads start, never edited
OWNED = 3  # per channel and editor: edited by that editor only
FINALIZED = 6  # per channel: edited by finalizers only
EDITORS = 2
PUBLISHERS = 2
DEADLINE = 120.0  # seconds for the threads to finish; a hang fails the test
# Collect every few allocations: with garbage made all the time, most collections run
# finalizers, and some of them start inside the core's own allocations.
GC_THRESHOLD = 10
ROUNDS = 500  # publishes per publisher in one run
BUSY = 20  # the editors and the reader stop after this many rounds per publisher's round


def _runs() -> int:
    wanted = os.environ.get("FASTBUS_SOAK_RUNS", "").strip()
    if not wanted:
        return 8
    if not wanted.isdigit() or int(wanted) < 1:
        raise ValueError(f"FASTBUS_SOAK_RUNS must be a positive whole number, not {wanted!r}")
    return int(wanted)


# Several short runs rather than one long one: each starts with new threads on a new bus, and
# the first moments of a run, when the threads start to overlap, are the most varied.
RUNS = _runs()


class Listener:
    """Appends its name to the list it is published with, and returns its name.

    A stable listener also makes cyclic garbage now and then, so that finalizers run in the
    publishing threads too.
    """

    def __init__(self, soak: Soak, channel: str, name: str, priority: Any, garbage_every: int = 0) -> None:
        self.soak = soak
        self.channel = channel
        self.name = name
        self.priority = priority
        self.garbage_every = garbage_every
        self.count = 0

    def __call__(self, calls: list[str]) -> str:
        calls.append(self.name)
        if self.garbage_every:
            self.count += 1
            if self.count % self.garbage_every == 0:
                self.soak.make_garbage()
        return self.name

    def __repr__(self) -> str:
        return self.name


class _Cycle:
    def __init__(self) -> None:
        self.cycle = self


class Soak:
    """One run: a bus, its listeners, the threads, and what they recorded."""

    def __init__(self, Bus: type, seed: int) -> None:
        self.bus = Bus()
        self.clock = itertools.count()
        # The record: per listener, [kind, stamp before, stamp after] of each edit in the
        # order the bus applied them. Edits and their records are made under this lock.
        self.lock = threading.RLock()
        self.events: dict[Listener, list[list[Any]]] = {}
        self.local = threading.local()
        self.random = random.Random(seed)  # for the finalizers, under the lock
        self.listeners: dict[str, list[Listener]] = {}
        self.stable: list[Listener] = []
        self.owned: list[list[Listener]] = [[] for _ in range(EDITORS)]
        self.finalized: list[Listener] = []
        self.finalized_on: set[Listener] = set()
        self.publishes: list[tuple[Any, ...]] = []
        self.reads: list[tuple[Any, ...]] = []
        self.errors: list[BaseException] = []
        self.finalized_in_publish = 0
        # The editors and the reader keep going until the publishers are done.
        self.publishers_left = PUBLISHERS
        self.published = threading.Event()
        picker = random.Random(seed)
        for ch in CHANNELS:
            # The stable listeners run last: an edit in place under a publish that already
            # read the channel's length then pushes one of them out of its sight (skipped) or
            # leaves it in two slots (called twice), where the record shows it for certain.
            priorities = list(PRIORITIES[:-STABLE])
            picker.shuffle(priorities)
            priorities += PRIORITIES[-STABLE:]  # popped first, by the stable listeners
            made = []
            for i in range(STABLE):
                made.append(Listener(self, ch, f"{ch}-stable{i}", priorities.pop(), garbage_every=2))
                self.stable.append(made[-1])
            for editor in range(EDITORS):
                for i in range(OWNED):
                    made.append(Listener(self, ch, f"{ch}-editor{editor}-{i}", priorities.pop()))
                    self.owned[editor].append(made[-1])
            for i in range(FINALIZED):
                made.append(Listener(self, ch, f"{ch}-finalized{i}", priorities.pop()))
                self.finalized.append(made[-1])
            self.listeners[ch] = made
            for listener in made:
                self.events[listener] = []
        for listener in self.stable:
            self.bus.subscribe(listener.channel, listener, listener.priority)
            self.events[listener].append(["on", -1, -1])

    # Edits, stamped and recorded.

    def edit(self, listener: Listener, on: bool) -> None:
        with self.lock:
            event = ["on" if on else "off", next(self.clock), None]
            self.events[listener].append(event)
            if on:
                self.bus.subscribe(listener.channel, listener, listener.priority)
            else:
                self.bus.unsubscribe(listener.channel, listener)
            event[2] = next(self.clock)
            inside = getattr(self.local, "inside", None)
            if inside is not None:
                # A finalizer run inside an edit of this thread: its edit is applied when the
                # outer edit completes, so it may take effect as late as the outer's end.
                inside.append(event)

    def begin(self) -> None:
        self.local.inside = []

    def end(self) -> None:
        inside, self.local.inside = self.local.inside, None
        stamp = next(self.clock)
        for event in inside:
            event[2] = max(event[2], stamp)

    def make_garbage(self) -> None:
        holder = _Cycle()
        weakref.finalize(holder, self.finalizer)
        del holder

    def finalizer(self) -> None:
        try:
            with self.lock:
                if getattr(self.local, "publishing", False):
                    self.finalized_in_publish += 1
                for _ in range(2):
                    listener = self.random.choice(self.finalized)
                    on = listener not in self.finalized_on
                    self.finalized_on.symmetric_difference_update({listener})
                    self.edit(listener, on)
        except BaseException as exc:
            self.errors.append(exc)

    # The threads.

    def publisher(self, number: int) -> None:
        for round_ in range(ROUNDS):
            ch = CHANNELS[(round_ + number) % len(CHANNELS)]
            calls: list[str] = []
            self.begin()
            start = next(self.clock)
            self.local.publishing = True
            try:
                results: Any = self.bus.publish(ch, calls)
            except Exception as exc:
                results = exc
            self.local.publishing = False
            self.end()
            self.publishes.append((ch, start, next(self.clock), results, calls))
        with self.lock:
            self.publishers_left -= 1
            if not self.publishers_left:
                self.published.set()

    def editor(self, number: int) -> None:
        rng = random.Random(number)
        mine = self.owned[number]
        on: set[Listener] = set()
        for _ in range(BUSY * ROUNDS):
            if self.published.is_set():
                break
            listener = rng.choice(mine)
            self.begin()
            if listener in on and rng.random() < 0.2:
                self.edit(listener, True)  # a re-subscribe: same priority, no change
            else:
                self.edit(listener, listener not in on)
                on.symmetric_difference_update({listener})
            self.end()
            self.make_garbage()

    def reader(self) -> None:
        for round_ in range(BUSY * ROUNDS):
            if self.published.is_set():
                break
            ch = CHANNELS[round_ % len(CHANNELS)]
            view = self.bus.listeners[ch]
            start = next(self.clock)
            seen = tuple(view)
            size = len(view)
            self.reads.append((ch, start, next(self.clock), seen, size))

    def run(self) -> None:
        def guarded(target: Any, *args: Any) -> Any:
            def body() -> None:
                try:
                    target(*args)
                except BaseException as exc:
                    self.errors.append(exc)

            return threading.Thread(target=body, daemon=True)

        threads = [guarded(self.publisher, n) for n in range(PUBLISHERS)]
        threads += [guarded(self.editor, n) for n in range(EDITORS)]
        threads.append(guarded(self.reader))
        thresholds = gc.get_threshold()
        interval = sys.getswitchinterval()
        gc.set_threshold(GC_THRESHOLD, 100, 100)
        sys.setswitchinterval(1e-5)
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(DEADLINE)
        finally:
            sys.setswitchinterval(interval)
            gc.set_threshold(*thresholds)
        assert not any(t.is_alive() for t in threads), "the soak's threads did not finish: a deadlock?"
        gc.collect()  # the last finalizers, so that the record is complete

    # The checks.

    def index_record(self) -> None:
        """Per listener: the edits' start stamps, and the latest end stamp up to each edit."""
        self.starts: dict[Listener, list[int]] = {}
        self.latest: dict[Listener, list[float]] = {}
        for listener, events in self.events.items():
            self.starts[listener] = [before for _, before, _ in events]
            latest: list[float] = []
            for _, _, after in events:
                latest.append(max(latest[-1] if latest else -1, math.inf if after is None else after))
            self.latest[listener] = latest

    def state(self, listener: Listener, start: int, end: int) -> str:
        """``on``/``off`` if *listener* was so throughout ``(start, end)``, else ``unsure``."""
        begun = bisect.bisect_left(self.starts[listener], end)  # the edits begun before *end*
        if not begun:
            return "off"
        if self.latest[listener][begun - 1] >= start:
            return "unsure"  # one of them may have taken effect after *start*
        return str(self.events[listener][begun - 1][0])

    def check_calls(self, what: str, ch: str, start: int, end: int, names: Any) -> None:
        known = {listener.name: listener for listener in self.listeners[ch]}
        assert len(set(names)) == len(names), f"{what}: a listener twice: {names}"
        assert all(name in known for name in names), f"{what}: not a listener of {ch!r}: {names}"
        priorities = [known[name].priority for name in names]
        assert priorities == sorted(priorities), f"{what}: out of priority order: {names}"
        for listener in self.listeners[ch]:
            state = self.state(listener, start, end)
            if state == "on":
                assert listener.name in names, f"{what}: {listener} subscribed throughout, missing: {names}"
            elif state == "off":
                assert listener.name not in names, f"{what}: {listener} unsubscribed before, present: {names}"

    def check(self) -> None:
        assert not self.errors, f"a thread failed: {self.errors[0]!r}"
        self.index_record()
        assert len(self.publishes) == PUBLISHERS * ROUNDS
        for number, (ch, start, end, results, calls) in enumerate(self.publishes):
            what = f"publish {number} to {ch!r}"
            assert isinstance(results, list), f"{what} raised {results!r}"
            assert results == calls, f"{what}: results {results} but calls {calls}"
            self.check_calls(what, ch, start, end, calls)
        for number, (ch, start, end, seen, size) in enumerate(self.reads):
            what = f"read {number} of {ch!r}"
            names = [getattr(listener, "name", listener) for listener in seen]
            self.check_calls(what, ch, start, end, names)
            assert STABLE <= size <= len(self.listeners[ch]), f"{what}: len {size}"
        forever = next(self.clock)
        for ch in CHANNELS:
            expected = [
                (listener.priority, listener)
                for listener in self.listeners[ch]
                if self.state(listener, forever, forever + 1) == "on"
            ]
            expected.sort(key=lambda entry: entry[0])
            assert registry_entries(self.bus, ch) == expected, f"the registry of {ch!r} differs from the record"


def test_threads_publishing_editing_and_finalizers_agree_with_the_record(Bus):
    inside = 0
    for run in range(RUNS):
        soak = Soak(Bus, seed=run)
        soak.run()
        soak.check()
        inside += soak.finalized_in_publish
    # Over all the runs (one run alone may happen to collect only between publishes).
    assert inside, "no finalizer ran inside a publish: the soak tested nothing"
