"""Turning measurements into the tables, the ratios, the machine description and the plot."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ._contenders import SHAPES

__all__ = ("machine", "ratios", "render", "plot", "render_bridge", "plot_bridge")

RATIO_SHAPE = "positional"  # the printed ratio tables use this shape; the JSON has all of them


def machine() -> dict[str, Any]:
    """Describe where the numbers came from, load included (the machine may be shared)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _index(records: Iterable[dict[str, Any]], value: str = "ns") -> dict[tuple[Any, ...], float]:
    return {(r["contender"], r.get("shape"), r["subscribers"]): r[value] for r in records}


def ratios(publish: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each publish cost against the floor's (×, lower is better) and wspbus's against it."""
    cost = _index(publish)
    out = []
    for (name, shape, size), ns in cost.items():
        floor = cost.get(("floor", shape, size))
        wspbus = cost.get(("wspbus", shape, size))
        out.append(
            dict(
                contender=name,
                shape=shape,
                subscribers=size,
                vs_floor=ns / floor if floor else None,
                wspbus_over=wspbus / ns if wspbus and ns else None,
            )
        )
    return out


def _ns(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _table(title: str, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    width = [len(columns[0]), *map(len, columns[1:])]
    for label, cells in rows:
        width = [max(w, len(c)) for w, c in zip(width, [label, *cells])]
    lines = [title]
    for label, cells in [(columns[0], columns[1:]), *rows]:
        lines.append("  ".join([label.ljust(width[0])] + [c.rjust(w) for c, w in zip(cells, width[1:])]))
    return "\n".join(lines)


def _grid(
    names: Sequence[str], columns: Sequence[Any], value: Any, fmt: Any
) -> list[tuple[str, list[str]]]:
    # One row per name, one cell per column: fmt(value(name, column)), or n/a where None.
    rows = []
    for name in names:
        cells = [value(name, column) for column in columns]
        rows.append((name, ["n/a" if v is None else fmt(v) for v in cells]))
    return rows


def render(result: dict[str, Any]) -> str:
    """The human report: cost tables, ratio tables, and what each contender does not do."""
    settings = result["settings"]
    sizes: list[int] = settings["sizes"]
    ran = [c["name"] for c in result["contenders"] if c["status"] == "ran"]
    head = ["subscribers"] + [f"{n:,}" for n in sizes]
    out = [
        f"ns per call: the minimum over {settings['rounds']} interleaved rounds of batches of "
        f"about {settings['batch_ns'] / 1e6:g} ms each (medians in --json)."
    ]

    cost = _index(result["publish"])
    for shape, (_, words) in SHAPES.items():
        rows = _grid(ran, sizes, lambda name, n: cost.get((name, shape, n)), _ns)  # noqa: B023
        out.append(_table(f"Publish with {words}, ns per publish", head, rows))

    ratio = {(r["contender"], r["shape"], r["subscribers"]): r for r in result["ratios"]}
    words = SHAPES[RATIO_SHAPE][1]
    for key, baseline, title in (
        ("vs_floor", "floor", f"Publish cost ÷ the floor's ({words}; 1.00 is the floor)"),
        ("wspbus_over", "wspbus", f"Times faster than wspbus (wspbus ns ÷ contender ns, {words})"),
    ):
        if baseline not in ran:
            against = "the floor" if baseline == "floor" else baseline
            out.append(f"({baseline} did not run: no ratios to {against})")
            continue
        others = [name for name in ran if name != baseline]
        def value(name: str, n: int, key: str = key) -> Any:
            return ratio.get((name, RATIO_SHAPE, n), {}).get(key)

        rows = _grid(others, sizes, value, "{:.2f}".format)
        out.append(_table(title, head, rows))

    largest = max(sizes)
    if largest:
        floor = cost.get(("floor", RATIO_SHAPE, largest))
        rows = []
        for name in ran:
            ns = cost.get((name, RATIO_SHAPE, largest))
            if ns is not None:
                rows.append((name, [f"{ns / largest:.2f}", f"{ns / floor:.2f}" if floor else "n/a"]))
        title = f"Per subscriber at {largest:,} subscribers (publish ns ÷ subscribers, {words})"
        out.append(_table(title, ["contender", "ns", "÷ floor"], rows))

    churn = _index(result["subscribe_unsubscribe"])
    with_registry = [name for name in ran if any(key[0] == name for key in churn)]
    if with_registry:
        rows = _grid(with_registry, sizes, lambda name, n: churn.get((name, None, n)), _ns)
        title = "Subscribe one more callback, then unsubscribe it: ns per pair, on a bus holding N"
        out.append(_table(title, head, rows))

    memory = _index(result["memory"], "bytes_per_subscriber")
    positive = [n for n in sizes if n]
    if positive:
        rows = _grid(ran, positive, lambda name, n: memory.get((name, None, n)), "{:,.0f}".format)
        title = (
            "Memory per subscriber, bytes (tracemalloc: what holding N callbacks keeps allocated,"
            "\n÷ N; at small N the channel itself dominates)"
        )
        out.append(_table(title, ["subscribers"] + [f"{n:,}" for n in positive], rows))

    notes = ["What each contender is, and what it does not do that fastbus does:"]
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
    """Save log-log charts against subscribers: publish cost, the same per subscriber (where
    overheads show, since total costs all grow alike), and subscribe+unsubscribe cost.

    Zero subscribers has no place on a log axis, so that size is left out of the chart.
    """
    # A bare Figure draws with Agg and leaves pyplot's global state alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 4.8), layout="constrained")
    axes = figure.subplots(1, 3)
    ran = [c["name"] for c in result["contenders"] if c["status"] == "ran"]
    publish = [r for r in result["publish"] if r["shape"] == RATIO_SHAPE]
    words = SHAPES[RATIO_SHAPE][1]
    panels = [
        (publish, False, f"publish, {words}", "ns per publish"),
        (publish, True, "publish, per subscriber", "ns per publish ÷ subscribers"),
        (result["subscribe_unsubscribe"], False, "subscribe + unsubscribe one more", "ns per pair"),
    ]
    for ax, (records, per_subscriber, title, ylabel) in zip(axes, panels):
        for i, name in enumerate(ran):
            points = sorted(
                (r["subscribers"], r["ns"] / r["subscribers"] if per_subscriber else r["ns"])
                for r in records
                if r["contender"] == name and r["subscribers"] > 0
            )
            if points:
                xs, ys = zip(*points)
                if name == "floor":  # drawn dashed and on top: fastbus-c often lies on it
                    style = dict(linestyle="--", color="black", zorder=3)
                else:
                    style = dict(linestyle="-", color=f"C{i}", zorder=2)
                ax.loglog(xs, ys, marker="o", markersize=4, label=name, **style)
        ax.set_title(title)
        ax.set_xlabel("subscribers")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.4)
        ax.grid(True, which="minor", alpha=0.12)
    axes[0].legend(fontsize="small")
    info = result["machine"]
    figure.suptitle(
        f"fastbus {result['fastbus']} · Python {info['python']} · {info['cpu']} × "
        f"{info['cpu_count']} · minimum of {result['settings']['rounds']} interleaved rounds",
        fontsize="medium",
    )
    figure.savefig(path, dpi=100)


def plot_formats() -> set[str]:
    """The file extensions the plot can be saved as."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return set(FigureCanvasAgg.get_supported_filetypes())


def _us(ns: float | None) -> str:
    if ns is None:
        return "n/a"
    us = ns / 1000
    return f"{us:,.1f}" if us < 100 else f"{us:,.0f}"


def render_bridge(result: dict[str, Any]) -> str:
    """The ``--bridge`` report: rates and latencies per case, the targets, what each case is."""
    settings = result["settings"]
    rounds = settings["rounds"]
    title = (
        f"One process sends, another receives, through redis-server {result['redis']['server']} on "
        f"loopback;\n{rounds} round{'s' if rounds != 1 else ''}, each a burst of "
        f"{settings['messages']:,} messages as fast as the sender goes, then {settings['paced']:,} "
        f"paced at {settings['rate']:,}/s.\nmsgs/s: first send to last arrival in the burst "
        "(best, and median over rounds); sent/s: the sender's own pace (best);\nlatency: one way, µs, p50/p99"
    )
    columns = ["case", "per trip", "msgs/s", "median", "sent/s", "burst p50", "p99", "paced p50", "p99", "lost"]
    rows = []
    for r in result["results"]:
        burst, paced = r["burst_latency"], r["paced_latency"] or {}
        rows.append((r["case"], [
            "coalesced" if r["batch"] is None else str(r["batch"]),
            "n/a" if r["rate"] is None else f"{r['rate']:,.0f}",
            "n/a" if r["rate_median"] is None else f"{r['rate_median']:,.0f}",
            "n/a" if r["send_rate"] is None else f"{r['send_rate']:,.0f}",
            _us(burst["p50_ns"]), _us(burst["p99_ns"]),
            _us(paced.get("p50_ns")), _us(paced.get("p99_ns")),
            f"{r['lost']:,}",
        ]))
    out = [_table(title, columns, rows)]

    lines = ["Targets (reported, never asserted: a shared machine's timings are evidence, not a test):"]
    for t in result["targets"]:
        if t["ratio"] is None:
            lines.append(f"  {t['target']}: n/a (target {t['sense']} {t['bound']:g})")
        else:
            verdict = "met" if t["met"] else "NOT met"
            lines.append(f"  {t['target']}: {t['ratio']:.2f} (target {t['sense']} {t['bound']:g}): {verdict}")
    out.append("\n".join(lines))

    redis = result["redis"]
    notes = [
        f"redis-py {redis['redis_py']}, hiredis {redis['hiredis'] or 'not installed'}; receiving core "
        f"{result['active_core']}, sending core {result['sender_core']}. The cases:"
    ]
    for c in result["cases"]:
        if c["status"] == "ran":
            notes.append(f"  {c['case']}: {c['summary']}")
        else:
            notes.append(f"  {c['case']}: skipped: {c['reason']}")
    for r in result["results"]:
        if r["bridge_stats"]:
            stats = r["bridge_stats"][-1]
            shown = ", ".join(f"{k} {v}" for k, v in stats.items() if k != "last_error" or v)
            notes.append(f"  {r['case']}: receiving bridge's stats() after its last round: {shown}")
    out.append("\n".join(notes))
    return "\n\n".join(out) + "\n"


def plot_bridge(result: dict[str, Any], path: str) -> None:
    """Save two bar charts: messages per second in the burst, and one-way latency p50/p99."""
    from matplotlib.figure import Figure

    results = result["results"]
    names = [r["case"] for r in results]
    figure = Figure(figsize=(13, 4.8), layout="constrained")
    rate_ax, latency_ax = figure.subplots(1, 2)
    ys = list(range(len(names)))
    colours = ["C0" if r["via"] == "redis-py" else "C1" for r in results]
    rate_ax.barh(ys, [r["rate"] or 0 for r in results], color=colours)
    rate_ax.set_yticks(ys, names)
    rate_ax.invert_yaxis()
    rate_ax.set_xlabel("messages per second, end to end (best round)")
    rate_ax.set_title("burst throughput")
    rate_ax.grid(True, axis="x", alpha=0.4)

    height = 0.2
    series = [
        ("burst_latency", "p50_ns", "burst p50", -1.5, "C2"),
        ("burst_latency", "p99_ns", "burst p99", -0.5, "C3"),
        ("paced_latency", "p50_ns", f"paced p50 ({result['settings']['rate']:,}/s)", 0.5, "C0"),
        ("paced_latency", "p99_ns", "paced p99", 1.5, "C1"),
    ]
    for group, field, label, offset, colour in series:
        values = [((r[group] or {}).get(field) or 0) / 1000 for r in results]
        latency_ax.barh([y + offset * height for y in ys], values, height=height, label=label, color=colour)
    latency_ax.set_yticks(ys, names)
    latency_ax.invert_yaxis()
    latency_ax.set_xscale("log")
    latency_ax.set_xlabel("one-way latency, µs (log scale; no bar: not measured)")
    latency_ax.set_title("latency")
    latency_ax.grid(True, axis="x", which="major", alpha=0.4)
    latency_ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    info = result["machine"]
    figure.suptitle(
        f"fastbus {result['fastbus']} bridge · redis-server {result['redis']['server']} · Python "
        f"{info['python']} · {info['cpu']} × {info['cpu_count']}",
        fontsize="medium",
    )
    figure.savefig(path, dpi=100)
