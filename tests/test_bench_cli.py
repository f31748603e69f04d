"""The ``python -m fastbus.bench`` command: options, output, JSON and plot; never its timings.

In-process runs shrink the quick settings to a couple of tiny batches, so each takes well under
a second; one real subprocess runs ``--quick`` as a user would.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from _commands import install_commands, install_problems

from fastbus.bench import _cli, _measure, main
from fastbus.bench._contenders import CONTENDERS, SHAPES

ROOT = Path(__file__).resolve().parent.parent


class _StandInFloor:
    """Does what fastbus._floor.Floor does, so the floor's code path runs without the build."""

    def __init__(self, callbacks: Any) -> None:
        self.callbacks = list(callbacks)

    def call(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [callback(*args, **kwargs) for callback in self.callbacks]


@pytest.fixture(autouse=True)
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_measure, "QUICK", _measure.Settings("quick", rounds=2, batch_ns=20_000))


@pytest.fixture
def floor(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("fastbus._floor")
    module.Floor = _StandInFloor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fastbus._floor", module)


def run(*argv: str) -> int:
    return main(["--quick", *argv])


def check_schema(result: dict[str, Any], sizes: list[int]) -> None:
    """Assert *result* follows the schema in the fastbus.bench docstring."""
    assert result["schema"] == 1
    assert isinstance(result["fastbus"], str)
    assert result["active_core"] in {"compiled", "pure"}
    assert {"python", "implementation", "platform", "cpu", "cpu_count", "loadavg"} <= set(result["machine"])
    assert isinstance(result["started"], str) and result["seconds"] >= 0
    settings = result["settings"]
    assert settings["mode"] == "quick" and settings["statistic"] == "min"
    assert settings["sizes"] == sizes and set(settings["shapes"]) == set(SHAPES)
    assert isinstance(settings["rounds"], int) and isinstance(settings["batch_ns"], int)

    ran = {}
    for entry in result["contenders"]:
        assert entry["name"] in CONTENDERS and entry["status"] in {"ran", "skipped"}
        assert isinstance(entry["summary"], str) and isinstance(entry["gaps"], list)
        if entry["status"] == "ran":
            assert entry["reason"] is None and entry["shapes"]
            ran[entry["name"]] = entry
        else:
            assert entry["reason"] and entry["shapes"] == []

    measured = {(r["contender"], r["shape"], r["subscribers"]) for r in result["publish"]}
    assert measured == {(n, s, size) for n, e in ran.items() for s in e["shapes"] for size in sizes}
    for record in result["publish"] + result["subscribe_unsubscribe"]:
        assert record["ns"] > 0 and record["median_ns"] >= record["ns"]
        assert record["loops"] >= 1 and record["rounds"] == settings["rounds"]
    churned = {(r["contender"], r["subscribers"]) for r in result["subscribe_unsubscribe"]}
    assert churned == {(n, size) for n in ran if n != "floor" for size in sizes}
    remembered = {(r["contender"], r["subscribers"]) for r in result["memory"]}
    assert remembered == {(n, size) for n in ran for size in sizes if size}
    assert all(isinstance(r["bytes_per_subscriber"], float) for r in result["memory"])
    assert {(r["contender"], r["shape"], r["subscribers"]) for r in result["ratios"]} == measured
    for ratio in result["ratios"]:
        assert (ratio["vs_floor"] is None) == ("floor" not in ran)
        assert (ratio["wspbus_over"] is None) == ("wspbus" not in ran)


def test_runs_and_writes_json(tmp_path: Path, floor: None, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "out.json"
    assert run("--sizes", "0,3", "--json", str(path)) == 0
    out, err = capsys.readouterr()
    result = json.loads(path.read_text())
    check_schema(result, [0, 3])
    assert "Publish with one positional argument" in out
    assert "÷ the floor's" in out and "Times faster than wspbus" in out
    assert "Memory per subscriber" in out
    try:
        import zope.event  # noqa: F401
    except ImportError:  # the bench extra is not installed: the peer is skipped, and says why
        assert "zope.event" in out and "python -m pip install zope.event" in out
    else:
        assert "one global list" in out  # each peer's gaps are spelled out
    assert "[  1/" in err  # progress went to stderr


def test_every_available_peer_runs(tmp_path: Path, floor: None) -> None:
    path = tmp_path / "out.json"
    assert run("--sizes", "2", "--json", str(path)) == 0
    result = json.loads(path.read_text())
    check_schema(result, [2])
    for entry in result["contenders"]:
        if entry["status"] == "skipped":  # only a missing build or library may skip one
            assert entry["name"] not in {"floor", "fastbus-py"}


def test_shapes_a_peer_lacks_are_not_run(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    assert run("--sizes", "1", "--contenders", "psygnal,zope.event,fastbus-py", "--json", str(path)) == 0
    result = json.loads(path.read_text())
    shapes = {e["name"]: e["shapes"] for e in result["contenders"] if e["status"] == "ran"}
    if "psygnal" in shapes:
        assert "keyword" not in shapes["psygnal"]
    if "zope.event" in shapes:
        assert shapes["zope.event"] == ["positional"]
    assert shapes["fastbus-py"] == list(SHAPES)


def test_zope_event_subscribers_are_given_back() -> None:
    zope_event = pytest.importorskip("zope.event")
    mine = zope_event.subscribers
    before = list(mine)
    assert run("--sizes", "2", "--contenders", "zope.event") == 0
    assert zope_event.subscribers is mine and mine == before


def test_missing_floor_is_skipped_not_an_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "fastbus._floor", None)  # import raises ImportError
    assert run("--sizes", "1", "--contenders", "floor,fastbus-py") == 0
    out, err = capsys.readouterr()
    assert "floor: skipped: floor unavailable" in err + out
    assert "no ratios to the floor" in out and "Times faster than wspbus" not in out


def test_nothing_runnable_is_an_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "fastbus._floor", None)
    assert run("--contenders", "floor") == 1
    assert "none of the chosen contenders can run here" in capsys.readouterr().err


def test_plot_is_written(tmp_path: Path, floor: None) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "chart.png"
    assert run("--sizes", "0,1,4", "--contenders", "floor,fastbus-py,wspbus", "--plot", str(path)) == 0
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--contenders", "fastbus-py,nope"], "unknown contender 'nope'; choose from floor, fastbus-c"),
        (["--contenders", ","], "unknown contender (none given)"),
        (["--sizes", "-1"], "whole numbers, 0 or more"),
        (["--sizes", "1.5"], "not '1.5'"),
        (["--sizes", "²"], "not '²'"),
        (["--sizes", "10,ten"], "not 'ten'"),
        (["--sizes", ""], "whole numbers"),
        (["--sizes", "99999999999"], "argument --sizes: subscriber counts must be at most 1,000,000; not 99999999999"),
        (["--sizes", "10,1000001"], "argument --sizes: subscriber counts must be at most 1,000,000"),
        (["--sizes", "9" * 5000], "argument --sizes: subscriber counts must be at most 1,000,000"),
        (["--json", "{tmp}/missing/out.json"], "does not exist"),
        (["--json", "{tmp}"], "is a directory"),
        (["--json", "{tmp}/out.json/"], "--json {tmp}/out.json/: names a directory, not a file"),
        (["--json", "{tmp}/out.json/."], "names a directory, not a file"),
        (["--plot", "{tmp}/missing/chart.png"], "does not exist"),
        (["--plot", "{tmp}/chart.png/"], "--plot {tmp}/chart.png/: names a directory, not a file"),
        (["--sizes", "0", "--plot", "{tmp}/chart.png"], "the log-log charts need a subscriber count above 0"),
        (["--plot", "{tmp}/chart.nope"], "the name must end in one of"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_options_are_clear_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--plot" in argv:
        pytest.importorskip("matplotlib")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    message = message.replace("{tmp}", str(tmp_path))
    assert run(*argv) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err
    assert out == ""  # nothing was measured
    assert list(tmp_path.iterdir()) == []


def test_sizes_up_to_the_bound_are_accepted() -> None:
    assert _cli._sizes("1000000, 0001,0,000") == [0, 1, 1_000_000]
    assert _cli.MAX_SIZE == 1_000_000


def test_output_inside_a_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    assert run("--json", str(tmp_path / "file" / "out.json")) == 2
    out, err = capsys.readouterr()
    assert f"{tmp_path / 'file'} is not a directory" in err and "Traceback" not in err
    assert out == ""


def test_plot_skips_size_zero_without_a_warning(tmp_path: Path, floor: None) -> None:
    # Warnings are errors in this suite, so matplotlib complaining about an empty log axis
    # (a contender with no registry, a size of 0 beside others) would fail the run.
    pytest.importorskip("matplotlib")
    path = tmp_path / "chart.png"
    assert run("--sizes", "0,2", "--contenders", "floor", "--plot", str(path)) == 0
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_wspbus_served_by_fastbus_is_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What fastbus.install()'s import hook leaves in sys.modules (see fastbus/_install.py).
    import fastbus.wspbus

    module = types.ModuleType("cherrypy.process.wspbus")
    module.__fastbus__ = True  # type: ignore[attr-defined]
    module.Bus = fastbus.wspbus.Bus  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cherrypy.process.wspbus", module)
    path = tmp_path / "out.json"
    assert run("--sizes", "1", "--contenders", "fastbus-py,wspbus", "--json", str(path)) == 0
    out, err = capsys.readouterr()
    reason = "cherrypy.process.wspbus is served by fastbus in this process"
    assert f"wspbus: skipped: {reason}" in err
    assert "(wspbus did not run: no ratios to wspbus)" in out
    result = json.loads(path.read_text())
    (entry,) = [e for e in result["contenders"] if e["name"] == "wspbus"]
    assert entry["status"] == "skipped" and reason in entry["reason"]
    assert {r["contender"] for r in result["publish"]} == {"fastbus-py"}


def test_wspbus_contender_is_stock_wspbus_when_not_installed() -> None:
    pytest.importorskip("cherrypy")
    contender = CONTENDERS["wspbus"]()
    contender.load()
    assert not getattr(contender.module, "__fastbus__", False)
    assert contender.module.Bus.__module__ == "cherrypy.process.wspbus"


def test_under_fastbus_run_wspbus_is_skipped(tmp_path: Path) -> None:
    pytest.importorskip("cherrypy")
    path = tmp_path / "run.json"
    done = _run_python(tmp_path, "-m", "fastbus.run", "-m", "fastbus.bench", "--quick", "--sizes", "1",
                       "--contenders", "fastbus-py,wspbus", "--json", str(path))
    assert done.returncode == 0, done.stderr
    assert "wspbus: skipped: cherrypy.process.wspbus is served by fastbus" in done.stderr
    statuses = {e["name"]: e["status"] for e in json.loads(path.read_text())["contenders"]}
    assert statuses == {"fastbus-py": "ran", "wspbus": "skipped"}


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))))


