"""``.ci/cherrypy-suite``: it must catch a test that only fails on fastbus, and only that.

The full CherryPy suite is too slow for the unit tests, so the script is pointed (``--target``)
at a small fake suite whose tests behave differently on stock CherryPy and on fastbus; that
exercises the same bootstrap, the interpreter check, the comparison and the reruns.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "cherrypy-suite"
TIMEOUT = 180


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("cherrypy_suite", str(SCRIPT))
    spec = importlib.util.spec_from_loader("cherrypy_suite", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def suite() -> ModuleType:
    return load_script()


def results(**outcomes: str) -> dict:
    return {name: {"outcome": outcome, "path": name} for name, outcome in outcomes.items()}


def test_same_outcomes_agree(suite: ModuleType) -> None:
    stock = results(a="passed", b="skipped", c="xfailed", d="failed")
    assert suite.compare(stock, dict(stock)) == ([], [])


def test_worse_on_fastbus_is_a_regression(suite: ModuleType) -> None:
    stock = results(a="passed", b="skipped", c="xfailed", d="passed")
    other = results(a="failed", b="passed", c="error")
    regressions, notes = suite.compare(stock, other)
    assert regressions == [
        ("a", "passed", "failed"),
        ("b", "skipped", "passed"),
        ("c", "xfailed", "error"),
        ("d", "passed", "missing"),
    ]
    assert notes == []


def test_extra_test_on_fastbus_is_a_regression(suite: ModuleType) -> None:
    regressions, _ = suite.compare(results(), results(new="passed"))
    assert regressions == [("new", "missing", "passed")]


def test_stock_failures_and_xfail_flips_are_only_noted(suite: ModuleType) -> None:
    stock = results(a="failed", b="error", c="xpassed")
    other = results(a="passed", b="failed", c="xfailed")
    regressions, notes = suite.compare(stock, other)
    assert regressions == []
    assert notes == [("a", "failed", "passed"), ("b", "error", "failed"), ("c", "xpassed", "xfailed")]


# -- end to end, on a fake suite ----------------------------------------------------------------

FAKE_SUITE = '''\
import os
import sys

import pytest


def on_fastbus():
    return getattr(sys.modules["cherrypy.process.wspbus"], "__fastbus__", False)


def test_passes():
    import cherrypy
    assert cherrypy.engine is not None


def test_skips():
    pytest.skip("not here")


def test_fails_everywhere():
    assert False, "broken on stock too"


@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False


def test_child_interpreter_is_on_the_same_bus():
    # The suite's servers are child interpreters: they must be on fastbus too.
    import subprocess
    code = "import cherrypy, fastbus; print(fastbus.installed())"
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True).stdout
    assert out.strip() == str(bool(on_fastbus()))
'''

ONLY_ON_FASTBUS = '''
def test_breaks_on_fastbus():
    assert not on_fastbus()
'''

FLAKY_ON_FASTBUS = '''
def test_flaky_on_fastbus():
    # Fails the first time it runs on fastbus, then passes: a flake, not a regression.
    marker = os.environ["FAKE_SUITE_MARKER"]
    if on_fastbus() and not os.path.exists(marker):
        open(marker, "w").close()
        assert False, "flaked"
'''


def run_suite(tmp_path: Path, body: str, cores: str) -> subprocess.CompletedProcess[str]:
    package = tmp_path / "src" / "fakesuite"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "test_fake.py").write_text(textwrap.dedent(body))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(tmp_path / "src"), str(ROOT), env.get("PYTHONPATH")) if p
    )
    env["FAKE_SUITE_MARKER"] = str(tmp_path / "flaked")
    return subprocess.run(
        [
            sys.executable, str(SCRIPT), "--python", sys.executable, "--cores", cores,
            "--target", "fakesuite", "--workdir", str(tmp_path / "work"), "--reruns", "2",
        ],
        env=env,
        cwd=str(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
    )


def summary_row(output: str, mode: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(mode + " "))


def test_matching_runs_pass(tmp_path: Path, core_name: str) -> None:
    done = run_suite(tmp_path, FAKE_SUITE, core_name)
    assert done.returncode == 0, done.stdout
    assert "OK: fastbus" in done.stdout
    # passed failed error skipped xfailed xpassed total
    assert summary_row(done.stdout, "stock")[1:8] == ["2", "1", "0", "1", "1", "0", "5"]
    assert summary_row(done.stdout, core_name)[1:8] == ["2", "1", "0", "1", "1", "0", "5"]
    assert f"on fastbus {core_name}" in done.stdout
    assert "cherrypy.process.wspbus.Bus;" in summary_row(done.stdout, "stock")


def test_failure_only_on_fastbus_fails_the_job(tmp_path: Path, core_name: str) -> None:
    done = run_suite(tmp_path, FAKE_SUITE + ONLY_ON_FASTBUS, core_name)
    assert done.returncode == 1, done.stdout
    assert "test_fake.py::test_breaks_on_fastbus: passed on stock, failed on fastbus" in done.stdout
    assert "reruns: fastbus ['failed', 'failed'], stock ['passed', 'passed']: MISMATCH" in done.stdout
    assert "FAILED: fastbus does not match" in done.stdout


def test_a_flake_is_rerun_on_both_and_accepted(tmp_path: Path, core_name: str) -> None:
    done = run_suite(tmp_path, FAKE_SUITE + FLAKY_ON_FASTBUS, core_name)
    assert done.returncode == 0, done.stdout
    assert "reruns: fastbus ['passed', 'passed'], stock ['passed', 'passed']: flaky, accepted" in done.stdout


def test_bad_core_name_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cores", "turbo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "unknown core(s): turbo" in done.stdout
