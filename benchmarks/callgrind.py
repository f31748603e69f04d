"""Instructions per publish under callgrind, and the CI gate on fastbus's cost over the floor.

    python benchmarks/callgrind.py                                 # print the table
    python benchmarks/callgrind.py --json out.json                 # ... and keep the figures
    python benchmarks/callgrind.py --check benchmarks/callgrind-expected.json
    python benchmarks/callgrind.py --record benchmarks/callgrind-expected.json

Why instructions: a timing on a shared machine moves by tens of percent with the neighbours'
load, so it can be reported but never asserted. The number of instructions a publish executes
does not depend on the load: callgrind (valgrind's instruction-level profiler) counts them
exactly, and the same program on the same interpreter build gives the same count on every run.
That makes a gate on them a fair test.

Method. Every cell (a contender at a subscriber count) runs in two child processes of this
script under ``valgrind --tool=callgrind``. Each child builds the contender exactly as
``python -m fastbus.bench`` does (``fastbus.bench._contenders``: the same no-op callbacks, the
channel declared before subscribing, the same positional statement, ``publish('ch', 1)`` for
the buses and ``call(1)`` for the floor) and the same loop around it that the timing bench
compiles (``_measure.compile_loop``), with the collector off. It runs the loop 1,000 times to
warm up (the interpreter specialises the loop's bytecode on its first runs) and then *loops*
times more: 0 in the first child and K in the second. callgrind's total for the two children
differs only by those K iterations, so ``(total_K - total_0) / K`` is the instructions of one
publish plus one turn of the loop (a few dozen instructions, the same for every contender);
interpreter start-up, imports and subscribing cancel out. The children run with
``PYTHONHASHSEED=0`` and never write bytecode, so the two differ in nothing else.

Repeatability. The same program gives the same counts on every run, to a few instructions in
hundreds of millions. What moves them is the memory layout: whether an allocator serves a
publish's result list on its fast path depends on the heap's history. At 100 subscribers, for
one, the list's 800-byte item array comes from glibc's ``calloc``, which skips glibc's
per-thread cache and searches its bins. So a change anywhere in the process, even in this
script's length, moves a count by up to about 0.3%, on the bus and on the floor: well inside
the tolerance below, but a reason not to tighten it much further.

The gate. What the plain ``publish`` of the compiled core (``fastbus-c``) costs depends on the
interpreter as much as on fastbus, so the gate compares its ratio to the floor:
``fastbus._floor.Floor.call``, a compiled loop that makes the same calls to the same callbacks
and collects their results, the least any bus must do. ``--check`` fails (status 1) if at any
subscriber count the measured ``fastbus-c ÷ floor`` exceeds the expected ratio by more than the
tolerance (default 2%). The ratio cancels most of the interpreter's version (Python 3.9 to 3.13
built alike by pyenv agree within 2%), but not the compiler flags that fastbus's own C is built
with, which come from the interpreter's build: Debian's Python 3.11.2 (``-O2``, stack protector)
gives 1.110 at 0 subscribers where pyenv's 3.11.7 (``-O3``) gives 1.079. So
``benchmarks/callgrind-expected.json`` holds one entry per build: Python minor version,
implementation and extension compiler command (``CC`` and ``CFLAGS`` from ``sysconfig``), each
with the exact Python and the commit it was measured on. A build with no entry cannot be
checked (status 2) rather than compared with another build's figure, which would pass
regressions or fail good code by as much as the tolerance.

Recording a baseline. ``--record`` writes (or replaces) this build's entry. The expected ratios
are those of the code *before* a change, so to add a build, check out the commit named in the
file's entries, build it, and record there; recording on changed code would move the baseline.

Exit status: 0 ok, 1 a ratio over its limit, 2 could not measure or check (no valgrind, no
compiled core, no expected entry for this build, bad arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

SHAPE = "positional"
DEFAULT_CONTENDERS = ("floor", "fastbus-c", "fastbus-py", "wspbus")
DEFAULT_SIZES = (0, 1, 10, 100)
GATED, FLOOR = "fastbus-c", "floor"
BUILD_KEY = ("version", "implementation", "compiler")  # an expected entry applies to these
WARMUP = 1_000
# Children are given their count with this many digits, so that the two children of a cell have
# argument lists of one length and differ in nothing but the count itself.
LOOP_DIGITS = 9
_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.MULTILINE)


def default_loops(size: int) -> int:
    """How many publishes to count at *size* subscribers: tens of millions of instructions.

    Enough that the count dwarfs any stray difference between the two children, few enough
    that a child runs in seconds under callgrind (which runs Python some 50 times slower).
    """
    return max(100, 100_000 // (size + 5))


def _child(name: str, size: int, loops: int) -> None:
    # Runs under callgrind: build the contender, warm the loop up, then run it *loops* times.
    import gc

    from fastbus.bench._contenders import CONTENDERS, make_callbacks
    from fastbus.bench._measure import compile_loop

    contender = CONTENDERS[name]()
    contender.load()
    built = contender.build(make_callbacks(size))
    loop = compile_loop(built.publish[SHAPE], built.env)
    if built.activate is not None:
        built.activate()
    gc.collect()
    gc.disable()
    loop(WARMUP)
    if loops:
        loop(loops)


def _count(name: str, size: int, loops: int, env: dict[str, str]) -> int:
    """Run one child under callgrind; return the instructions it executed in all."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, os.path.abspath(__file__),
        "--child", name, str(size), f"{loops:0{LOOP_DIGITS}d}",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    found = _COLLECTED.findall(done.stderr)
    if done.returncode != 0 or len(found) != 1:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(
            f"{name} at {size} subscribers, {loops} loops: the child under callgrind "
            f"exited with status {done.returncode}:\n{tail}"
        )
    return int(found[0])