def _run_python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` in *cwd* with this tree importable, capturing its output."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120
    )


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--quick", "--sizes", "--contenders", "--json", "--plot", "--async"):
        assert option in out
    # pyee does not await, so the help says how it is timed.
    assert "schedules coroutines as tasks" in " ".join(out.split())


def test_real_subprocess_quick(tmp_path: Path) -> None:
    path = tmp_path / "quick.json"
    done = _run_python(tmp_path, "-m", "fastbus.bench", "--quick", "--json", str(path))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "Publish with one positional argument" in done.stdout
    check_schema(json.loads(path.read_text()), [0, 1, 10, 100, 1_000, 10_000])


def test_console_script_runs_the_command() -> None:
    import os
    import shutil
    import subprocess
    import sys

    script = shutil.which("fastbus-bench", path=os.path.dirname(sys.executable))
    assert script, "the fastbus-bench console script is not installed beside this interpreter"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout and "--contenders" in result.stdout


# What each contender imports, and the distribution that provides it (None: fastbus itself).
_IMPORTS = {
    "floor": ("fastbus._floor", None),
    "fastbus-c": ("fastbus._core_c", None),
    "wspbus": ("cherrypy.process.wspbus", "CherryPy"),
    "blinker": ("blinker", "blinker"),
    "psygnal": ("psygnal", "psygnal"),
    "pyee": ("pyee", "pyee"),
    "zope.event": ("zope.event", "zope.event"),
}


def test_every_contender_that_can_be_missing_is_covered() -> None:
    assert set(_IMPORTS) == set(CONTENDERS) - {"fastbus-py"}


@pytest.mark.parametrize("name", sorted(_IMPORTS))
def test_a_missing_contender_says_how_to_get_it(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module, distribution = _IMPORTS[name]
    monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    assert run("--sizes", "1", "--contenders", f"{name},fastbus-py") == 0
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith(f"{name}: skipped: ")]
    (command,) = install_commands(line)
    assert install_problems(command) == []
    if distribution is None:  # fastbus is installed from its checkout, and built then
        assert command == "python -m pip install -e ."
    else:
        assert command == f"python -m pip install {distribution}"


def test_plot_without_matplotlib_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in ("matplotlib", "matplotlib.backends.backend_agg"):  # an import raises
        monkeypatch.setitem(sys.modules, module, None)
    assert run("--contenders", "fastbus-py", "--plot", str(tmp_path / "chart.png")) == 2
    out, err = capsys.readouterr()
    assert "--plot needs matplotlib" in err and out == ""
    (command,) = install_commands(err)
    assert command == "python -m pip install matplotlib"
    assert install_problems(command) == []


# -- --async: publishing from a coroutine -----------------------------------------------------

# The peers of the async comparison, the module each needs, and the row it gives.
_ASYNC_PEERS = {"blinker": ("blinker", "send_async"), "pyee": ("pyee.asyncio", "emit")}


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def test_async_runs_and_reports_the_rows_and_target_ratios(
    tmp_path: Path, floor: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "async.json"
    assert run("--async", "--sizes", "0,3,10", "--json", str(path)) == 0
    out, err = capsys.readouterr()
    result = json.loads(path.read_text())
    assert result["schema"] == 1 and result["benchmark"] == "async"
    assert result["settings"]["sizes"] == [0, 3, 10] and result["settings"]["mode"] == "quick"
    assert set(result["settings"]["listeners"]) == {"sync", "async"}
    status = {entry["name"]: entry for entry in result["contenders"]}
    assert list(status) == list(CONTENDERS)  # every chosen contender is accounted for

    # Every contender that can publish from a coroutine ran, unless its library is missing.
    expected = {("floor", "call", "sync"), ("fastbus-py", "publish", "sync")}
    expected |= {("fastbus-py", "apublish", kind) for kind in ("sync", "async")}
    if importlib.util.find_spec("fastbus._core_c") is not None:
        expected |= {("fastbus-c", "publish", "sync")} | {("fastbus-c", "apublish", k) for k in ("sync", "async")}
    for peer, (module, api) in _ASYNC_PEERS.items():
        if _installed(module):
            expected |= {(peer, api, kind) for kind in ("sync", "async")}
        else:  # the bench extra is not installed: skipped, saying how to get it
            assert status[peer]["status"] == "skipped" and "python -m pip install" in status[peer]["reason"]
    for name in ("wspbus", "psygnal", "zope.event"):  # no async publish to compare
        assert status[name]["status"] == "skipped" and f"{name}: skipped: " in err
    ran = {(entry["name"], api, kind) for entry in result["contenders"] if entry["status"] == "ran"
           for kind, apis in entry["apis"].items() for api in apis}
    assert ran == expected
    cells = {(r["contender"], r["api"], r["listeners"], r["subscribers"]): r for r in result["publish"]}
    assert set(cells) == {(*row, size) for row in expected for size in (0, 3, 10)}
    for record in cells.values():
        assert record["ns"] > 0 and record["median_ns"] >= record["ns"]
        assert record["loops"] >= 1 and record["rounds"] == result["settings"]["rounds"]

    # The printed tables: a row per contender and API, one table per kind of listener.
    assert "With plain (def) no-op listeners, ns per publish" in out
    assert "With async def no-op listeners, ns per publish" in out
    for name, api, _ in expected:
        assert re.search(rf"^{re.escape(f'{name} {api}')} +\S", out, re.MULTILINE), (name, api)

    # The two targets as ratios, computed from the cells, per core and size.
    cores = sorted({name for name, _, _ in expected if name.startswith("fastbus")})
    ratios = {(r["ratio"], r["contender"], r["subscribers"]): r for r in result["ratios"]}
    for core in cores:
        for size in (0, 3, 10):
            ratio = ratios["apublish/publish", core, size]
            apublish, publish = cells[core, "apublish", "sync", size]["ns"], cells[core, "publish", "sync", size]["ns"]
            assert ratio["value"] == pytest.approx(apublish / publish)
            assert ratio["target"] == "≤ 1.3" and ratio["met"] == (ratio["value"] <= 1.3)
        if ("blinker", "send_async", "async") in expected:
            ratio = ratios["blinker/apublish", core, 10]
            blinker, apublish = cells["blinker", "send_async", "async", 10]["ns"], cells[core, "apublish", "async", 10]["ns"]
            assert ratio["value"] == pytest.approx(blinker / apublish)
            assert ratio["target"] == "≥ 3" and ratio["met"] == (ratio["value"] >= 3)
            assert ratios["blinker/apublish", core, 3]["target"] is None  # the target is at 10
    assert "apublish ÷ publish, sync listeners, same core (target ≤ 1.3)" in out
    assert "Targets (reported, not asserted):" in out
    for core in cores:
        assert re.search(rf"^  {core}: apublish with sync listeners ÷ publish ≤ 1.3: [0-9.]+ at 0, ", out, re.MULTILINE)
        if ("blinker", "send_async", "async") in expected:
            assert re.search(rf"^  {core}: blinker send_async ÷ apublish, async listeners ≥ 3: [0-9.]+ at 10: ",
                             out, re.MULTILINE)
    if ("pyee", "emit", "async") in expected:  # how pyee was made to do the same work is said
        assert "timed as emit plus running the event loop until emitter.complete" in out
    assert "[  1/" in err  # progress went to stderr


def test_async_with_no_contender_that_can_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--async", "--contenders", "wspbus,zope.event") == 1
    err = capsys.readouterr().err
    assert "none of the chosen contenders can publish from a coroutine here" in err
    assert "wspbus: skipped: no async publish" in err


def test_async_missing_peer_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pyee.asyncio", None)  # import raises ImportError
    assert run("--async", "--sizes", "1", "--contenders", "pyee,fastbus-py") == 0
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("pyee: skipped: ")]
    (command,) = install_commands(line)
    assert command == "python -m pip install pyee" and install_problems(command) == []


def test_async_plot_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "async.png"
    assert run("--async", "--sizes", "0,2", "--contenders", "fastbus-py", "--plot", str(path)) == 0
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_async_pump_runs_the_statement_once_per_send(bus: Any) -> None:
    # The pytest-benchmark suite's driver: each send(None) runs one publish, awaited, and
    # returns; closing it ends the coroutine.
    from fastbus.bench._async import compile_pump

    calls = []

    async def listener(arg: Any) -> None:
        calls.append(arg)

    bus.subscribe("ch", listener)
    send = compile_pump("await apublish('ch', len(calls))", {"apublish": bus.apublish, "calls": calls})
    assert calls == [0]  # primed: the first publish ran
    send(None)
    send(None)
    assert calls == [0, 1, 2]
    send.__self__.close()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="cannot reuse"):
        send(None)
    assert calls == [0, 1, 2]
