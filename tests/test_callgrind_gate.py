"""The instruction-count gate of ``benchmarks/callgrind.py`` can fail, and fails for the right reason.

One test measures for real under callgrind (one size, few publishes) and checks against
expected ratios set too low; the others feed that kind of measurement back through
``--input`` to pin the limit's arithmetic and the refusals without running valgrind again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "callgrind.py"


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("callgrind_gate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gate = _load_script()
BUILD = gate.build()  # this interpreter's: the key of an expected entry


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600
    )


def expected_file(path: Path, ratios: dict[str, float], **build: str) -> str:
    entry = dict(BUILD, **build, commit="test", ratios=ratios)
    data = {"shape": "positional", "builds": [entry]}
    path.write_text(json.dumps(data))
    return str(path)


def measured(ratio: float, **build: str) -> dict[str, Any]:
    """A record as --json writes it, with the one figure the gate reads set to *ratio*."""
    cells = [
        dict(contender="floor", subscribers=0, per_publish=1000.0),
        dict(contender="fastbus-c", subscribers=0, per_publish=1000.0 * ratio),
    ]
    return dict(
        BUILD, **build, fastbus="test", fastbus_path=str(ROOT), commit=None, dirty=False, shape="positional",
        statements={"floor": "call(1)", "fastbus-c": "publish('ch', 1)"}, skipped={},
        cells=cells, ratios=gate.ratios(cells),
    )  # fmt: skip


@pytest.mark.c_extension
@pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed (callgrind counts the instructions)"
)
def test_gate_fails_when_the_ratio_exceeds_the_expected_one(tmp_path: Path) -> None:
    low = expected_file(tmp_path / "low.json", {"0": 0.5})
    out = tmp_path / "measured.json"
    done = run(
        "--contenders", "floor,fastbus-c", "--sizes", "0", "--loops", "2000",
        "--json", str(out), "--check", low,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    record = json.loads(out.read_text())
    ratio = record["ratios"]["0"]
    # A real measurement: the bus does more than the floor, and not wildly more.
    assert 1 < ratio < 3, record["cells"]
    fail = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert fail == [
        f"FAIL publish at 0 subscribers: fastbus-c ÷ floor = {ratio:.4f}, expected 0.5000 with "
        f"tolerance 2.0% (limit 0.5100); {ratio / 0.5 - 1:+.2%} (Python {BUILD['python']}, "
        f"expected from {BUILD['python']} at commit test)"
    ]
    # The same measurement passes against itself, so the failure above was the ratio's doing.
    same = expected_file(tmp_path / "same.json", {"0": ratio})
    again = run("--input", str(out), "--check", same)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"ok   publish at 0 subscribers: fastbus-c ÷ floor = {ratio:.4f}" in again.stdout


@pytest.mark.parametrize(
    ("expected", "tolerance", "status"),
    [
        (1.0, "0.02", 0),  # exactly at the limit passes
        (1.0001, "0.02", 0),
        (0.9999, "0.02", 1),  # just over it fails
        (1.0, "0", 1),
        (1.02, "0", 0),
        (0.5, "0.5", 1),
        (1.10, "0.02", 0),  # better than expected passes, with a note
    ],
)
def test_the_limit_is_expected_times_one_plus_tolerance(
    tmp_path: Path, expected: float, tolerance: str, status: int
) -> None:
    source = tmp_path / "measured.json"
    source.write_text(json.dumps(measured(1.02)))
    path = expected_file(tmp_path / "expected.json", {"0": expected})
    done = run("--input", str(source), "--check", path, "--tolerance", tolerance)
    assert done.returncode == status, done.stdout + done.stderr
    assert ("FAIL publish at 0 subscribers" in done.stdout) == (status == 1)
    assert ("better than expected" in done.stdout) == (expected == 1.10)


@pytest.mark.parametrize(
    "other",
    [{"version": "3.99"}, {"compiler": "cc -O0"}, {"implementation": "pypy"}],
    ids=["version", "compiler", "implementation"],
)
def test_another_build_s_ratios_are_not_used(tmp_path: Path, other: dict[str, str]) -> None:
    source = tmp_path / "measured.json"
    source.write_text(json.dumps(measured(1.0, **other)))
    path = expected_file(tmp_path / "expected.json", {"0": 9.0})  # would pass, if it were used
    done = run("--input", str(source), "--check", path)
    assert done.returncode == 2, done.stdout + done.stderr
    this = gate._describe(dict(BUILD, **other))
    assert f"cannot check: {path} has no expected ratios for this build, {this}; it has:\n" in done.stdout
    assert f"  {gate._describe(BUILD)}\n" in done.stdout
    assert "ok" not in done.stdout.split()


def test_no_expected_size_measured_cannot_pass(tmp_path: Path) -> None:
    source = tmp_path / "measured.json"
    source.write_text(json.dumps(measured(1.0)))
    path = expected_file(tmp_path / "expected.json", {"10": 9.0})
    done = run("--input", str(source), "--check", path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "none of the measured sizes has an expected ratio" in done.stdout


def test_without_valgrind_it_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))  # no valgrind there; python is called by path
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    done = run("--sizes", "0", env=env)
    assert done.returncode == 2
    assert "valgrind is not installed" in done.stderr


def test_record_keeps_other_builds_and_check_reads_it_back(tmp_path: Path) -> None:
    path = tmp_path / "expected.json"
    expected_file(path, {"0": 7.0}, compiler="cc -O0")
    source = tmp_path / "measured.json"
    source.write_text(json.dumps(measured(1.25)))
    done = run("--input", str(source), "--record", str(path), "--check", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    builds = {entry["compiler"]: entry for entry in json.loads(path.read_text())["builds"]}
    assert builds["cc -O0"]["ratios"] == {"0": 7.0}
    assert builds[BUILD["compiler"]]["ratios"] == {"0": 1.25}
    assert builds[BUILD["compiler"]]["instructions"] == {"fastbus-c": {"0": 1250.0}, "floor": {"0": 1000.0}}
    # Recording again replaces this build's entry instead of adding a second one.
    source.write_text(json.dumps(measured(1.5)))
    assert run("--input", str(source), "--record", str(path)).returncode == 0
    builds = {entry["compiler"]: entry for entry in json.loads(path.read_text())["builds"]}
    assert len(builds) == 2 and builds[BUILD["compiler"]]["ratios"] == {"0": 1.5}