def _git(root: str, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _valgrind_version() -> str | None:
    try:
        done = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def measure(
    names: Sequence[str],
    sizes: Sequence[int],
    loops: int | None,
    jobs: int,
    progress: Any = None,
) -> dict[str, Any]:
    """Count every cell of *names* × *sizes*; return the record that ``--json`` writes."""
    from concurrent.futures import ThreadPoolExecutor

    import fastbus
    from fastbus.bench._contenders import CONTENDERS, Unavailable

    root = os.path.dirname(os.path.dirname(os.path.abspath(fastbus.__file__)))
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    # The children import fastbus from where this process did, whatever their directory.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)

    skipped: dict[str, str] = {}
    statements: dict[str, str] = {}
    available = []
    for name in names:
        contender = CONTENDERS[name]()
        try:
            contender.load()  # also imports, here first, everything the children import
        except Unavailable as exc:
            skipped[name] = str(exc)
            continue
        statements[name] = contender.build([]).publish[SHAPE]
        available.append(name)

    runs = [
        (name, size, count)
        for size in sizes
        for name in available
        for count in (0, loops if loops is not None else default_loops(size))
    ]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_count, name, size, count, env) for name, size, count in runs]
        totals = {}
        for done, ((name, size, count), future) in enumerate(zip(runs, futures), 1):
            totals[name, size, count] = future.result()
            if progress is not None:
                progress.write(f"[{done:>2}/{len(runs)}] {name} at {size}, {count} loops\n")
                progress.flush()

    cells = []
    for name, size, count in runs:
        if count:
            base, total = totals[name, size, 0], totals[name, size, count]
            cells.append(
                dict(
                    contender=name,
                    subscribers=size,
                    loops=count,
                    instructions_base=base,
                    instructions=total,
                    per_publish=round((total - base) / count, 1),
                )
            )
    return dict(
        build(),
        executable=sys.executable,
        valgrind=_valgrind_version(),
        fastbus=getattr(fastbus, "__version__", None),
        fastbus_path=root,
        commit=_git(root, "rev-parse", "HEAD"),
        dirty=bool(_git(root, "status", "--porcelain", "--", "fastbus", "setup.py")),
        shape=SHAPE,
        statements=statements,
        warmup=WARMUP,
        skipped=skipped,
        cells=cells,
        ratios=ratios(cells),
    )


def build() -> dict[str, str]:
    """What the expected ratios are keyed on: the interpreter and how extensions compile for it."""
    import sysconfig

    compiler = f"{sysconfig.get_config_var('CC')} {sysconfig.get_config_var('CFLAGS')}"
    return dict(
        version=f"{sys.version_info[0]}.{sys.version_info[1]}",
        implementation=sys.implementation.name,
        compiler=" ".join(compiler.split()),
        python=".".join(map(str, sys.version_info[:3])),
    )


def _describe(entry: dict[str, Any]) -> str:
    return f"{entry['implementation']} {entry['python']} compiling with {entry['compiler']!r}"


def _same_build(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(key) == b.get(key) for key in BUILD_KEY)


def per_publish(cells: Sequence[dict[str, Any]]) -> dict[tuple[str, int], float]:
    return {(cell["contender"], cell["subscribers"]): cell["per_publish"] for cell in cells}


