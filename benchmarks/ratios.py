"""Print the ratios we track from a pytest-benchmark JSON file, against their targets.

    pytest benchmarks --benchmark-json bench.json
    python benchmarks/ratios.py bench.json [--stat min|median|mean]

The targets are reported, never asserted: timings on a shared machine are evidence, not a
test. A ratio whose contender did not run (no build, no floor) shows as "n/a".
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Optional

Lookup = Callable[[str, str], Optional[float]]

PER_SUBSCRIBER = 10_000


def _targets(get: Lookup) -> list[tuple[str, Optional[float], str, Callable[[float], bool]]]:
    def ratio(top: tuple[str, str], bottom: tuple[str, str]) -> Optional[float]:
        a, b = get(*top), get(*bottom)
        return a / b if a is not None and b else None

    rows: list[tuple[str, Optional[float], str, Callable[[float], bool]]] = []
    for n, limit in ((0, 1.3), (1, 1.3), (10, 1.15), (100, 1.15)):
        group = f"publish-{n}"
        rows.append((f"publish-{n}: fastbus-c ÷ floor", ratio(("fastbus-c", group), ("floor", group)), f"≤ {limit}", lambda v, l=limit: v <= l))
    rows.append(("publish-10: wspbus ÷ fastbus-c", ratio(("wspbus", "publish-10"), ("fastbus-c", "publish-10")), "≥ 6", lambda v: v >= 6))
    rows.append(("publish-10: wspbus ÷ fastbus-py", ratio(("wspbus", "publish-10"), ("fastbus-py", "publish-10")), "≥ 2.5", lambda v: v >= 2.5))
    # Per-subscriber cost at 10,000: both publish the same 10,000, so the ratio of the totals.
    group = f"publish-{PER_SUBSCRIBER}"
    rows.append((f"per subscriber at {PER_SUBSCRIBER:,}: fastbus-c ÷ floor", ratio(("fastbus-c", group), ("floor", group)), "≤ 1.2", lambda v: v <= 1.2))
    for n, limit_us in ((100, 1), (10_000, 25)):
        value = get("fastbus-c", f"subscribe-unsubscribe-{n}")
        us = value * 1e6 if value is not None else None
        rows.append((f"subscribe+unsubscribe at {n:,}: fastbus-c, µs", us, f"≤ {limit_us}", lambda v, l=limit_us: v <= l))
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a file written by pytest --benchmark-json")
    parser.add_argument("--stat", default="min", choices=("min", "median", "mean"), help="which statistic to compare (default min)")
    args = parser.parse_args(argv)
    try:
        with open(args.file) as file:
            data: dict[str, Any] = json.load(file)
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {args.file}: {exc}")

    seconds: dict[tuple[str, str], float] = {}
    for bench in data.get("benchmarks", []):
        contender = bench.get("params", {}).get("contender")
        if contender and bench.get("group"):
            seconds[contender, bench["group"]] = bench["stats"][args.stat]

    def get(contender: str, group: str) -> Optional[float]:
        return seconds.get((contender, group))

    groups = sorted({g for _, g in seconds}, key=lambda g: (g.split("-")[0], int(g.rsplit("-", 1)[1])))
    names = sorted({c for c, _ in seconds}, key=["floor", "fastbus-c", "fastbus-py", "wspbus"].index)
    width = max(len(g) for g in groups) if groups else 5
    print(f"{args.stat} ns per call")
    print("group".ljust(width) + "".join(name.rjust(12) for name in names))
    for group in groups:
        cells = [get(name, group) for name in names]
        print(group.ljust(width) + "".join(("n/a" if v is None else f"{v * 1e9:,.0f}").rjust(12) for v in cells))
    print()

    rows = _targets(get)
    label_width = max(len(label) for label, *_ in rows)
    print(f"{'ratio'.ljust(label_width)}  {'value':>8}  {'target':>7}  met")
    for label, value, target, met in rows:
        shown = "n/a" if value is None else f"{value:.2f}"
        verdict = "" if value is None else ("yes" if met(value) else "NO")
        print(f"{label.ljust(label_width)}  {shown:>8}  {target:>7}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
