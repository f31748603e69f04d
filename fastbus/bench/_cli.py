"""The command line: options, their checks, and the order of work."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from . import _measure, _report
from ._contenders import CONTENDERS, SHAPES, Contender, Unavailable

__all__ = ("main",)

DEFAULT_SIZES = (0, 1, 10, 100, 1_000, 10_000)

# Every contender holds this many callbacks at once, each a new function object, and each
# batch is calibrated to take milliseconds; far beyond this a run would seem to hang (and a
# count with thousands of digits is too long for int() itself).
MAX_SIZE = 1_000_000


def _sizes(text: str) -> list[int]:
    sizes = set()
    for part in text.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()):
            raise argparse.ArgumentTypeError(
                f"subscriber counts must be whole numbers, 0 or more, separated by commas; not {part!r}"
            )
        digits = part.lstrip("0") or "0"
        if len(digits) > len(str(MAX_SIZE)) or int(digits) > MAX_SIZE:
            raise argparse.ArgumentTypeError(
                f"subscriber counts must be at most {MAX_SIZE:,}; not {part}"
            )
        sizes.add(int(digits))
    return sorted(sizes)


def _names(text: str) -> list[str]:
    names = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(CONTENDERS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown contender {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {', '.join(CONTENDERS)}"
        )
    return [name for name in CONTENDERS if name in names]


def _parser() -> argparse.ArgumentParser:
    as_module = os.path.basename(sys.argv[0]) == "__main__.py"
    prog = "python -m fastbus.bench" if as_module else "fastbus-bench"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Measure fastbus against wspbus, its peers and the floor, side by side; "
        "or, with --bridge, fastbus.bridge across two processes against raw redis-py.",
        epilog="Progress goes to stderr, the tables to stdout. See the fastbus.bench docstring "
        "for the JSON schema and docs/performance.md for the method.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a run of a few seconds: fewer, shorter rounds"
    )
    parser.add_argument(
        "--bridge",
        action="store_true",
        help="instead: fastbus.bridge end to end between two processes through a redis-server "
        "that the bench starts on a free loopback port (messages/s and one-way latency p50/p99, "
        "pub/sub and durable modes, beside raw redis-py publishing one message per PUBLISH "
        "or XADD and in pipelines of 100); needs redis-py and redis-server",
    )
    parser.add_argument(
        "--redis-server",
        metavar="PATH",
        help="with --bridge: the redis-server to start (default: redis-server on PATH)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        metavar="N,...",
        help="subscriber counts to measure (not with --bridge), 0 to "
        f"{MAX_SIZE:,} (0 is the fixed cost of a publish; --plot needs one above 0); "
        f"default {','.join(map(str, DEFAULT_SIZES))}",
    )
    parser.add_argument(
        "--contenders",
        type=_names,
        default=None,
        metavar="NAME,...",
        help=f"which to run (not with --bridge); default all: {','.join(CONTENDERS)}",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument(
        "--plot", metavar="FILE.png", help="also draw charts to FILE (needs matplotlib)"
    )
    parser.add_argument(
        "--async",
        dest="async_",
        action="store_true",
        help="instead, publish from a coroutine: apublish with sync and with async def listeners "
        "beside publish, the floor, blinker's send_async and pyee's AsyncIOEventEmitter (which "
        "schedules coroutines as tasks: timed as emit plus running the event loop until they "
        "are done); one asyncio event loop drives every contender alike",
    )
    return parser


def _check_output(parser: argparse.ArgumentParser, option: str, path: str) -> None:
    # Checked before measuring, so a long run never ends in a failure to save it.
    # abspath() drops a trailing separator and a final "." or "..", so a name that can only
    # be a directory ("out.json/") is caught on the name as typed, before it is normalised.
    separators = tuple(filter(None, (os.sep, os.altsep)))
    if path.endswith(separators) or os.path.basename(path) in ("", ".", ".."):
        parser.error(f"{option} {path}: names a directory, not a file")
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    if os.path.isdir(full):
        parser.error(f"{option} {path}: is a directory")
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            parser.error(f"{option} {path}: {folder} is not a directory")
        parser.error(f"{option} {path}: directory {folder} does not exist")
    if not os.access(full if os.path.exists(full) else folder, os.W_OK):
        parser.error(f"{option} {path}: not writable")


def _check_outputs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.bridge:
        for option, value in (("--sizes", args.sizes), ("--contenders", args.contenders)):
            if value is not None:
                parser.error(f"{option} is for the in-process benchmark, not --bridge")
    else:
        if args.redis_server is not None:
            parser.error("--redis-server goes with --bridge")
        if args.sizes is None:
            args.sizes = list(DEFAULT_SIZES)
        if args.contenders is None:
            args.contenders = list(CONTENDERS)
    if args.json:
        _check_output(parser, "--json", args.json)
    if args.plot:
        _check_output(parser, "--plot", args.plot)
        if not args.bridge and not any(args.sizes):
            # The charts' axes are logarithmic, where 0 has no place: there would be no points.
            parser.error(
                f"--plot {args.plot}: the log-log charts need a subscriber count above 0 "
                f"in --sizes (given {','.join(map(str, args.sizes))})"
            )
        try:
            formats = _report.plot_formats()
        except ImportError:
            parser.error("--plot needs matplotlib: python -m pip install matplotlib")
        extension = os.path.splitext(args.plot)[1].lstrip(".").lower()
        if extension not in formats:
            known = ", .".join(sorted(formats))
            parser.error(f"--plot {args.plot}: the name must end in one of .{known}")


def _load(names: Sequence[str]) -> tuple[list[Contender], list[dict[str, Any]]]:
    loaded, described = [], []
    for name in names:
        contender = CONTENDERS[name]()
        entry: dict[str, Any] = dict(name=name, summary=contender.summary, gaps=list(contender.gaps))
        try:
            contender.load()
        except Unavailable as exc:
            entry.update(status="skipped", reason=str(exc), version=None, shapes=[])
        else:
            loaded.append(contender)
            shapes = list(contender.build(()).publish)
            contender.restore()
            entry.update(status="ran", reason=None, version=contender.version(), shapes=shapes)
        described.append(entry)
    return loaded, described


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status (2 for bad options, 1 if nothing could run)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        _check_outputs(parser, args)
        if args.async_ and args.bridge:
            parser.error("--async and --bridge are separate runs: choose one")
    except SystemExit as exc:  # argparse has printed the usage and the error
        return exc.code if isinstance(exc.code, int) else 2

    if args.async_:
        from . import _async

        return _async.main(parser, args)
    if args.bridge:
        return _bridge_main(parser, args)

    import fastbus

    contenders, described = _load(args.contenders)
    for entry in described:
        if entry["status"] == "skipped":
            print(f"{entry['name']}: skipped: {entry['reason']}", file=sys.stderr)
    if not contenders:
        print(f"{parser.prog}: error: none of the chosen contenders can run here", file=sys.stderr)
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
    progress = _measure.Progress(_measure.steps(contenders, settings), sys.stderr)
    try:
        measured = _measure.run(contenders, args.sizes, settings, progress)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    result: dict[str, Any] = {
        "schema": 1,
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
            "shapes": {shape: words for shape, (_, words) in SHAPES.items()},
        },
        "contenders": described,
        **measured,
        "ratios": _report.ratios(measured["publish"]),
    }
    print(_report.render(result), end="")
    print(f"({result['seconds']:.1f} s; load average before and after: {result['machine']['loadavg']})")

    return _save(parser, args, result, _report.plot)


def _save(parser: argparse.ArgumentParser, args: argparse.Namespace, result: dict[str, Any], plot: Any) -> int:
    """Write --json and --plot; the exit status (1 if either could not be written)."""
    status = 0
    if args.json:
        try:
            with open(args.json, "w") as file:
                json.dump(result, file, indent=1)
                file.write("\n")
        except OSError as exc:
            print(f"{parser.prog}: error: cannot write --json {args.json}: {exc}", file=sys.stderr)
            status = 1
    if args.plot:
        try:
            plot(result, args.plot)
        except OSError as exc:
            print(f"{parser.prog}: error: cannot write --plot {args.plot}: {exc}", file=sys.stderr)
            status = 1
    return status


def _bridge_main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--bridge``: start a private redis-server, run every case, report."""
    import fastbus

    from . import _bridge, _server

    cases, described = [], []
    for case in _bridge.CASES.values():
        entry: dict[str, Any] = dict(case=case.name, summary=case.summary)
        try:
            case.load()
        except Unavailable as exc:
            entry.update(status="skipped", reason=str(exc))
            print(f"{case.name}: skipped: {exc}", file=sys.stderr)
        else:
            entry.update(status="ran", reason=None)
            cases.append(case)
        described.append(entry)
    if not cases:
        print(f"{parser.prog}: error: none of the bridge cases can run here", file=sys.stderr)
        return 1
    try:
        server = _server.RedisServer(args.redis_server)
    except _server.ServerUnavailable as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1

    settings = _bridge.QUICK if args.quick else _bridge.FULL
    info = _report.machine()
    active = "compiled" if fastbus.COMPILED else "pure"
    load_before = _report.loadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    progress = _measure.Progress(1 + _bridge.steps(cases, settings), sys.stderr)
    progress.step("starting redis-server")
    try:
        with server:
            print(
                f"fastbus {fastbus.__version__} (active core: {active}) on {info['implementation']} "
                f"{info['python']}, {info['platform']}, {info['cpu']} × {info['cpu_count']}; "
                f"redis-server {server.version} on 127.0.0.1"
            )
            measured = _bridge.run(cases, server.url, settings, progress)
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, _server.ServerUnavailable) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    result: dict[str, Any] = {
        "schema": 1,
        "benchmark": "bridge",
        "fastbus": fastbus.__version__,
        "active_core": active,
        "sender_core": measured["sender"]["core"],
        "machine": dict(info, loadavg=[load_before, _report.loadavg()]),
        "redis": _bridge.versions(server.version),
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - clock, 2),
        "settings": {
            "mode": settings.name,
            "rounds": settings.rounds,
            "messages": settings.messages,
            "paced": settings.paced,
            "rate": settings.rate,
            "payload": _bridge.PAYLOAD,
        },
        "cases": described,
        "results": measured["results"],
        "targets": _bridge.targets(measured["results"]),
    }
    print(_report.render_bridge(result), end="")
    print(f"({result['seconds']:.1f} s; load average before and after: {result['machine']['loadavg']})")
    return _save(parser, args, result, _report.plot_bridge)