def ratios(cells: Sequence[dict[str, Any]]) -> dict[str, float]:
    """``fastbus-c ÷ floor`` at each subscriber count where both were measured."""
    counts = per_publish(cells)
    sizes = sorted({size for _, size in counts})
    return {
        str(size): round(counts[GATED, size] / counts[FLOOR, size], 4)
        for size in sizes
        if (GATED, size) in counts and counts.get((FLOOR, size))
    }


def table(record: dict[str, Any]) -> str:
    """The figures as text: instructions per publish, then the ratios."""
    counts = per_publish(record["cells"])
    names = [name for name in record["statements"] if any(name == n for n, _ in counts)]
    sizes = sorted({size for _, size in counts})
    head = ["subscribers", *names]
    extra = [(GATED, FLOOR), ("wspbus", GATED)]
    extra = [(a, b) for a, b in extra if a in names and b in names]
    head += [f"{a} ÷ {b}" for a, b in extra]
    rows = [head]
    for size in sizes:
        row = [f"{size:,}"] + [f"{counts[name, size]:,.0f}" for name in names]
        row += [f"{counts[a, size] / counts[b, size]:.3f}" for a, b in extra]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    ]
    statements = ", ".join(f"{name}: {stmt}" for name, stmt in record["statements"].items())
    title = (
        f"Instructions per publish (callgrind; {record['implementation']} {record['python']}, "
        f"fastbus {record['fastbus']} from {record['fastbus_path']}, "
        f"commit {(record['commit'] or 'unknown')[:12]}{' + changes' if record['dirty'] else ''})"
    )
    notes = [f"statements: {statements}", f"extensions compile with: {record['compiler']}"]
    notes += [f"{name}: skipped: {why}" for name, why in record["skipped"].items()]
    return "\n".join([title, "", *lines, "", *notes])


def check(
    record: dict[str, Any], expected: dict[str, Any], tolerance: float, source: str
) -> tuple[int, list[str]]:
    """Compare *record*'s ratios with *expected*'s entry for its build.

    Returns the exit status (0 within limits, 1 over a limit, 2 nothing to compare) and the
    lines to print, one per subscriber count.
    """
    entries = [entry for entry in expected.get("builds", []) if _same_build(entry, record)]
    if not entries:
        known = "".join(f"\n  {_describe(entry)}" for entry in expected.get("builds", [])) or " none"
        return 2, [
            f"cannot check: {source} has no expected ratios for this build, {_describe(record)}; "
            f"it has:{known}\nrecord them on this build, at the commit the entries name, with "
            f"--record {source}"
        ]
    if len(entries) > 1:
        return 2, [f"cannot check: {source} has {len(entries)} entries for {_describe(record)}"]
    (entry,) = entries
    if expected.get("shape", SHAPE) != record["shape"]:
        return 2, [f"cannot check: {source} is for the {expected['shape']} shape, not {record['shape']}"]
    measured = record["ratios"]
    if not measured:
        return 2, [f"cannot check: {GATED} and {FLOOR} were not both measured at any size"]
    status, lines = 0, []
    commit = str(entry.get("commit"))[:12]
    where = f"Python {record['python']}, expected from {entry['python']} at commit {commit}"
    for size, ratio in sorted(measured.items(), key=lambda item: int(item[0])):
        if size not in entry["ratios"]:
            lines.append(f"not checked: no expected ratio at {size} subscribers in {source}")
            continue
        want = entry["ratios"][size]
        limit = round(want * (1 + tolerance), 4)  # to the ratios' precision: no float edge
        change = f"{ratio / want - 1:+.2%}"
        if ratio > limit:
            status = 1
            lines.append(
                f"FAIL publish at {size} subscribers: {GATED} ÷ {FLOOR} = {ratio:.4f}, expected "
                f"{want:.4f} with tolerance {tolerance:.1%} (limit {limit:.4f}); {change} ({where})"
            )
        else:
            note = ""
            if ratio < want * (1 - tolerance):
                note = f"; better than expected by more than the tolerance: if intended, --record {source}"
            lines.append(
                f"ok   publish at {size} subscribers: {GATED} ÷ {FLOOR} = {ratio:.4f}, "
                f"expected {want:.4f}, limit {limit:.4f}; {change}{note}"
            )
    if not any(line.startswith(("ok", "FAIL")) for line in lines):
        status = 2
        lines.append(f"cannot check: none of the measured sizes has an expected ratio in {source}")
    return status, lines


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def record_expected(record: dict[str, Any], path: str) -> None:
    """Write *record*'s ratios into *path* as its build's entry, keeping the other builds'."""
    if not record["ratios"]:
        raise SystemExit(f"{path}: not written: {GATED} and {FLOOR} were not both measured")
    try:
        with open(path) as file:
            expected = json.load(file)
    except FileNotFoundError:
        expected = {}
    counts = per_publish(record["cells"])
    entry = {key: record.get(key) for key in ("version", "implementation", "compiler", "python")}
    entry.update(
        commit=record["commit"],
        dirty=record["dirty"],
        valgrind=record.get("valgrind"),
        ratios=record["ratios"],
        instructions={
            name: {str(size): value for (n, size), value in sorted(counts.items()) if n == name}
            for name in (GATED, FLOOR)
        },
    )
    builds = [old for old in expected.get("builds", []) if not _same_build(old, entry)]
    builds.append(entry)
    builds.sort(key=lambda e: (_version_key(e["version"]), e["implementation"], e["compiler"]))
    expected = {
        "about": (
            f"{GATED} ÷ {FLOOR} instructions per publish under callgrind, one entry per build "
            f"(keyed on {', '.join(BUILD_KEY)}); checked by benchmarks/callgrind.py --check, "
            "written by its --record; see that script's docstring"
        ),
        "shape": record["shape"],
        "builds": builds,
    }
    with open(path, "w") as file:
        json.dump(expected, file, indent=2, ensure_ascii=False)
        file.write("\n")


