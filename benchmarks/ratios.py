"""Print the ratios we track from a pytest-benchmark JSON file, against their targets.

    pytest benchmarks --benchmark-json bench.json
    python benchmarks/ratios.py bench.json [--stat min|median|mean]

The targets are reported, never asserted: timings on a shared machine are evidence, not a
test. A ratio whose contender did not run (no build, no floor, wspbus served by fastbus)
shows as "n/a". Groups are ``publish-SHAPE-N`` and ``subscribe-unsubscribe-N``; the publish
targets use the positional shape (older files' ``publish-N`` groups are read as that). The
``apublish-KIND-N`` groups of ``benchmarks/test_bench_async.py`` name a row by contender and
API (``fastbus-c apublish``) and are shown in a table of their own.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Optional

Lookup = Callable[[str, str], Optional[float]]

PER_SUBSCRIBER = 10_000
SHAPE = "positional"  # the publish targets are for one positional argument, as in issue 2
# The table's columns, in the order of python -m fastbus.bench; others follow.
ORDER = ("floor", "fastbus-c", "fastbus-py", "wspbus", "blinker", "psygnal", "pyee", "zope.event")
# The async table's columns, in the order of python -m fastbus.bench --async.
ASYNC_ORDER = (
    "floor call", "fastbus-c publish", "fastbus-c apublish", "fastbus-py publish", "fastbus-py apublish",
    "blinker send_async", "pyee emit",
)


Row = tuple[str, Optional[float], str, Callable[[float], bool]]


def _targets(get: Lookup) -> list[Row]:
    """Each tracked figure: label, value (None if a contender is missing), target, test."""

    def ratio(top: str, bottom: str, group: str) -> float | None:
        a, b = get(top, group), get(bottom, group)
        return a / b if a is not None and b else None

    def at_most(limit: float) -> Callable[[float], bool]:
        return lambda value: value <= limit

    def at_least(limit: float) -> Callable[[float], bool]:
        return lambda value: value >= limit

    rows: list[Row] = []
    for n, limit in ((0, 1.3), (1, 1.3), (10, 1.15), (100, 1.15)):
        group = f"publish-{SHAPE}-{n}"
        value = ratio("fastbus-c", "floor", group)
        rows.append((f"{group}: fastbus-c ÷ floor", value, f"≤ {limit}", at_most(limit)))
    for name, limit in (("fastbus-c", 6), ("fastbus-py", 2.5)):
        value = ratio("wspbus", name, f"publish-{SHAPE}-10")
        rows.append((f"publish-{SHAPE}-10: wspbus ÷ {name}", value, f"≥ {limit}", at_least(limit)))
    # Both publish to the same 10,000 subscribers, so the ratio of totals is that per subscriber.
    value = ratio("fastbus-c", "floor", f"publish-{SHAPE}-{PER_SUBSCRIBER}")
    label = f"per subscriber at {PER_SUBSCRIBER:,}: fastbus-c ÷ floor"
    rows.append((label, value, "≤ 1.2", at_most(1.2)))
    for n, limit in ((100, 1), (10_000, 25)):
        seconds = get("fastbus-c", f"subscribe-unsubscribe-{n}")
        micro = seconds * 1e6 if seconds is not None else None
        label = f"subscribe+unsubscribe at {n:,}: fastbus-c, µs"
        rows.append((label, micro, f"≤ {limit}", at_most(limit)))
    # The targets of issue 9 (async listeners): apublish with sync listeners at most 1.3×
    # publish, and at least 3× faster than blinker's send_async with async listeners at 10.
    for core in ("fastbus-c", "fastbus-py"):
        for n in (0, 1, 10, 100, 10_000):
            group = f"apublish-sync-{n}"
            value = ratio(f"{core} apublish", f"{core} publish", group)
            rows.append((f"{group}: {core} apublish ÷ publish", value, "≤ 1.3", at_most(1.3)))
        group = "apublish-async-10"
        value = ratio("blinker send_async", f"{core} apublish", group)
        rows.append((f"{group}: blinker send_async ÷ {core} apublish", value, "≥ 3", at_least(3)))
    return rows


def _table(stat: str, seconds: dict[tuple[str, str], float], names: list[str], groups: list[str]) -> None:
    width = max(len(g) for g in groups) if groups else 5
    column = max([11, *map(len, names)]) + 1
    print(f"{stat} ns per call (n/a: the contender skipped that case)")
    print("group".ljust(width) + "".join(name.rjust(column) for name in names))
    for group in groups:
        cells = [seconds.get((name, group)) for name in names]
        shown = ["n/a" if v is None else f"{v * 1e9:,.0f}" for v in cells]
        print(group.ljust(width) + "".join(cell.rjust(column) for cell in shown))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a file written by pytest --benchmark-json")
    parser.add_argument(
        "--stat", default="min", choices=("min", "median", "mean"), help="statistic (default min)"
    )
    args = parser.parse_args(argv)
    try:
        with open(args.file) as file:
            data: dict[str, Any] = json.load(file)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {args.file}: {exc}")

    seconds: dict[tuple[str, str], float] = {}
    for bench in data.get("benchmarks", []):
        params = bench.get("params") or {}
        contender, api = params.get("contender"), params.get("api")
        group = bench.get("group")
        if contender and api:
            contender = f"{contender} {api}"
        if contender and group:
            # Files from before the call shapes were split name positional publishes
            # "publish-N"; read them under today's name so old runs still report.
            prefix, _, size = group.rpartition("-")
            if prefix == "publish":
                group = f"publish-{SHAPE}-{size}"
            seconds[contender, group] = bench["stats"][args.stat]

    def get(contender: str, group: str) -> float | None:
        return seconds.get((contender, group))

    def by_kind_then_size(group: str) -> tuple[str, int]:
        kind, _, size = group.rpartition("-")
        return kind, int(size) if size.isdigit() else -1

    # Two tables: the publish benchmark's groups, then the async ones (their own columns).
    for is_async, order in ((False, list(ORDER)), (True, list(ASYNC_ORDER))):
        groups = sorted({g for _, g in seconds if g.startswith("apublish-") == is_async}, key=by_kind_then_size)
        if not groups:
            continue
        names = sorted({c for c, g in seconds if g in groups}, key=lambda c: order.index(c) if c in order else 99)
        _table(args.stat, seconds, names, groups)

    rows = _targets(get)
    label_width = max(len(label) for label, *_ in rows)
    print(f"{'ratio'.ljust(label_width)}  {'value':>8}  {'target':>7}  met")
    for label, value, target, met in rows:
        figure = "n/a" if value is None else f"{value:.2f}"
        verdict = "" if value is None else ("yes" if met(value) else "NO")
        print(f"{label.ljust(label_width)}  {figure:>8}  {target:>7}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
