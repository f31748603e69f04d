"""Turning measurements into the tables, the ratios, the machine description and the plot."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, Iterable, Sequence

from ._contenders import SHAPES

__all__ = ("machine", "ratios", "render", "plot")

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
    width = [max(len(columns[0]), *(len(label) for label, _ in rows))] + [
        max(len(column), *(len(cells[i]) for _, cells in rows)) for i, column in enumerate(columns[1:])
    ]
    lines = [title, "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(columns, width)))]
    for label, cells in rows:
        lines.append("  ".join([label.ljust(width[0])] + [c.rjust(w) for c, w in zip(cells, width[1:])]))
    return "\n".join(lines)


def render(result: dict[str, Any]) -> str:
    """The human report: cost tables, ratio tables, and what each contender does not do."""
    sizes: list[int] = result["settings"]["sizes"]
    ran = [c["name"] for c in result["contenders"] if c["status"] == "ran"]
    rounds = result["settings"]["rounds"]
    head = ["subscribers"] + [f"{n:,}" for n in sizes]
    out = [
        f"ns per call: the minimum over {rounds} interleaved rounds of batches of about "
        f"{result['settings']['batch_ns'] / 1e6:g} ms each (medians in --json)."
    ]

    cost = _index(result["publish"])
    for shape, (_, words) in SHAPES.items():
        rows = [
            (name, [_ns(cost[name, shape, n]) if (name, shape, n) in cost else "n/a" for n in sizes])
            for name in ran
        ]
        out.append(_table(f"Publish with {words}, ns per publish", head, rows))

    ratio = {(r["contender"], r["shape"], r["subscribers"]): r for r in result["ratios"]}

    def ratio_rows(key: str, skip: str) -> list[tuple[str, list[str]]]:
        rows = []
        for name in ran:
            if name == skip:
                continue
            cells = []
            for n in sizes:
                value = ratio.get((name, RATIO_SHAPE, n), {}).get(key)
                cells.append("n/a" if value is None else f"{value:.2f}")
            rows.append((name, cells))
        return rows

    words = SHAPES[RATIO_SHAPE][1]
    if "floor" in ran:
        out.append(_table(f"Publish cost ÷ the floor's ({words}; 1.00 is the floor, lower is better)", head, ratio_rows("vs_floor", "floor")))
    else:
        out.append("(no floor in this run: no ratios to the floor)")
    if "wspbus" in ran:
        out.append(_table(f"Times faster than wspbus (wspbus ns ÷ contender ns, {words})", head, ratio_rows("wspbus_over", "wspbus")))
    else:
        out.append("(wspbus not in this run: no ratios to wspbus)")

    largest = max(sizes)
    if largest:
        floor = cost.get(("floor", RATIO_SHAPE, largest))
        rows = []
        for name in ran:
            ns = cost.get((name, RATIO_SHAPE, largest))
            if ns is not None:
                per = ns / largest
                rows.append((name, [f"{per:.2f}", f"{per / (floor / largest):.2f}" if floor else "n/a"]))
        out.append(_table(f"Per subscriber at {largest:,} subscribers (publish ns ÷ subscribers, {words})", ["contender", "ns", "÷ floor"], rows))

    churn = _index(result["subscribe_unsubscribe"])
    with_registry = [name for name in ran if any(key[0] == name for key in churn)]
    rows = [(name, [_ns(churn[name, None, n]) if (name, None, n) in churn else "n/a" for n in sizes]) for name in with_registry]
    if rows:
        out.append(_table("Subscribe one more callback, then unsubscribe it, ns per pair, on a bus already holding N", head, rows))

    memory = _index(result["memory"], "bytes_per_subscriber")
    msizes = [n for n in sizes if n]
    if msizes:
        rows = [(name, [f"{memory[name, None, n]:,.0f}" if (name, None, n) in memory else "n/a" for n in msizes]) for name in ran]
        out.append(_table("Memory per subscriber, bytes (tracemalloc: what holding N more callbacks keeps allocated)", ["subscribers"] + [f"{n:,}" for n in msizes], rows))

    notes = ["What each contender is, and what it does not do that fastbus does:"]
    for c in result["contenders"]:
        version = f" {c['version']}" if c.get("version") else ""
        if c["status"] == "ran":
            notes.append(f"  {c['name']}{version}: {c['summary']}")
            notes += [f"      - {gap}" for gap in c["gaps"]]
        else:
            notes.append(f"  {c['name']}: skipped: {c['reason']}")
    out.append("\n".join(notes))
    return "\n\n".join(out) + "\n"


def plot(result: dict[str, Any], path: str) -> None:
    """Save a log-log chart of publish and subscribe+unsubscribe cost against subscribers.

    Zero subscribers has no place on a log axis, so that size is left out of the chart.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    ran = [c["name"] for c in result["contenders"] if c["status"] == "ran"]
    panels = [
        (left, [r for r in result["publish"] if r["shape"] == RATIO_SHAPE], f"publish, {SHAPES[RATIO_SHAPE][1]}"),
        (right, result["subscribe_unsubscribe"], "subscribe + unsubscribe one callback"),
    ]
    for axes, records, title in panels:
        for i, name in enumerate(ran):
            points = sorted((r["subscribers"], r["ns"]) for r in records if r["contender"] == name and r["subscribers"] > 0)
            if points:
                xs, ys = zip(*points)
                style = "--" if name == "floor" else "-"
                axes.loglog(xs, ys, style, marker="o", markersize=4, label=name, color=f"C{i}")
        axes.set_title(title)
        axes.set_xlabel("subscribers")
        axes.set_ylabel("ns per call")
        axes.grid(True, which="major", alpha=0.4)
        axes.grid(True, which="minor", alpha=0.12)
    left.legend(fontsize="small")
    info = result["machine"]
    figure.suptitle(
        f"fastbus {result['fastbus']} · Python {info['python']} · {info['cpu']} × {info['cpu_count']} "
        f"· minimum of {result['settings']['rounds']} rounds",
        fontsize="medium",
    )
    figure.savefig(path, dpi=110)


def plot_formats() -> set[str]:
    """The file extensions the plot can be saved as."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return set(FigureCanvasAgg.get_supported_filetypes())