def _parser() -> argparse.ArgumentParser:
    from fastbus.bench._cli import _names, _sizes

    parser = argparse.ArgumentParser(
        prog="python benchmarks/callgrind.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--contenders", type=_names, default=list(DEFAULT_CONTENDERS),
        help=f"comma-separated (default {','.join(DEFAULT_CONTENDERS)})",
    )  # fmt: skip
    parser.add_argument(
        "--sizes", type=_sizes, default=list(DEFAULT_SIZES),
        help=f"subscriber counts, comma-separated (default {','.join(map(str, DEFAULT_SIZES))})",
    )  # fmt: skip
    parser.add_argument(
        "--loops", type=_positive, default=None,
        help="publishes counted per cell (default: about 100,000 ÷ (subscribers + 5))",
    )  # fmt: skip
    parser.add_argument(
        "--jobs", type=_positive, default=os.cpu_count() or 1,
        help="children run at once (default: the number of CPUs; counts do not depend on it)",
    )  # fmt: skip
    parser.add_argument("--json", metavar="OUT", help="write the measurements to OUT")
    parser.add_argument(
        "--input", metavar="MEASURED",
        help="take the measurements from a file written by --json instead of running valgrind",
    )  # fmt: skip
    parser.add_argument(
        "--check", metavar="EXPECTED",
        help=f"exit 1 if {GATED} ÷ {FLOOR} exceeds EXPECTED's ratio for this build by more "
        "than the tolerance",
    )  # fmt: skip
    parser.add_argument(
        "--tolerance", type=_fraction, default=0.02,
        help="allowed relative excess over the expected ratio (default 0.02, i.e. 2%%)",
    )  # fmt: skip
    parser.add_argument(
        "--record", metavar="EXPECTED",
        help="write the measured ratios into EXPECTED as this build's entry (see Recording a baseline)",
    )  # fmt: skip
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more; not {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 up to 1, e.g. 0.02; not {text!r}")
    return value


def _load(path: str) -> Any:
    """The JSON document in *path*, or None (and a message saying why) if it cannot be read."""
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError) as exc:
        print(f"cannot read {path}: {exc}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.input:
        record = _load(args.input)
        if record is None:
            return 2
    else:
        if _valgrind_version() is None:
            print("cannot measure: valgrind is not installed (it provides callgrind)", file=sys.stderr)
            return 2
        try:
            record = measure(args.contenders, args.sizes, args.loops, args.jobs, sys.stderr)
        except RuntimeError as exc:
            print(f"cannot measure: {exc}", file=sys.stderr)
            return 2
    print(table(record))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(record, file, indent=2, ensure_ascii=False)
            file.write("\n")
    if args.record:
        record_expected(record, args.record)
        print(f"\nrecorded the ratios for {_describe(record)} in {args.record}")
    if args.check:
        expected = _load(args.check)
        if expected is None:
            return 2
        status, lines = check(record, expected, args.tolerance, args.check)
        print()
        print("\n".join(lines))
        return status
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(main())
